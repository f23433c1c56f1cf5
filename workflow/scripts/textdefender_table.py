"""Attack results in TextDefender's format: clean accuracy, accuracy under attack, ASR and mean queries per example."""

import json
from pathlib import Path

from advtrain.logs import redirect_to
from advtrain.tables import sample_notes, substitution_notes, textdefender_table, write_display_table

redirect_to(snakemake.log[0])
summaries = [json.loads(Path(p).read_text()) for p in snakemake.input.attacks]
numeric, display = textdefender_table(summaries, snakemake.params.methods, snakemake.params.attack_names)
protocol = snakemake.params.protocol
write_display_table(
    numeric,
    display,
    Path(snakemake.output.csv).with_suffix(""),
    caption=f"Attacks in TextDefender's format (attacks.protocol: {protocol['protocol']}): Clean% = accuracy on the "
    "attacked sample, Aua% = accuracy under attack, Suc% = successful / (successful + failed), #Query = mean model "
    f"queries per attacked example; mean ± sd over seeds. Sample: {protocol['sample_rule']}. Budget: "
    f"{protocol['budget_per_example']}. Constraints: {protocol['constraints']}.",
    notes=substitution_notes(summaries) + sample_notes(summaries),
)
print(display.to_markdown(index=False))
