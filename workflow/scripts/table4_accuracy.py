"""Table 4: accuracy per method in distribution and on the ood dataset, ours beside the paper's."""

import json
from pathlib import Path

from advtrain.logs import redirect_to
from advtrain.tables import table4_accuracy, write_display_table

redirect_to(snakemake.log[0])
evals = [json.loads(Path(p).read_text()) for p in snakemake.input.evals]
ood = snakemake.params.ood[0] if snakemake.params.ood else "YELP"
numeric, display = table4_accuracy(evals, snakemake.params.methods, ood_dataset=ood)
stem = Path(snakemake.output.csv).with_suffix("")
write_display_table(numeric, display, stem, caption="Table 4: accuracy (%), ours (mean ± sd over seeds) and the paper's")
print(display.to_markdown(index=False))
