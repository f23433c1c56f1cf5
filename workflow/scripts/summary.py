"""results/summary.md: which tables and figures this run produced, where, and the tables themselves."""

from advtrain.logs import redirect_to
from advtrain.summary import write_summary

redirect_to(snakemake.log[0])
path = write_summary(snakemake.output[0], snakemake.input.tables, snakemake.input.figures, snakemake.params.run,
                     fidelity=snakemake.input.fidelity, absent=snakemake.params.absent,
                     claims=snakemake.input.claims[0] if snakemake.input.claims else None)
print(f"wrote {path}: {len(snakemake.input.tables)} tables, {len(snakemake.input.figures)} figures")
