"""ASR and accuracy under attack against the query budget for one dataset and attack, one line per method."""

import json
from pathlib import Path

from advtrain.figures import plot_budget_curves
from advtrain.logs import redirect_to
from advtrain.robustness import budget_curves, mean_curves, run_budget

redirect_to(snakemake.log[0])
summaries = [json.loads(Path(p).read_text()) for p in snakemake.input.attacks]
curves = mean_curves(budget_curves(summaries))
curves.to_csv(snakemake.output.curves, index=False)
budget, limited = run_budget(summaries)
w = snakemake.wildcards
name = snakemake.params.attack_names.get(w.attack, w.attack)
plot_budget_curves(curves, Path(snakemake.output.png).with_suffix(""), f"{name} on {w.dataset}", budget, limited)
print(curves.groupby(["method", "metric"])["mean"].last().to_string())
