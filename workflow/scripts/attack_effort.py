"""Attack effort: queries per example for successes and failures, and the failures that ran out the budget."""

import json
from pathlib import Path

from advtrain.logs import redirect_to
from advtrain.robustness import effort_table
from advtrain.tables import write_display_table

redirect_to(snakemake.log[0])
summaries = [json.loads(Path(p).read_text()) for p in snakemake.input.attacks]
numeric, display = effort_table(summaries, snakemake.params.methods, snakemake.params.attack_names)
write_display_table(numeric, display, Path(snakemake.output.csv).with_suffix(""),
                    caption="Attack effort: model queries per example (median / 90th percentile) for successful and "
                    "failed attacks, pooled over seeds, and the failures that stopped at the query budget")
print(display.to_markdown(index=False))
