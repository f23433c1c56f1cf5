"""Typed view of the workflow config: validation messages, methods as compositions of parts, train settings."""

from __future__ import annotations

import codecs
import copy
import functools
import math
from pathlib import Path
from typing import Any

import yaml

# Parts a method may compose. The schema is the authority on which of them are implemented.
TRAIN_KEYS = (
    "max_length",
    "batch_size",
    "eval_batch_size",
    "learning_rate",
    "epochs",
    "warmup_ratio",
    "warmup_steps",
    "weight_decay",
    "optimizer",
    "adam_epsilon",
    "max_grad_norm",
    "lr_schedule",
    "precision",
    "gradient_accumulation_steps",
    "dataloader_workers",
)


#: The config's schema (workflow/schemas/config.schema.yaml): the authority on keys, allowed values and defaults.
SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """A config value the workflow cannot use; the message names the key."""


@functools.cache
def _schema() -> dict:
    return yaml.safe_load(SCHEMA.read_text())


def schema_defaults(*where: str, keyword: str = "default") -> dict[str, Any]:
    """{key: default} of the properties of the schema object ``$defs/<where[0]>`` (then each ``properties/<key>`` of
    ``where[1:]``) that give one under ``keyword``, in the schema's order.

    ``default`` is what validation (Snakemake's ``validate``) writes into the config; ``x-default`` marks a value that
    code fills in when it resolves a setting, so that what the config holds (a rule's params, and so its jobs) stays
    as written.
    """
    node = _schema()["$defs"][where[0]]
    for key in where[1:]:
        node = node["properties"][key]
    return {key: copy.deepcopy(spec[keyword]) for key, spec in node["properties"].items() if keyword in spec}


def key_path(parts) -> str:
    return ".".join(str(p) for p in parts) or "<top level>"


def explain_validation_errors(config: dict, schema_path: str | Path) -> str:
    """One line per schema violation, each naming the config key, e.g.

    ``methods.PGD-AT.augment: unknown key (allowed here: adversarial_embedding, train)``.
    """
    import jsonschema
    from referencing import Registry, Resource

    schema = yaml.safe_load(Path(schema_path).read_text())
    registry = Registry().with_resource(uri="", resource=Resource.from_contents(schema))
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    lines = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        lines.extend(_describe(error, schema))
    return "\n".join(dict.fromkeys(lines))  # keep order, drop repeats


