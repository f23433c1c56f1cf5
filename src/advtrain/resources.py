"""External resources (pretrained models, datasets): where each one lives, and how to fetch it.

Every resource resolves the same way: a local path from the config wins; otherwise the resource is fetched once
into the cache folder (`cache_dir`) by a fetch rule that runs on the submitting host (`localrules`).
"""

from __future__ import annotations

import json
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


# A pretrained model folder as save_pretrained / a hub snapshot leaves it: the PyTorch weights (whole or sharded),
# and a tokenizer: a fast tokenizer's tokenizer.json, or a slow one's vocabulary (WordPiece, byte-level BPE with its
# merges, or a SentencePiece model).
_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
_TOKENIZER_FILES = (("tokenizer.json",), ("vocab.txt",), ("vocab.json", "merges.txt"), ("spiece.model",),
                    ("sentencepiece.bpe.model",), ("spm.model",), ("tokenizer.model",), ("source.spm",))


def _missing_shards(index: Path) -> list[str]:
    try:
        shards = set(json.loads(index.read_text())["weight_map"].values())
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return [f"a readable {index.name} ({exc.__class__.__name__}: {exc})"]
    return sorted(f"{shard} (listed in {index.name})" for shard in shards if not (index.parent / shard).is_file())


def require_model_folder(path: str | Path, key: str) -> Path:
    """A configured pretrained model folder, or an error naming the key, the folder and every file it lacks: the
    configuration (config.json), the weights (model.safetensors, pytorch_model.bin, or a sharded index with all its
    shards) and a tokenizer."""
    path = require_local(path, key)
    if not path.is_dir():
        raise ResourceError(f"{key}: {path} is a file; set `{key}` to the model's folder")
    missing = [] if (path / "config.json").is_file() else ["config.json (the model's configuration)"]
    indexes = [path / f"{w}.index.json" for w in _WEIGHTS if (path / f"{w}.index.json").is_file()]
    if indexes:
        missing += _missing_shards(indexes[0])
    elif not any((path / w).is_file() for w in _WEIGHTS):
        missing.append("the weights (model.safetensors, pytorch_model.bin, or a sharded model.safetensors.index.json "
                       "with its shards)")
    if not any(all((path / f).is_file() for f in files) for files in _TOKENIZER_FILES):
        missing.append("a tokenizer (tokenizer.json, or vocab.txt, vocab.json + merges.txt, or a SentencePiece "
                       "spiece.model / sentencepiece.bpe.model / spm.model)")
    if missing:
        raise ResourceError(
            f"{key}: {path} is not a complete model folder: missing {'; '.join(missing)}. Set `{key}` to a folder "
            "written by save_pretrained (model and tokenizer) or a copy of the model's hub repository.")
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
