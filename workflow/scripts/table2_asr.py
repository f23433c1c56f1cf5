"""Table 2: attack success rate per attack and dataset, one column per method, ours beside the paper's."""

import json
from pathlib import Path

from advtrain.logs import redirect_to
from advtrain.stats import Bootstrap
from advtrain.tables import sample_notes, substitution_notes, table2_asr, write_display_table

redirect_to(snakemake.log[0])
summaries = [json.loads(Path(p).read_text()) for p in snakemake.input.attacks]
bootstrap = Bootstrap.from_config(snakemake.params.statistics)
numeric, display = table2_asr(summaries, snakemake.params.methods, snakemake.params.attack_names, bootstrap=bootstrap)
stem = Path(snakemake.output.csv).with_suffix("")
write_display_table(
    numeric,
    display,
    stem,
    caption="Table 2: attack success rate (%) = successful / (successful + failed attacks), ours (mean ± sd over "
    f"seeds, {bootstrap.confidence:.0%} bootstrap interval over examples and seeds) and the paper's; the csv also has "
    "successful / all sampled examples (<method>_over_total_*)",
    # Each substitution of a published recipe once, under the table (its cells carry the short name), and each
    # capped sample.
    notes=substitution_notes(summaries) + sample_notes(summaries),
)
print(display.to_markdown(index=False))
