"""The fidelity ledger's rows (docs/fidelity.md) this run uses with values other than the reference code's."""

from pathlib import Path

from advtrain.fidelity import write_uses
from advtrain.logs import redirect_to

redirect_to(snakemake.log[0])
paths = write_uses(snakemake.params.uses, Path(snakemake.output.csv).with_suffix(""))
print(f"{len(snakemake.params.uses)} non-reference value(s): {', '.join(map(str, paths))}")
for use in snakemake.params.uses:
    print(f"  {use['row']}: {use['key']} = {use['value']} (reference: {use['reference']})")
