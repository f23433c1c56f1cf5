"""The paper's claims judged on this run and on the paper's own tables (rule claims; advtrain.claims, docs/claims.md)."""

from pathlib import Path

from advtrain.claims import make_claims
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
table, paths = make_claims(snakemake.input.claims, snakemake.config, snakemake.input.evals, snakemake.input.attacks,
                           snakemake.input.lca, Path(snakemake.output.csv).with_suffix(""),
                           omitted=snakemake.params.omitted)
print(paths[1].read_text())
