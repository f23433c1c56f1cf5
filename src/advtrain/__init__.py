"""advtrain: adversarial training of language models, the package behind the Snakemake workflow."""

__version__ = "0.1.0"
