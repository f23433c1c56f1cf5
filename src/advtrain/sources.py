"""The pretrained model's and the datasets' sources: where each one lives (a local path or the hub), and how to fetch it.

Every resource resolves the same way: a local path from the config wins; otherwise the resource is fetched once
into the cache folder (`cache_dir`) by a fetch rule that runs on the submitting host (`localrules`).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from advtrain.downloads import failure, publish, retrying, staging
from advtrain.errors import ResourceError


def slug(name: str) -> str:
    """A folder name for a hub id: ``google-bert/bert-base-uncased`` -> ``google-bert--bert-base-uncased``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "--", name).strip("-")


def model_location(config: dict) -> tuple[str, bool]:
    """(directory of the pretrained model, whether it is a configured local path)."""
    model = config["model"]
    if model.get("path"):
        return str(model["path"]), True
    return f"{config['cache_dir']}/models/{slug(hub_id(model['name']))}", False


def dataset_location(config: dict, dataset: str) -> tuple[str | None, bool]:
    """(folder a Hugging Face dataset is read from, whether it is local). ``None`` for local-file sources."""
    from advtrain.config import effective_source

    kind, source = effective_source(config["datasets"][dataset])
    if kind == "local":
        return None, True
    if source.get("path"):
        return str(source["path"]), True
    return f"{config['cache_dir']}/datasets/{dataset}/{slug(hub_id(source['name']))}", False


def needs_network(config: dict) -> bool:
    """True when some resource still has to be downloaded (so HF_HUB_OFFLINE must stay off)."""
    if not model_location(config)[1]:
        return True
    return any(not dataset_location(config, d)[1] for d in config["datasets"])


#: The config files of this run, in merge order (advtrain.config_layers.check records them at start-up): a missing
#: relative path that exists beside one of them is pointed out.
CONFIG_FILES: list[Path] = []


def resolved(path: str | Path) -> str:
    """``path`` as an error names it: a relative path with the folder it was resolved against (the working
    directory, Snakemake's ``-d``; not the folder of the config file that holds it)."""
    path = Path(path).expanduser()
    if path.is_absolute():
        return str(path)
    return f"{path} (resolved against the working directory {Path.cwd()}, Snakemake's -d)"


def does_not_exist(path: str | Path) -> str:
    """"<path> does not exist", the folder it was resolved against, and the config file beside which a relative
    path does exist (the usual reason: relative paths are not read from the file's folder)."""
    text = f"{resolved(path)} does not exist"
    path = Path(path).expanduser()
    if not path.is_absolute():
        cwd = Path.cwd()
        beside = [(f, f.parent.absolute() / path) for f in CONFIG_FILES
                  if f.parent.absolute() != cwd and (f.parent.absolute() / path).exists()]
        if beside:
            text += (f"; {beside[0][1]} does, beside {beside[0][0]}, but paths in config files are relative to the "
                     "working directory: write it as an absolute path")
    return text


def require_local(path: str | Path, key: str, advice: str | None = None) -> Path:
    """Fail with the config key when a configured local resource is absent."""
    path = Path(path)
    if not path.exists():
        advice = advice or f"Set `{key}` to an existing local copy, or unset it to let the workflow download it."
        raise ResourceError(f"{key}: {does_not_exist(path)}. {advice}")
    return path


def require_dataset_files(config: dict, datasets) -> None:
    """Each of ``datasets`` has its configured local files (or ``save_to_disk`` folder), checked at start-up so a
    missing one is named with its key and the folder it was resolved against (not as a missing rule input)."""
    from advtrain.config import effective_source

    for name in datasets:
        kind, source = effective_source(config["datasets"][name])
        if kind == "local":
            for split, path in source["files"].items():
                key = f"datasets.{name}.source.local.files.{split}"
                require_local(path, key, f"Set `{key}` to an existing file.")
        elif source.get("path"):
            require_local(source["path"], f"datasets.{name}.source.hf.path")


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
        raise ResourceError(f"{key}: {resolved(path)} is a file; set `{key}` to the model's folder")
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
            f"{key}: {resolved(path)} is not a complete model folder: missing {'; '.join(missing)}. Set `{key}` to a folder "
            "written by save_pretrained (model and tokenizer) or a copy of the model's hub repository.")
    return path


# ---------------------------------------------------------------------------------------------------- hub ids
#: Un-namespaced hub names the hub only resolves by redirect (huggingface_hub >= 1.13 rejects them), and the
#: namespaced ids they redirect to. A config that still says one of the old names gets the same repository.
LEGACY_HUB_IDS = {
    "bert-base-uncased": "google-bert/bert-base-uncased",
    "imdb": "stanfordnlp/imdb",
    "rotten_tomatoes": "cornell-movie-review-data/rotten_tomatoes",
    "yelp_polarity": "fancyzhx/yelp_polarity",
}