def _describe(error, schema) -> list[str]:
    where = list(error.absolute_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        allowed = sorted(_allowed_keys(error.schema, schema))
        extra = [k for k in error.instance if k not in allowed] if isinstance(error.instance, dict) else []
        hint = f" (allowed here: {', '.join(allowed)})" if allowed else ""
        if error.validator == "additionalProperties" and "$ref" in (error.schema.get("additionalProperties") or {}):
            extra = []  # a map with free keys: the error is in a value, reported by its context
        if extra:
            return [f"{key_path([*where, k])}: unknown key{hint}" for k in extra]
    if error.validator == "not" and isinstance(error.validator_value, dict) and "description" in error.validator_value:
        # "should not be valid under {...}" names no key: a forbidden combination says what it forbids.
        return [f"{key_path(where)}: {error.validator_value['description']}"]
    if error.context:
        # anyOf/oneOf: report the most specific sub-errors.
        best = sorted(error.context, key=lambda e: -len(e.absolute_path))
        return [line for sub in best[:3] for line in _describe(sub, schema)]
    return [f"{key_path(where)}: {error.message}"]


def _allowed_keys(subschema: dict, root: dict) -> set[str]:
    keys = set(subschema.get("properties", {}))
    ref = subschema.get("$ref")
    if ref and ref.startswith("#/"):
        node = root
        for part in ref[2:].split("/"):
            node = node[part]
        keys |= _allowed_keys(node, root)
    for branch in subschema.get("allOf", []):
        keys |= _allowed_keys(branch, root)
    return keys


def _non_finite(node, where: list) -> tuple[list, float] | None:
    """(key path, value) of the first NaN or infinite number in ``node`` (YAML's .nan / .inf), or None."""
    if isinstance(node, float) and not math.isfinite(node):
        return where, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        found = _non_finite(value, [*where, key])
        if found is not None:
            return found
    return None


def check_references(config: dict) -> None:
    """What the schema cannot express: names under `run` must exist, numbers must be finite, settings must
    agree with each other (toy epochs, carve fractions, a local source's format, encoding and files). Every problem
    is a line of the error, in the config's order."""
    problems = list(reference_problems(config))
    if problems:
        raise ConfigError("\n".join(problems))


def reference_problems(config: dict):
    """The problems :func:`check_references` reports, one message (naming its key) each."""
    bad = _non_finite(config, [])
    if bad is not None:
        yield f"{key_path(bad[0])}: {bad[1]} is not a finite number"
    datasets = config["datasets"]
    run = config.get("run") or {}
    for i, name in enumerate(run.get("methods") or []):
        if name not in config["methods"]:
            yield (f"run.methods[{i}]: unknown method {name!r} (defined under `methods`: "
                   f"{', '.join(config['methods'])})")
    for i, name in enumerate(run.get("datasets") or []):
        if name not in datasets:
            yield f"run.datasets[{i}]: unknown dataset {name!r} (defined under `datasets`: {', '.join(datasets)})"
        elif datasets[name]["role"] != "train":
            yield f"run.datasets[{i}]: dataset {name!r} has role 'ood' and cannot be trained on"
    for i, name in enumerate(run.get("ood_datasets") or []):
        if name not in datasets:
            yield (f"run.ood_datasets[{i}]: unknown dataset {name!r} (defined under `datasets`: "
                   f"{', '.join(datasets)})")
        elif datasets[name]["role"] != "ood":
            yield f"run.ood_datasets[{i}]: dataset {name!r} has role 'train', not 'ood'"
    if not training_datasets(config):
        yield "datasets: no dataset with role 'train'"
    yield from _label_space_problems(config)
    for name, ds in datasets.items():
        kind, source = effective_source(ds)
        if kind == "local":
            yield from _local_source_problems(f"datasets.{name}.source.local", source)
        splits = set(source["files" if kind == "local" else "splits"])
        if ds["role"] == "ood" and "test" not in splits:
            yield f"datasets.{name}.source: an ood dataset needs a 'test' split"
        if ds["role"] == "train" and "train" not in splits and not {"pos", "neg"} <= splits:
            yield f"datasets.{name}.source: a training dataset needs a 'train' split"
        carve = ds.get("carve") or {}
        fractions = [v for v in carve.values() if v < 1]
        if len(fractions) == len(carve) > 0 and sum(fractions) >= 1:
            yield (f"datasets.{name}.carve: the fractions {', '.join(f'{k}: {v}' for k, v in carve.items())} add up "
                   f"to {sum(fractions):g}, leaving no training rows")
    toy = config["toy"]
    if toy["switch_epoch"] > toy["epochs"]:
        yield f"toy.switch_epoch: {toy['switch_epoch']} is after the last epoch (toy.epochs: {toy['epochs']})"
    if toy["x_low"] >= toy["x_high"]:
        yield f"toy.x_low: {toy['x_low']} must be below toy.x_high ({toy['x_high']})"


def _label_space_problems(config: dict):
    """Every model is evaluated on every ood dataset: where both sides configure `num_labels`, they must agree (the
    data's own counts are compared when the evaluation reads them, advtrain.data.check_label_space)."""
    datasets = config["datasets"]
    trained = [n for n in training_datasets(config) if n in datasets]
    for ood in ood_datasets(config):
        k = (datasets.get(ood) or {}).get("num_labels")
        for name in trained:
            other = datasets[name].get("num_labels")
            if k is not None and other is not None and k != other:
                yield (f"datasets.{ood}.num_labels: {k} classes, but the training dataset {name} has {other} "
                       f"(datasets.{name}.num_labels): an ood dataset must share the training datasets' labels; "
                       "leave it out with `run.ood_datasets`")


def _local_source_problems(where: str, local: dict):
    """rt-polarity reads exactly a `pos` and a `neg` file, other formats name files by split; each recorded sha256 is
    a file's; the encoding exists."""
    files = set(local["files"])
    if local["format"] == "rt-polarity":
        if files != {"pos", "neg"}:
            yield f"{where}.files: the rt-polarity format reads a `pos` and a `neg` file (got {', '.join(sorted(files))})"
    elif files & {"pos", "neg"}:
        yield (f"{where}.files: `pos`/`neg` files are for the rt-polarity format; {local['format']} files are named by "
               "split (train, validation, test)")
    stray = sorted(set(local.get("sha256") or {}) - files)
    if stray:
        yield (f"{where}.sha256.{stray[0]}: there is no file `{stray[0]}` under {where}.files "
               f"({', '.join(sorted(files))})")
    encoding = local.get("encoding")
    if encoding is not None:
        try:
            codecs.lookup(encoding)
        except LookupError:
            yield f"{where}.encoding: unknown encoding {encoding!r} (e.g. utf-8, cp1252, latin-1)"


def effective_source(ds_config: dict) -> tuple[str, dict]:
    """("local", files source) or ("hf", hub source): local files win when both are configured."""
    source = ds_config["source"]
    return ("local", source["local"]) if "local" in source else ("hf", source["hf"])


def training_datasets(config: dict) -> list[str]:
    names = (config.get("run") or {}).get("datasets")
    if names is None:
        names = [n for n, d in config["datasets"].items() if d["role"] == "train"]
    return list(names)


def ood_datasets(config: dict) -> list[str]:
    """`run.ood_datasets`, or (null) every dataset with role ood."""
    names = (config.get("run") or {}).get("ood_datasets")
    if names is None:
        names = [n for n, d in config["datasets"].items() if d["role"] == "ood"]
    return list(names)


def selected_methods(config: dict) -> list[str]:
    names = (config.get("run") or {}).get("methods")
    return list(config["methods"]) if names is None else list(names)


def method_parts(config: dict, method: str) -> dict[str, Any]:
    """The parts of a method as configured (``{}`` for the baseline)."""
    try:
        parts = config["methods"][method]
    except KeyError:
        raise ConfigError(f"methods: unknown method {method!r}") from None
    return copy.deepcopy(parts or {})


def train_settings(config: dict, method: str) -> dict[str, Any]:
    """The model's train settings with the method's `train` overrides applied."""
    settings = {k: config["model"][k] for k in TRAIN_KEYS if k in config["model"]}
    settings.update(method_parts(config, method).get("train", {}))
    return settings


def method_spec(config: dict, method: str) -> dict[str, Any]:
    """Everything that defines a method's training run: its resolved settings and its parts.

    This goes into the train rule's ``params``, so editing one method reruns that method's jobs only; its
    ``family`` (the claims table's grouping) is no part of training.
    """
    parts = method_parts(config, method)
    parts.pop("train", None)
    parts.pop("family", None)
    return {"train": train_settings(config, method), "parts": parts}


#: Resolved precisions: fp32; tf32 (fp32 with TF32 matrix products, CUDA); bf16 and fp16 autocast (CUDA).
PRECISIONS = ("fp32", "tf32", "bf16", "fp16")
#: What ``auto`` resolves to on a CUDA GPU. Not bf16 or fp16: at the paper's eps the adversarial step's effect on the
#: logits is about the size of half-precision rounding (ledger row ``precision``, benchmarks/precision.py).
AUTO_ON_GPU = "fp32"


def resolve_precision(precision: str, cuda_available: bool, bf16_supported: bool) -> str:
    """auto -> ``AUTO_ON_GPU`` on a GPU, fp32 on CPU (the reference code's fp32 on every device); tf32, bf16 and
    fp16 need a GPU (bf16 one that has it)."""
    if precision == "auto":
        return AUTO_ON_GPU if cuda_available else "fp32"
    if precision not in PRECISIONS:
        raise ConfigError(f"model.precision: {precision!r} is not one of auto, {', '.join(PRECISIONS)}")
    if precision in ("tf32", "bf16", "fp16") and not cuda_available:
        raise ConfigError(f"model.precision: {precision} needs a CUDA GPU; use 'auto' or 'fp32' on CPU")
    if precision == "bf16" and not bf16_supported:
        raise ConfigError("model.precision: this GPU has no bf16; use 'auto' or 'fp16'")
    return precision
