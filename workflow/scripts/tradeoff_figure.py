"""Robustness (average ASR) against generalisation (accuracy) per method, ours beside the paper's."""

from pathlib import Path

import pandas as pd

from advtrain.figures import plot_tradeoff, tradeoff_points
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
points = tradeoff_points(pd.read_csv(snakemake.input.table4), pd.read_csv(snakemake.input.table2),
                         snakemake.params.datasets, ood=snakemake.params.ood)
points.to_csv(snakemake.output.points, index=False)
plot_tradeoff(points, Path(snakemake.output.png).with_suffix(""), ood=snakemake.params.ood)
print(points.to_string(index=False))
