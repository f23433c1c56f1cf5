"""Each method against BERT on the same examples: paired bootstrap differences and exact McNemar tests."""

import json
from pathlib import Path

from advtrain.logs import redirect_to
from advtrain.predictions import load_correct
from advtrain.robustness import paired_example_tests
from advtrain.stats import Bootstrap
from advtrain.tables import write_display_table

redirect_to(snakemake.log[0])
evals = [json.loads(Path(p).read_text()) for p in snakemake.input.evals]
# Each eval JSON's predictions (an input too) lie beside it: seed{seed}.json -> seed{seed}.predictions.npz.
correct = {(e["dataset"], e["method"], e["seed"]): load_correct(Path(p).with_suffix(".predictions.npz"))
           for e, p in zip(evals, snakemake.input.evals, strict=True)}
summaries = [json.loads(Path(p).read_text()) for p in snakemake.input.attacks]
methods = snakemake.params.methods
baseline = "BERT" if "BERT" in methods else methods[0]
bootstrap = Bootstrap.from_config(snakemake.params.statistics)
numeric, display = paired_example_tests(correct, summaries, methods, baseline, bootstrap,
                                        datasets=snakemake.params.datasets, attack_names=snakemake.params.attack_names)
write_display_table(numeric, display, Path(snakemake.output.csv).with_suffix(""),
                    caption=f"Paired per-example tests against {baseline} (percentage points, "
                    f"{bootstrap.confidence:.0%} paired bootstrap interval; exact McNemar test pooled over seeds, "
                    f"Holm-adjusted over the {len(numeric)} rows)")
print(display.to_markdown(index=False))
