"""Table 4: accuracy per method on every training dataset and every ood dataset, ours beside the paper's."""

import json
from pathlib import Path

from advtrain.logs import redirect_to
from advtrain.predictions import load_correct
from advtrain.stats import Bootstrap
from advtrain.tables import table4_accuracy, write_display_table

redirect_to(snakemake.log[0])
evals = [json.loads(Path(p).read_text()) for p in snakemake.input.evals]
# Each eval JSON's predictions (an input too) lie beside it: seed{seed}.json -> seed{seed}.predictions.npz.
correct = {(e["dataset"], e["method"], e["seed"]): load_correct(Path(p).with_suffix(".predictions.npz"))
           for e, p in zip(evals, snakemake.input.evals, strict=True)}
bootstrap = Bootstrap.from_config(snakemake.params.statistics)
numeric, display = table4_accuracy(evals, snakemake.params.methods, snakemake.params.ood,
                                   datasets=snakemake.params.datasets, correct=correct, bootstrap=bootstrap)
stem = Path(snakemake.output.csv).with_suffix("")
write_display_table(numeric, display, stem,
                    caption=f"Table 4: accuracy (%), ours (mean ± sd over seeds, {bootstrap.confidence:.0%} bootstrap "
                    "interval over examples and seeds) and the paper's (— where the paper has no value)")
print(display.to_markdown(index=False))
