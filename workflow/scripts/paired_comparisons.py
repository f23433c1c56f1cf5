"""Each method against BERT, seed by seed: accuracy and average ASR differences with t intervals."""

import json
from pathlib import Path

from advtrain.logs import redirect_to
from advtrain.tables import paired_comparisons, write_display_table

redirect_to(snakemake.log[0])
evals = [json.loads(Path(p).read_text()) for p in snakemake.input.evals]
attacks = [json.loads(Path(p).read_text()) for p in snakemake.input.attacks]
methods = snakemake.params.methods
baseline = "BERT" if "BERT" in methods else methods[0]
numeric, display = paired_comparisons(evals, attacks, methods, baseline=baseline)
write_display_table(numeric, display, Path(snakemake.output.csv).with_suffix(""),
                    caption=f"Paired differences to {baseline} over seeds (percentage points), 95% t intervals")
print(display.to_markdown(index=False))