def hub_id(name: str) -> str:
    """The namespaced hub id of ``name`` (``bert-base-uncased`` -> ``google-bert/bert-base-uncased``)."""
    return LEGACY_HUB_IDS.get(name, name)


# ---------------------------------------------------------------------------------------------------- hub fetches
# Other frameworks' weights and exports: never needed by a PyTorch checkpoint.
_OTHER_FRAMEWORKS = ("*.h5", "*.msgpack", "*.ot", "tf_model*", "flax_model*", "rust_model*", "onnx/*", "*.onnx",
                     "coreml/*", "openvino/*", "*.tflite", "*.mlmodel")
# PyTorch pickles that a safetensors file beside them makes redundant.
_PICKLED_WEIGHTS = ("pytorch_model*.bin", "pytorch_model.bin.index.json", "*.pt", "*.pth", "*.ckpt")


def model_files(names: list[str], info=None) -> list[str]:
    """The files of a model repository to fetch: one weight format per folder (safetensors where the folder has
    it, else the pickled ``.bin``), nothing of other frameworks."""
    from fnmatch import fnmatch
    from posixpath import basename, dirname

    keep = [n for n in names if not any(fnmatch(n, p) or fnmatch(basename(n), p) for p in _OTHER_FRAMEWORKS)]
    with_safetensors = {dirname(n) for n in keep if n.endswith(".safetensors")}
    return [n for n in keep
            if not (dirname(n) in with_safetensors and any(fnmatch(basename(n), p) for p in _PICKLED_WEIGHTS))]


def hub_snapshot(repo_id: str, dest: str | Path, *, key: str, hint: str, repo_type: str = "model",
                 select=model_files, retries: int = 3, revision: str | None = None) -> Path:
    """The files ``select`` picks from a hub repository, downloaded into the folder ``dest`` (staged, then renamed).

    The hub is ``HF_ENDPOINT`` (default https://huggingface.co). ``select(names, info)`` gets the repository's file
    list (and its info) and returns the files to fetch.
    """
    from huggingface_hub import HfApi, hf_hub_download

    what = f"{repo_type} {repo_id!r}"
    source = "the Hugging Face hub"
    try:
        info = retrying(lambda: HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision), retries=retries,
                        what=what)
    except Exception as exc:
        raise failure(key, what, source, exc, hint) from exc
    names = [s.rfilename for s in info.siblings or []]
    if not names:
        raise failure(key, what, source, "the hub lists no files in it", hint)
    files = select(names, info)
    print(f"{what} at {info.sha}: fetching {len(files)} of its {len(names)} files: {', '.join(files)}", flush=True)
    with staging(dest, directory=True) as tmp:
        for name in files:
            try:
                retrying(lambda name=name: hf_hub_download(repo_id, name, repo_type=repo_type, revision=info.sha,
                                                           local_dir=tmp), retries=retries, what=f"{what}: {name}")
            except Exception as exc:
                raise failure(key, f"{name} of {what}", source, exc, hint) from exc
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's download bookkeeping
        publish(tmp, dest)
    return Path(dest)


def fetch_model(name: str, dest: str | Path, key: str = "model", retries: int = 3) -> Path:
    """A hub model (weights in one format, config, tokenizer) into the folder ``dest``; errors name ``key``.name."""
    repo = hub_id(name)
    if repo != name:
        print(f"{key}.name {name!r} is read as the namespaced hub id {repo!r}", flush=True)
    return hub_snapshot(repo, dest, key=f"{key}.name", retries=retries,
                        hint=f"Without network access, copy the model to a local folder and set `{key}.path` to it.")


