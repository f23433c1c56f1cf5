"""How much the attacks changed the texts, whether the recipes' bounds held, and a sample of adversarial examples."""

import json
from pathlib import Path

import pandas as pd

from advtrain.logs import redirect_to
from advtrain.robustness import adversarial_samples, validity_table, write_samples
from advtrain.stats import Bootstrap
from advtrain.tables import write_display_table

redirect_to(snakemake.log[0])
# A run's checks lie in .../{attack}/validity.csv, beside its summary .../{attack}.json.
checks = [(json.loads(Path(v).parent.with_suffix(".json").read_text()), pd.read_csv(v))
          for v in snakemake.input.validity]
methods, names = snakemake.params.methods, snakemake.params.attack_names
numeric, display = validity_table(checks, methods, names)
write_display_table(numeric, display, Path(snakemake.output.csv).with_suffix(""),
                    caption="Adversarial examples: words changed, sentence-encoder similarity to the original, "
                    "the share outside the recipe's own bounds, and the causal LM's perplexity of the original and "
                    "adversarial texts (pooled over seeds)")
settings = snakemake.params.statistics
samples = adversarial_samples(checks, methods, int(settings.get("adversarial_samples", 3)),
                              Bootstrap.from_config(settings), names)
write_samples(samples, Path(snakemake.output.examples).with_suffix(""),
              caption="Adversarial examples (first seed, a fixed random draw): changed words in bold, with the "
              "words around them")
print(display.to_markdown(index=False))
