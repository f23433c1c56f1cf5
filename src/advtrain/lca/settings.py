"""The config's ``lca`` block: which taggers to train, with which settings, and what the schema cannot check."""

from __future__ import annotations

import copy

from advtrain.config import ConfigError, method_spec, schema_defaults
from advtrain.methods import PARTS

#: The probe's settings where ``lca.probe`` leaves a key unset: the schema's ``x-default`` values, which are
#: ``advtrain.lca.probe.train_probe``'s defaults (the regularisation is NeuroX's tutorial's; the rest is NeuroX's
#: ``train_logistic_regression_probe``'s: batches of 32 in the words' order; z-scoring is ours).
PROBE_DEFAULTS = schema_defaults("lca", "probe", keyword="x-default")

#: How ``lca_activations`` stores the activations where ``lca.activations_dtype`` is unset: the schema's default,
#: NeuroX's float32.
ACTIVATIONS_DTYPE = schema_defaults("lca")["activations_dtype"]

#: Method parts a POS tagger can use (the others act on sentiment data: augmented reviews, attacks on reviews).
TAGGER_PARTS = {name for name, part in PARTS.items() if part.tagger}


def lca_block(config: dict) -> dict:
    return config.get("lca") or {}


def methods(config: dict) -> list[str]:
    return list(lca_block(config).get("methods") or [])


def seeds(config: dict) -> list[int]:
    return list(lca_block(config).get("seeds") or config["seeds"])


def check(config: dict) -> None:
    """Names under ``lca.methods`` exist and use only parts a tagger has; a local source names its files. Every
    problem is a line of the error."""
    problems = []
    block = lca_block(config)
    for i, name in enumerate(methods(config)):
        if name not in config["methods"]:
            problems.append(f"lca.methods[{i}]: unknown method {name!r} (defined under `methods`: "
                            f"{', '.join(config['methods'])})")
            continue
        other = set(method_spec(config, name)["parts"]) - TAGGER_PARTS
        if other:
            problems.append(f"lca.methods[{i}]: method {name!r} has part(s) {', '.join(sorted(other))} that a POS "
                            f"tagger cannot use (only: {', '.join(sorted(TAGGER_PARTS))})")
    data = block.get("data") or {}
    if data.get("source") == "local" and not data.get("files"):
        problems.append("lca.data.files: the local source needs {all: path} or {train: path, test: path}")
    files = data.get("files") or {}
    if files and set(files) not in ({"all"}, {"train", "test"}):
        problems.append(f"lca.data.files: give either {{all}} or {{train, test}}, got "
                        f"{{{', '.join(sorted(files))}}}")
    if problems:
        raise ConfigError("\n".join(problems))


def local_paths(config: dict) -> dict[str, str]:
    """{config key: path} of the local inputs the LCA branch reads (its POS files, or a configured NLTK folder),
    checked at start-up; none when no tagger is trained."""
    data = lca_block(config).get("data") or {}
    if not methods(config):
        return {}
    if data.get("source") == "local":
        return {f"lca.data.files.{name}": path for name, path in (data.get("files") or {}).items()}
    return {"lca.data.nltk_data": data["nltk_data"]} if data.get("nltk_data") else {}


def tagger_spec(config: dict, method: str) -> dict:
    """The method's spec with ``lca.train`` overriding the training settings (taggers may need other epochs)."""
    spec = copy.deepcopy(method_spec(config, method))
    spec["train"].update(lca_block(config).get("train") or {})
    return spec


def data_settings(config: dict) -> dict:
    return dict(lca_block(config).get("data") or {})


def activations_dtype(config: dict) -> str:
    return lca_block(config).get("activations_dtype") or ACTIVATIONS_DTYPE


def analysis_settings(config: dict) -> dict:
    block = lca_block(config)
    keys = ("probe", "top_neurons", "words_per_neuron", "ablation_neurons", "search_stride")
    return {k: copy.deepcopy(block[k]) for k in keys if k in block}
