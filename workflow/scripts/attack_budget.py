"""ASR against the query budget: ASR at 1%, 10% and 100% of the budget and the areas over log-budget."""

import json
from pathlib import Path

from advtrain.logs import redirect_to
from advtrain.robustness import budget_curves, budget_table
from advtrain.stats import Bootstrap
from advtrain.tables import write_display_table

redirect_to(snakemake.log[0])
summaries = [json.loads(Path(p).read_text()) for p in snakemake.input.attacks]
bootstrap = Bootstrap.from_config(snakemake.params.statistics)
budget_curves(summaries).to_csv(snakemake.output.curves, index=False)
numeric, display = budget_table(summaries, snakemake.params.methods, bootstrap, snakemake.params.attack_names)
write_display_table(numeric, display, Path(snakemake.output.csv).with_suffix(""),
                    caption="Attack success against the query budget: ASR (%) at 1%, 10% and all of the budget, and "
                    "the areas (%) under the ASR and accuracy-under-attack curves over log-budget (mean ± sd over "
                    f"seeds, {bootstrap.confidence:.0%} bootstrap interval); valid up to the budget that was run")
print(display.to_markdown(index=False))
