"""The certified accuracy of the smoothing methods at each radius, beside their accuracy and accuracy under attack."""

import json
from pathlib import Path

from advtrain.certification import certified_table
from advtrain.logs import redirect_to
from advtrain.tables import write_table

redirect_to(snakemake.log[0])
results = [json.loads(Path(p).read_text()) for p in snakemake.input.certified]
attacks = []
for path in snakemake.input.attacks:  # results/attacks/{dataset}/{method}/seed{seed}/{attack}.json
    parts = Path(path).parts
    summary = json.loads(Path(path).read_text())
    attacks.append({"dataset": parts[-4], "method": parts[-3], "seed": int(parts[-2].removeprefix("seed")),
                    "attack": Path(path).stem, "accuracy_under_attack": summary.get("accuracy_under_attack")})
table = certified_table(results, attacks)
write_table(table.round(1), Path(snakemake.output.csv).with_suffix(""),
            caption="Certified accuracy (%) of the randomised-smoothing defences at each radius r (words changed), "
            "beside the ensemble's accuracy and accuracy under attack (%) on the same sample")
print(table.to_markdown(index=False))
