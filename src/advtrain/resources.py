"""External resources (pretrained models, datasets): where each one lives, and how to fetch it.

Every resource resolves the same way: a local path from the config wins; otherwise the resource is fetched once
into the cache folder (`cache_dir`) by a fetch rule that runs on the submitting host (`localrules`).
"""

from __future__ import annotations

import re
from pathlib import Path


class ResourceError(RuntimeError):
    """A resource that is missing or cannot be fetched; the message names the config key that provides it."""


def slug(name: str) -> str:
    """A folder name for a hub id: ``bert-base-uncased`` -> ``bert-base-uncased``, ``a/b`` -> ``a--b``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "--", name).strip("-")


def model_location(config: dict) -> tuple[str, bool]:
    """(directory of the pretrained model, whether it is a configured local path)."""
    model = config["model"]
    if model.get("path"):
        return str(model["path"]), True
    return f"{config['cache_dir']}/models/{slug(model['name'])}", False


def dataset_location(config: dict, dataset: str) -> tuple[str | None, bool]:
    """(folder a Hugging Face dataset is read from, whether it is local). ``None`` for local-file sources."""
    from advtrain.config import effective_source

    kind, source = effective_source(config["datasets"][dataset])
    if kind == "local":
        return None, True
    if source.get("path"):
        return str(source["path"]), True
    return f"{config['cache_dir']}/datasets/{dataset}", False


def needs_network(config: dict) -> bool:
    """True when some resource still has to be downloaded (so HF_HUB_OFFLINE must stay off)."""
    if not model_location(config)[1]:
        return True
    return any(not dataset_location(config, d)[1] for d in config["datasets"])


def require_local(path: str | Path, key: str) -> Path:
    """Fail with the config key when a configured local resource is absent."""
    path = Path(path)
    if not path.exists():
        raise ResourceError(f"{key}: {path} does not exist. Set `{key}` to an existing local copy, or unset it "
                            "to let the workflow download the resource.")
    return path


# Files a pretrained checkpoint needs; other frameworks' weights are skipped.
_MODEL_IGNORE = ["*.h5", "*.msgpack", "*.ot", "tf_model*", "flax_model*", "rust_model*", "onnx/*", "*.onnx",
                 "coreml/*", "openvino/*"]


def fetch_model(name: str, dest: str | Path) -> Path:
    """Download a hub model (weights, config, tokenizer) into ``dest``."""
    from huggingface_hub import snapshot_download

    dest = Path(dest)
    try:
        snapshot_download(repo_id=name, local_dir=dest, ignore_patterns=_MODEL_IGNORE)
    except Exception as exc:  # the hub raises many types; all mean the same to the user
        raise ResourceError(
            f"model.name: could not download {name!r} from the Hugging Face hub ({exc}). Without network access, "
            "copy the model to a local folder and set `model.path` to it."
        ) from exc
    return dest


def fetch_dataset(dataset: str, name: str, config_name: str | None, dest: str | Path) -> Path:
    """Download a hub dataset and save it with ``save_to_disk`` into ``dest``."""
    import datasets

    try:
        ds = datasets.load_dataset(name, config_name)
    except Exception as exc:
        raise ResourceError(
            f"datasets.{dataset}.source.hf.name: could not download {name!r} ({exc}). Without network access, set "
            f"`datasets.{dataset}.source.hf.path` to a `save_to_disk` copy, or use a `local` source with files."
        ) from exc
    ds.save_to_disk(str(dest))
    return Path(dest)
