"""The 1-D toy study (section 3): runs.csv, Table 1 (csv/md/tex) and Figure 1 (png/pdf)."""

import time
from pathlib import Path

from advtrain import toy
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
settings = dict(snakemake.params.items())  # exactly run_study's keyword arguments
settings["noise_sigmas"] = [float(s) for s in settings["noise_sigmas"]]
print("settings:", settings)

start = time.perf_counter()
runs = toy.run_study(**settings)
print(f"trained {len(runs)} runs in {time.perf_counter() - start:.1f} s")

Path(snakemake.output.runs).parent.mkdir(parents=True, exist_ok=True)
runs.to_csv(snakemake.output.runs, index=False)
theta = settings["theta"]
table_stem = Path(snakemake.output.table_csv).with_suffix("")
figure_stem = Path(snakemake.output.figure_png).with_suffix("")
for path in toy.write_table1(runs, table_stem, theta) + toy.plot_distributions(runs, figure_stem, theta):
    print("wrote", path)
print(toy.summarise(runs, theta)[1].to_markdown(index=False))