def dataset_files(names: list[str], card_data, config_name: str | None, splits: list[str],
                  where: str = "the dataset") -> tuple[str, dict[str, list[str]]]:
    """(datasets' builder for the files, {split: files}) of the requested splits of a hub dataset repository.

    The splits' files are found as ``datasets`` finds them: the card's ``configs`` (``data_files`` per split),
    else the library's default file-name patterns (``train.parquet``, ``data/test-00000-of-00001.parquet`` ...).
    """
    from posixpath import splitext

    from datasets import data_files as df
    from datasets.packaged_modules import _EXTENSION_TO_MODULE
    from datasets.utils.metadata import MetadataConfigs
    from fsspec.utils import glob_translate

    def resolve(pattern: str) -> list[str]:
        regex = re.compile(glob_translate(pattern))
        hits = [n for n in names if regex.fullmatch(n) and n.split("/")[-1] not in df.FILES_TO_IGNORE
                and not df._is_inside_unrequested_special_dir(n, pattern)
                and not df._is_unrequested_hidden_file_or_is_inside_unrequested_hidden_dir(n, pattern)]
        if not hits:
            raise FileNotFoundError(pattern)
        return hits

    configs = MetadataConfigs.from_dataset_card_data(card_data) if card_data else MetadataConfigs()
    if configs:
        chosen = config_name or configs.get_default_config_name()
        if chosen not in configs:
            raise ValueError(f"{where} has configs {', '.join(configs)}; set `config_name` to one of them")
        spec = configs[chosen]
        if spec.get("data_files") is not None:
            patterns = df.sanitize_patterns(spec["data_files"])
        else:
            base = (spec.get("data_dir") or "").strip("/")
            patterns = df._get_data_files_patterns(
                lambda p: [n[len(base) + 1:] for n in resolve(f"{base}/{p}")] if base else resolve(p))
            patterns = {s: [f"{base}/{p}" if base else p for p in ps] for s, ps in patterns.items()}
    else:
        if config_name:
            raise ValueError(f"{where} defines no configs, so `config_name` {config_name!r} cannot be chosen")
        patterns = df._get_data_files_patterns(resolve)
    patterns = {str(split): list(ps) for split, ps in patterns.items()}  # datasets' defaults key by NamedSplit
    missing = [s for s in splits if s not in patterns]
    if missing:
        raise ValueError(f"{where} has no split {', '.join(missing)} (it has {', '.join(patterns)})")
    def matches(pattern: str) -> list[str]:
        try:
            return resolve(pattern)
        except FileNotFoundError:
            return []

    files = {s: sorted({n for p in patterns[s] for n in matches(p)}) for s in splits}
    empty = [s for s, ns in files.items() if not ns]
    if empty:
        raise ValueError(f"{where}: no file matches split {', '.join(empty)} ({patterns[empty[0]]})")
    extensions = {splitext(n)[1].lower() for ns in files.values() for n in ns}
    builders = {_EXTENSION_TO_MODULE[e][0] for e in extensions if e in _EXTENSION_TO_MODULE}
    if len(builders) != 1 or len(extensions) != 1:
        raise ValueError(f"{where}: cannot read files of type {', '.join(sorted(extensions))} "
                         f"({', '.join(f for ns in files.values() for f in ns)})")
    return builders.pop(), files


def fetch_dataset(dataset: str, hf: dict, dest: str | Path, retries: int = 3) -> Path:
    """The configured splits of a hub dataset (``datasets.<dataset>.source.hf``), saved with ``save_to_disk`` into
    ``dest``: only those splits' files are downloaded (YELP's test split, not its 256 MB training file)."""
    import datasets

    key = f"datasets.{dataset}.source.hf"
    repo = hub_id(hf["name"])
    if repo != hf["name"]:
        print(f"{key}.name {hf['name']!r} is read as the namespaced hub id {repo!r}", flush=True)
    hint = (f"Without network access, set `{key}.path` to a `save_to_disk` copy, or give "
            f"`datasets.{dataset}.source.local` files.")
    splits = list(dict.fromkeys(hf["splits"].values()))
    chosen: dict = {}

    def select(names, info):
        try:
            builder, files = dataset_files(names, info.card_data, hf.get("config_name"), splits, where=repo)
        except ValueError as exc:
            raise failure(f"{key}.name", f"dataset {repo!r}", "the Hugging Face hub", exc, hint) from exc
        chosen.update(builder=builder, files=files)
        return sorted({n for ns in files.values() for n in ns})

    dest = Path(dest)
    with staging(dest.with_name(dest.name + ".files"), directory=True) as raw:
        hub_snapshot(repo, raw / "repo", key=f"{key}.name", hint=hint, repo_type="dataset", select=select,
                     retries=retries)
        data_files = {s: [str(raw / "repo" / n) for n in ns] for s, ns in chosen["files"].items()}
        try:
            ds = datasets.load_dataset(chosen["builder"], data_files=data_files, cache_dir=str(raw / "cache"))
        except Exception as exc:
            raise failure(f"{key}.name", f"dataset {repo!r}", "the Hugging Face hub",
                          f"the downloaded {chosen['builder']} files cannot be read: {exc}", hint) from exc
        with staging(dest, directory=True) as tmp:
            ds.save_to_disk(str(tmp / "dataset"))
            publish(tmp / "dataset", dest)
    print(f"saved {', '.join(f'{s} ({len(ds[s])} rows)' for s in ds)} of {repo} to {dest}", flush=True)
    return dest
