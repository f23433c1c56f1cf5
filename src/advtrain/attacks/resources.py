"""Resources of the attack recipes: where TextAttack would download each one, how a local copy is checked and loaded.

TextAttack 0.3.11 downloads its resources on first use (S3, TF-Hub, the Hugging Face hub, NLTK's index). Here every
resource is a local path taken from the config (``attacks.resources.<kind>``); a missing one is a
:class:`~advtrain.sources.ResourceError` naming that key. The ``fetch_*`` functions download a resource into a folder
of our choosing (the cache), for fetch rules that run where the network is reachable, from the sources of the config's
``downloads`` settings (URLs and sha256 checksums; :mod:`advtrain.downloads`).

Each kind is one :class:`ResourceKind` record in :data:`KINDS` (at the end of this module): its config key,
description, source, fetch location, fetcher and start-up check; the workflow's fetch rules and start-up checks read
those records.

========================  ===========================================  =============================================
kind (config key)         TextAttack's default                         local layout
========================  ===========================================  =============================================
``word_embedding``        S3 ``word_embeddings/paragramcf`` (counter-  folder: ``paragram.npy`` (N x D float matrix),
                          fitted PARAGRAM vectors)                     ``wordlist.pickle`` (pickled dict word -> row),
                                                                       ``nn.npy`` (N x K int, row i = neighbours of i
                                                                       by distance, i itself first); optional caches
                                                                       ``mse_dist.p``, ``cos_sim.p`` (pickled dict of
                                                                       dicts i -> j -> value, i < j)
``word_neighbours``       none (opt-in stand-in for ``word_embedding``:  JSON object word -> list of neighbour words,
                          see :mod:`advtrain.attacks.neighbour_swap`)  e.g. Jia et al.'s counterfitted_neighbors.json;
                                                                       fetched from GitHub only when configured
``sentence_encoder``      hub ``sentence-transformers/stsb-distilbert- a sentence-transformers folder (``modules.json``)
                          base`` (A2T's SBERT constraint)              or a plain transformers folder (mean pooling)
``use``                   TF-Hub ``google/universal-sentence-          a TF SavedModel folder (``saved_model.pb``);
                          encoder/3`` (TextFooler, BAE)                used only when ``tensorflow_hub`` is importable
``masked_lm``             hub ``google-bert/bert-base-uncased`` (BAE,  a transformers masked-LM folder + tokenizer
                          A2T-MLM)
``hownet``                S3 ``transformations/hownet/word_candidates  pickle: dict word -> dict pos -> list of words,
                          _sense.pkl`` (PSO)                           pos in {"adj", "noun", "adv", "verb"}
``flair_pos``             hub ``flair/upos-english-fast`` (flair's     a flair model file (``pytorch_model.bin`` /
                          ``upos-fast``; PSO's HowNet swap asks it     ``*.pt``) or a folder holding one
                          for each word's part of speech)
``nltk_data``             ``nltk.download`` on first import            an NLTK data folder with ``corpora/stopwords``,
                          (stopwords, perceptron tagger, universal     ``taggers/averaged_perceptron_tagger_eng``,
                          tagset, wordnet)                             ``taggers/universal_tagset`` (zips are fine);
                                                                       PWWS also ``corpora/wordnet``
``causal_lm``             hub ``openai-community/gpt2`` (OpenAttack's  a transformers causal-LM folder + tokenizer
                          ``GPT2LM`` fluency metric; not a recipe's:   (:mod:`advtrain.attacks.fluency`)
                          ``attack_validity``'s perplexities)
========================  ===========================================  =============================================
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import shutil
import tarfile
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from advtrain.downloads import DEFAULTS as _DOWNLOADS
from advtrain.sources import (
    ResourceError,
    does_not_exist,
    hub_id,
    model_location,
    require_model_folder,
    resolved,
    slug,
)

WORD_EMBEDDING_FILES = {"matrix": "paragram.npy", "wordlist": "wordlist.pickle", "nn": "nn.npy",
                        "mse_dist": "mse_dist.p", "cos_sim": "cos_sim.p"}
NLTK_PACKAGES = {"stopwords": "corpora/stopwords", "averaged_perceptron_tagger_eng":
                 "taggers/averaged_perceptron_tagger_eng", "universal_tagset": "taggers/universal_tagset"}
FLAIR_MODEL_FILE = "pytorch_model.bin"
HOWNET_POS = ("adj", "noun", "adv", "verb")
#: NLTK packages only some recipes read (PWWS's WordNet synonyms): fetched with NLTK_PACKAGES (TextAttack's
#: post-install step downloads wordnet too), but not required of a local ``nltk_data`` folder at start-up, so that a
#: folder made before PWWS existed still serves the other recipes; a recipe that reads one checks it when it is built
#: (:func:`require_nltk_package`).
NLTK_RECIPE_PACKAGES = {"wordnet": "corpora/wordnet"}


def resource_key(kind: str) -> str:
    try:
        return RESOURCE_KEYS[kind]
    except KeyError:
        raise ValueError(f"unknown attack resource {kind!r}; known: {', '.join(RESOURCE_KEYS)}") from None


def default_location(kind: str, cache_dir: str | Path) -> str | None:
    """Where the fetch rule puts ``kind`` under ``cache_dir`` (``{cache_dir}/attacks/`` + its record's ``location``).

    ``None`` for USE and the neighbour table: stand-ins that are used only when configured, never fetched by default.
    """
    resource_key(kind)
    location = KINDS[kind].location
    return f"{cache_dir}/attacks/{location}" if location else None


def resource_location(config: dict, kind: str) -> tuple[str | None, bool]:
    """(path of resource ``kind``, whether it is a configured local path), like ``advtrain.sources.model_location``.

    A kind whose record says ``shared_with_model`` (the masked LM) is the pretrained model's own folder when
    ``model.name`` is its source (also when the config says bert-base-uncased: the same hub repository), so the
    model's fetch rule is the only one writing that folder; otherwise it has its own fetch output.
    """
    resource_key(kind)
    configured = ((config.get("attacks") or {}).get("resources") or {}).get(kind)
    if configured:
        return str(configured), True
    model = (config.get("model") or {}).get("name")
    if KINDS[kind].shared_with_model and model and hub_id(model) == KINDS[kind].source:
        return model_location(config)[0], False
    return default_location(kind, config["cache_dir"]), False


def resource_paths(config: dict) -> dict[str, tuple[str | None, bool]]:
    """{kind: (path, is_local)} of every kind: a configured local path, or where its fetch rule writes it."""
    return {kind: resource_location(config, kind) for kind in KINDS}


def require(resources: dict, kind: str) -> Path:
    """The existing local path of ``kind`` in ``resources`` ({kind: path}); otherwise a ResourceError naming its key."""
    key = resource_key(kind)
    value = resources.get(kind)
    if not value:
        raise ResourceError(f"{key}: {DESCRIPTIONS[kind]} is needed but not set. Set `{key}` to a local copy, or "
                            f"let the workflow fetch it (from {SOURCES[kind]}).")
    path = Path(value).expanduser()
    if not path.exists():
        raise ResourceError(f"{key}: {does_not_exist(path)} ({DESCRIPTIONS[kind]}). Set `{key}` to an existing "
                            "local copy, or unset it to let the workflow fetch it.")
    return path


def _bad(kind: str, path: Path, what: str) -> ResourceError:
    key = resource_key(kind)
    return ResourceError(f"{key}: {resolved(path)} is not {DESCRIPTIONS[kind]}: {what}. Point `{key}` to a valid "
                         "copy.")


def check_local(kind: str, path: str | Path) -> Path:
    """Start-up check of a configured local resource: it exists and has the files its loader reads (nothing is
    loaded or imported: this runs while Snakemake builds the DAG). A ResourceError names the key, the path (and the
    folder a relative one was resolved against) and what is missing; the loaders check the contents in the jobs."""
    path = require({kind: path}, kind)
    KINDS[kind].check(path)
    return path


def _check_word_embedding(path: Path) -> None:
    absent = [f for f in (WORD_EMBEDDING_FILES[n] for n in ("matrix", "wordlist", "nn")) if not (path / f).is_file()]
    if absent:
        raise _bad("word_embedding", path, f"missing {', '.join(absent)}")


def _check_file(kind: str):
    def check(path: Path) -> None:
        if not path.is_file():
            raise _bad(kind, path, "expected the file itself, not a folder")
    return check


def _check_nltk_data(path: Path) -> None:
    missing = [package for package, location in NLTK_PACKAGES.items()
               if not any((path / name).exists() for name in (location + ".zip", location))]
    if missing:
        raise _bad("nltk_data", path, f"NLTK package(s) {', '.join(missing)} not found in it (as "
                   f"{', '.join(NLTK_PACKAGES[p] + '.zip' for p in missing)} or unpacked folders; "
                   "fetch_nltk_data downloads them)")


def _check_masked_lm(path: Path) -> None:
    require_model_folder(path, resource_key("masked_lm"))


def _check_causal_lm(path: Path) -> None:
    require_model_folder(path, resource_key("causal_lm"))


def _check_sentence_encoder(path: Path) -> None:  # the folder only: with --use-conda, the package is the jobs' env's
    if not path.is_dir() or not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise _bad("sentence_encoder", path, "expected a folder with modules.json (or a transformers config.json)")


# ---------------------------------------------------------------------------------------------------- NLTK + import
def configure_nltk(path: str | Path | None) -> Path | None:
    """Put ``path`` first on NLTK's search path and check the packages the recipes read are found.

    ``None`` keeps NLTK's own search path (``NLTK_DATA`` and the usual folders).
    """
    import nltk

    from advtrain.downloads import nltk_folder_problem

    key = resource_key("nltk_data")
    folder = None
    if path:
        folder = require({"nltk_data": path}, "nltk_data").resolve()
        problem = nltk_folder_problem(folder)  # NLTK would skip it silently and read other folders' packages
        if problem:
            raise ResourceError(f"{key}: {problem}.")
        if str(folder) not in nltk.data.path:
            nltk.data.path.insert(0, str(folder))
    missing = [package for package, location in NLTK_PACKAGES.items() if not _nltk_has(location)]
    if missing:
        where = f"{folder}" if folder else f"NLTK's search path ({os.pathsep.join(nltk.data.path)})"
        raise ResourceError(f"{key}: NLTK package(s) {', '.join(missing)} not found in {where}. Set `{key}` to an NLTK "
                            "data folder that has them (fetch_nltk_data downloads them).")
    return folder


def require_nltk_package(package: str, recipe: str) -> None:
    """A ResourceError naming `attacks.resources.nltk_data` unless NLTK finds ``package`` (of
    :data:`NLTK_RECIPE_PACKAGES`), which ``recipe`` reads. Call after :func:`configure_nltk`."""
    import nltk

    if not _nltk_has(NLTK_RECIPE_PACKAGES[package]):
        key = resource_key("nltk_data")
        raise ResourceError(
            f"{key}: {recipe} needs the NLTK package {package} ({NLTK_RECIPE_PACKAGES[package]}.zip or an unpacked "
            f"folder), not found in NLTK's search path ({os.pathsep.join(nltk.data.path)}). Set `{key}` to an NLTK "
            "data folder that has it, or delete the fetched folder so that fetch_nltk_data fetches it again.")


def _nltk_has(location: str) -> bool:
    import nltk

    for name in (location + ".zip", location + "/", location):  # a package is a zip or an unpacked folder
        try:
            nltk.data.find(name)
            return True
        except LookupError:
            continue
    return False


#: The marker TextAttack 0.3.11 writes into its cache folder once its post-install step has run. Without it, the
#: first ``import textattack`` downloads NLTK packages (and stanza's English models when stanza is installed) into
#: the cache folder and NLTK's default folder in the home directory.
TEXTATTACK_POST_INSTALL_MARKER = "post_install_check_3"


def prepare_textattack() -> Path:
    """Make ``import textattack`` download nothing: its cache folder (``TA_CACHE_DIR``) gets the post-install marker.

    The folder is ``TA_CACHE_DIR`` where set (the workflow sets ``{cache_dir}/textattack`` for its jobs), otherwise
    a private temporary folder removed at exit. NLTK's data comes from ``attacks.resources.nltk_data`` instead
    (configure_nltk).
    TextAttack then points ``HF_HOME``, ``XDG_CACHE_HOME`` and ``TFHUB_CACHE_DIR`` at that folder too (its
    ``set_cache_dir``), and matplotlib's config folder (``MPLCONFIGDIR``, unless set) goes there as well, so nothing
    lands in the home folder.
    """
    folder = os.environ.get("TA_CACHE_DIR")
    if not folder:
        import atexit

        folder = tempfile.mkdtemp(prefix="advtrain-textattack-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ["TA_CACHE_DIR"] = folder
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TEXTATTACK_POST_INSTALL_MARKER).touch()
    # TextAttack imports matplotlib, which would otherwise create ~/.config/matplotlib.
    os.environ.setdefault("MPLCONFIGDIR", str(folder / "matplotlib"))
    return folder


def import_textattack(nltk_data: str | Path | None = None):
    """Import TextAttack after NLTK is set up (its import reads NLTK's stopwords), with nothing downloaded."""
    configure_nltk(nltk_data)
    prepare_textattack()
    import textattack

    return textattack


# ---------------------------------------------------------------------------------------------------- loaders
_CACHE: dict[tuple[str, str], object] = {}


def _cached(kind: str, path: Path, load):
    key = (kind, str(path.resolve()))
    if key not in _CACHE:
        _CACHE[key] = load(path)
    return _CACHE[key]


def load_word_embedding(path: str | Path):
    """A ``textattack.shared.WordEmbedding`` from a paragramcf-layout folder (see the module docstring)."""
    path = require({"word_embedding": path}, "word_embedding")

    def load(folder: Path):
        import numpy as np
        from textattack.shared import WordEmbedding

        files = {name: folder / file for name, file in WORD_EMBEDDING_FILES.items()}
        absent = [files[n].name for n in ("matrix", "wordlist", "nn") if not files[n].is_file()]
        if absent:
            raise _bad("word_embedding", folder, f"missing {', '.join(absent)}")
        # As WordEmbedding.counterfitted_GLOVE_embedding() reads them.
        matrix = np.load(files["matrix"])
        word2index = np.load(files["wordlist"], allow_pickle=True)
        if hasattr(word2index, "item") and getattr(word2index, "shape", None) == ():
            word2index = word2index.item()  # a dict saved with np.save
        if not isinstance(word2index, dict):
            raise _bad("word_embedding", folder, f"{files['wordlist'].name} does not hold a dict word -> index")
        nn_matrix = np.load(files["nn"])
        if matrix.ndim != 2 or nn_matrix.ndim != 2 or nn_matrix.shape[0] != matrix.shape[0]:
            raise _bad("word_embedding", folder, f"shapes {matrix.shape} (matrix) and {nn_matrix.shape} (nn) disagree")
        if word2index and max(word2index.values()) >= matrix.shape[0]:
            raise _bad("word_embedding", folder, "word indices exceed the matrix rows")
        index2word = {index: word for word, index in word2index.items()}
        embedding = WordEmbedding(matrix, word2index, index2word, nn_matrix)
        for name, attr in (("mse_dist", "_mse_dist_mat"), ("cos_sim", "_cos_sim_mat")):
            if files[name].is_file():
                with open(files[name], "rb") as f:
                    table = pickle.load(f)
                # WordEmbedding writes table[a][b] on a miss, so the outer mapping must create inner dicts.
                setattr(embedding, attr, defaultdict(dict, table))
        return embedding

    return _cached("word_embedding", path, load)


def load_word_neighbours(path: str | Path) -> dict[str, list[str]]:
    """The table word -> neighbour words of a JSON file (lower-case keys; the word itself is never its neighbour)."""
    import json

    path = require({"word_neighbours": path}, "word_neighbours")

    def load(file: Path):
        if not file.is_file():
            raise _bad("word_neighbours", file, "expected the JSON file itself, not a folder")
        try:
            table = json.loads(file.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _bad("word_neighbours", file, f"not readable as JSON ({exc})") from exc
        if not isinstance(table, dict) or not all(
            isinstance(w, str) and isinstance(ns, list) and all(isinstance(n, str) for n in ns)
            for w, ns in table.items()
        ):
            raise _bad("word_neighbours", file, "expected a JSON object mapping each word to a list of words")
        if not any(table.values()):
            raise _bad("word_neighbours", file, "no word has any neighbour")
        return {w.lower(): [n.lower() for n in ns if n.lower() != w.lower()] for w, ns in table.items()}

    return _cached("word_neighbours", path, load)


def sentence_encoder_path(path: str | Path) -> Path:
    """A folder ``sentence_transformers.SentenceTransformer`` loads (a sentence-transformers or transformers folder)."""
    path = require({"sentence_encoder": path}, "sentence_encoder")
    if not path.is_dir() or not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise _bad("sentence_encoder", path, "expected a folder with modules.json (or a transformers config.json)")
    if importlib.util.find_spec("sentence_transformers") is None:
        raise ResourceError(f"{resource_key('sentence_encoder')}: the `sentence-transformers` package is not "
                            "installed; TextAttack's SBERT constraint needs it (pip install sentence-transformers).")
    return path


def use_path(path: str | Path) -> Path:
    path = require({"use": path}, "use")
    if not (path / "saved_model.pb").is_file():
        raise _bad("use", path, "expected a TF SavedModel folder with saved_model.pb")
    return path


def tensorflow_hub_available() -> bool:
    return importlib.util.find_spec("tensorflow_hub") is not None


def load_masked_lm(path: str | Path):
    """(model, tokenizer) of a masked LM folder, as WordSwapMaskedLM loads a hub name."""
    path = require({"masked_lm": path}, "masked_lm")

    def load(folder: Path):
        from transformers import AutoModelForMaskedLM, AutoTokenizer

        if not (folder / "config.json").is_file():
            raise _bad("masked_lm", folder, "no config.json")
        try:
            model = AutoModelForMaskedLM.from_pretrained(str(folder))
            tokenizer = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
        except (OSError, ValueError) as exc:
            raise _bad("masked_lm", folder, str(exc)) from exc
        return model, tokenizer

    return _cached("masked_lm", path, load)


def load_causal_lm(path: str | Path):
    """(model, tokenizer) of a causal LM folder, as OpenAttack's ``GPT2LM`` loads the hub's ``gpt2``."""
    path = require({"causal_lm": path}, "causal_lm")

    def load(folder: Path):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        _check_causal_lm(folder)
        try:
            model = AutoModelForCausalLM.from_pretrained(str(folder))
            tokenizer = AutoTokenizer.from_pretrained(str(folder), use_fast=True)
        except (OSError, ValueError) as exc:
            raise _bad("causal_lm", folder, str(exc)) from exc
        return model.eval(), tokenizer

    return _cached("causal_lm", path, load)


def hownet_file(path: str | Path) -> Path:
    """The HowNet candidate bank file; WordSwapHowNet itself unpickles it (dict word -> dict pos -> candidates)."""
    path = require({"hownet": path}, "hownet")
    if not path.is_file():
        raise _bad("hownet", path, "expected the pickle file itself, not a folder")
    return path


def check_hownet_bank(bank, path: Path) -> None:
    if not isinstance(bank, dict):
        raise _bad("hownet", path, f"holds a {type(bank).__name__}, not a dict word -> pos -> candidates")
    for word, by_pos in list(bank.items())[:100]:
        if not isinstance(word, str) or not isinstance(by_pos, dict):
            raise _bad("hownet", path, f"entry {word!r} is not word -> dict pos -> list of candidates")


def flair_model_file(path: str | Path) -> Path:
    path = require({"flair_pos": path}, "flair_pos")
    if path.is_dir():
        candidates = [path / FLAIR_MODEL_FILE] if (path / FLAIR_MODEL_FILE).is_file() else sorted(path.glob("*.pt"))
        if len(candidates) != 1:
            raise _bad("flair_pos", path, f"expected one {FLAIR_MODEL_FILE} or *.pt model file in the folder")
        path = candidates[0]
    return path


def load_flair_pos(path: str | Path):
    """flair's SequenceTagger from a local model file."""
    file = flair_model_file(path)

    def load(model_file: Path):
        from flair.models import SequenceTagger

        try:
            return SequenceTagger.load(str(model_file))
        except Exception as exc:  # flair raises ValueError, RuntimeError, pickle errors ...
            raise _bad("flair_pos", model_file, f"flair cannot load it ({exc})") from exc

    return _cached("flair_pos", file, load)


def register_flair_pos(path: str | Path) -> None:
    """Make TextAttack's ``AttackedText.pos_of_word_index`` use the local tagger.

    TextAttack 0.3.11 tags with ``textattack.shared.utils.flair_tag(sentence, "upos-fast")``, which loads
    ``SequenceTagger.load("upos-fast")`` (the hub's ``flair/upos-english-fast``) once into the module-level cache
    ``textattack.shared.utils.strings._flair_taggers``; filling that cache with the local tagger is what makes it
    offline.
    """
    from textattack.shared.utils import strings

    if not hasattr(strings, "_flair_taggers"):
        raise RuntimeError("this TextAttack version has no textattack.shared.utils.strings._flair_taggers cache; "
                           "the local flair tagger cannot be installed (advtrain.attacks targets TextAttack 0.3.11)")
    strings._flair_taggers["upos-fast"] = load_flair_pos(path)


# ---------------------------------------------------------------------------------------------------- fetchers
# Each fetcher takes the resolved ``downloads`` settings (advtrain.downloads.settings) and writes ``dest`` through a
# hidden temporary sibling (advtrain.downloads.staging): a failed fetch leaves nothing behind.
def _hint(kind: str) -> str:
    key = resource_key(kind)
    return f"Without network access, get {DESCRIPTIONS[kind]} elsewhere and set `{key}` to the local copy."


def fetch_word_embedding(dest: str | Path, sources: dict) -> Path:
    """TextAttack's ``word_embeddings/paragramcf`` zip (``downloads.word_embedding``), unpacked into ``dest``."""
    from advtrain import downloads

    dest, source, key = Path(dest), sources["word_embedding"], resource_key("word_embedding")
    with downloads.staging(dest, directory=True) as tmp:
        archive = tmp / "paragramcf.zip"
        sha256 = downloads.download_file(source["url"], archive, key=key, what=DESCRIPTIONS["word_embedding"],
                                hint=_hint("word_embedding"), retries=sources["retries"], sha256=source["sha256"],
                                checksum_key="downloads.word_embedding.sha256")
        downloads.check_zip(archive, key=key, what=DESCRIPTIONS["word_embedding"], source=source["url"],
                            hint=_hint("word_embedding"))
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(tmp / "unpacked")
        hits = [p.parent for p in (tmp / "unpacked").rglob(WORD_EMBEDDING_FILES["matrix"])]
        if len(hits) != 1:
            raise downloads.failure(key, DESCRIPTIONS["word_embedding"], source["url"],
                                    f"the zip holds {len(hits)} {WORD_EMBEDDING_FILES['matrix']}, not one",
                                    _hint("word_embedding"))
        if not source["sha256"]:  # the record of what arrived, to be pinned (see download_file)
            (hits[0] / "paragramcf.zip.sha256").write_text(f"{sha256}  paragramcf.zip\n")
        downloads.publish(hits[0], dest)
    return dest


def _fetch_file(kind: str, dest: str | Path, sources: dict) -> Path:
    from advtrain import downloads

    source = sources[kind]
    downloads.download_file(source["url"], dest, key=resource_key(kind), what=DESCRIPTIONS[kind], hint=_hint(kind),
                            retries=sources["retries"], sha256=source["sha256"],
                            checksum_key=f"downloads.{kind}.sha256")
    return Path(dest)


def fetch_hownet(dest: str | Path, sources: dict) -> Path:
    """TextAttack's HowNet candidate bank (``word_candidates_sense.pkl``, ``downloads.hownet``) into the file ``dest``."""
    return _fetch_file("hownet", dest, sources)


def fetch_word_neighbours(dest: str | Path, sources: dict) -> Path:
    """Jia et al.'s counter-fitted neighbour table (``downloads.word_neighbours``, a pinned commit) into ``dest``."""
    return _fetch_file("word_neighbours", dest, sources)


def fetch_flair_pos(dest: str | Path, sources: dict) -> Path:
    """flair's ``upos-english-fast`` tagger file (what ``SequenceTagger.load("upos-fast")`` downloads) into ``dest``.

    ``downloads.flair_pos`` names the hub repository, the revision and the file; its sha256 is the hub's.
    """
    from advtrain import downloads

    source = sources["flair_pos"]
    downloads.download_file(downloads.flair_url(source), dest, key=resource_key("flair_pos"),
                            what=DESCRIPTIONS["flair_pos"], hint=_hint("flair_pos"), retries=sources["retries"],
                            sha256=source["sha256"], checksum_key="downloads.flair_pos.sha256")
    return Path(dest)


def _snapshot(kind: str, repo_id: str, dest: str | Path, sources: dict) -> Path:
    from advtrain.sources import hub_snapshot

    return hub_snapshot(repo_id, dest, key=resource_key(kind), hint=_hint(kind), retries=sources["retries"])


def fetch_sentence_encoder(dest: str | Path, sources: dict) -> Path:
    """A sentence-transformers model from the hub (A2T's ``stsb-distilbert-base``)."""
    return _snapshot("sentence_encoder", SOURCES["sentence_encoder"], dest, sources)


def fetch_masked_lm(dest: str | Path, sources: dict) -> Path:
    """A masked LM from the hub (BAE's ``google-bert/bert-base-uncased``)."""
    return _snapshot("masked_lm", SOURCES["masked_lm"], dest, sources)


def fetch_causal_lm(dest: str | Path, sources: dict) -> Path:
    """A causal LM from the hub (OpenAttack's fluency model, ``openai-community/gpt2``)."""
    return _snapshot("causal_lm", SOURCES["causal_lm"], dest, sources)


def fetch_use(dest: str | Path, sources: dict, url: str | None = None) -> Path:
    """The Universal Sentence Encoder SavedModel that ``hub.load(url)`` reads, unpacked into ``dest``.

    With ``tensorflow_hub`` installed its resolver is used (it follows TF-Hub's move to Kaggle); otherwise the
    compressed archive is downloaded directly. Not fetched by the workflow (USE is used only when set locally).
    """
    from advtrain import downloads

    url = url or SOURCES["use"]
    dest, key = Path(dest), resource_key("use")
    with downloads.staging(dest, directory=True) as tmp:
        if tensorflow_hub_available():
            import tensorflow_hub as hub

            try:
                shutil.copytree(hub.resolve(url), tmp / "use")
            except Exception as exc:
                raise downloads.failure(key, DESCRIPTIONS["use"], url, exc, _hint("use")) from exc
        else:
            archive = tmp / "use.tar.gz"
            downloads.download_file(url + "?tf-hub-format=compressed", archive, key=key, what=DESCRIPTIONS["use"],
                                    hint=_hint("use"), retries=sources["retries"])
            with tarfile.open(archive) as tf:
                tf.extractall(tmp / "use", filter="data")
        downloads.publish(tmp / "use", dest)
    return dest


def fetch_nltk_data(dest: str | Path, sources: dict) -> Path:
    """The NLTK packages the recipes read (what TextAttack's post-install step downloads), into ``dest``."""
    from advtrain.downloads import fetch_nltk_packages

    return fetch_nltk_packages([*NLTK_PACKAGES, *NLTK_RECIPE_PACKAGES], dest, index_url=sources["nltk_index"],
                               key=resource_key("nltk_data"), retries=sources["retries"])


def source_of(kind: str, sources: dict):
    """What decides the content a fetch of ``kind`` gets: its ``downloads`` setting, or its hub id."""
    resource_key(kind)
    setting = KINDS[kind].downloads_key
    return (sources.get(setting) if setting else None) or SOURCES[kind]


def fetch(kind: str, dest: str | Path, sources: dict | None = None) -> Path:
    """Download resource ``kind`` into ``dest`` (the path :func:`default_location` gives) from ``sources`` (the
    resolved ``downloads`` settings; default: the public sources)."""
    from advtrain import downloads

    resource_key(kind)
    return KINDS[kind].fetch(dest, sources or downloads.settings({}))


# ---------------------------------------------------------------------------------------------------- the kinds
@dataclass(frozen=True)
class ResourceKind:
    """One kind of attack resource: everything the package and the workflow know about it.

    Adding a kind is one record in :data:`KINDS` (with its fetcher and check above), a ``path_or_null`` key under
    the schema's ``attacks.resources`` (and its ``downloads`` setting, if any); ``tests/repository/test_registries.py`` checks
    the schema against this table.
    """

    kind: str  # the key under `attacks.resources`
    description: str  # what it is, in error messages
    source: str  # where TextAttack (or the library it calls) downloads it from; the fetcher uses the same source
    is_file: bool  # the fetch output is a file, not a folder
    location: str | None  # under {cache_dir}/attacks/; None: a stand-in, used only when set, never fetched
    fetch: Callable[[str | Path, dict], Path]  # (dest, the resolved `downloads` settings) -> dest
    check: Callable[[Path], object]  # start-up check of an existing local copy (reads no file's contents)
    downloads_key: str | None = None  # the `downloads` setting that decides its source (None: `source`, a hub id)
    shared_with_model: bool = False  # the pretrained model's folder when `model.name` is `source`

    @property
    def key(self) -> str:
        return f"attacks.resources.{self.kind}"


_FLAIR_REPO = _DOWNLOADS["flair_pos"]["repo"]

#: Every attack resource kind, in the order the workflow lists them.
KINDS: dict[str, ResourceKind] = {r.kind: r for r in (
    ResourceKind("word_embedding", "TextAttack's counter-fitted word embedding (paragramcf folder)",
                 _DOWNLOADS["word_embedding"]["url"], is_file=False, location="paragramcf",
                 fetch=fetch_word_embedding, check=_check_word_embedding, downloads_key="word_embedding"),
    ResourceKind("word_neighbours", "a counter-fitted synonym-neighbour table (JSON object word -> list of words)",
                 _DOWNLOADS["word_neighbours"]["url"], is_file=True, location=None,
                 fetch=fetch_word_neighbours, check=_check_file("word_neighbours"), downloads_key="word_neighbours"),
    ResourceKind("sentence_encoder", "a sentence-transformers model folder (stsb-distilbert-base for A2T)",
                 "sentence-transformers/stsb-distilbert-base", is_file=False,
                 location=slug("sentence-transformers/stsb-distilbert-base"),
                 fetch=fetch_sentence_encoder, check=_check_sentence_encoder),
    ResourceKind("use", "the Universal Sentence Encoder (TF-Hub SavedModel folder)",
                 "https://tfhub.dev/google/universal-sentence-encoder/3", is_file=False, location=None,
                 fetch=fetch_use, check=use_path),
    ResourceKind("masked_lm", "a masked language model folder (google-bert/bert-base-uncased for BAE)",
                 "google-bert/bert-base-uncased", is_file=False,
                 location=f"masked_lm/{slug('google-bert/bert-base-uncased')}",
                 fetch=fetch_masked_lm, check=_check_masked_lm, shared_with_model=True),
    ResourceKind("hownet", "TextAttack's HowNet synonym candidates (word_candidates_sense.pkl)",
                 _DOWNLOADS["hownet"]["url"], is_file=True, location="hownet/word_candidates_sense.pkl",
                 fetch=fetch_hownet, check=_check_file("hownet"), downloads_key="hownet"),
    ResourceKind("flair_pos", "flair's English UPOS tagger (upos-english-fast model file)",
                 _FLAIR_REPO, is_file=True, location=f"{slug(_FLAIR_REPO)}/{FLAIR_MODEL_FILE}",
                 fetch=fetch_flair_pos, check=flair_model_file, downloads_key="flair_pos"),
    ResourceKind("nltk_data", "an NLTK data folder (stopwords, averaged_perceptron_tagger_eng, universal_tagset)",
                 _DOWNLOADS["nltk_index"], is_file=False, location="nltk_data",
                 fetch=fetch_nltk_data, check=_check_nltk_data, downloads_key="nltk_index"),
    # Not a recipe's: attack_validity's perplexities of the original and adversarial texts (OpenAttack's GPT2LM).
    ResourceKind("causal_lm", "a causal language model folder (openai-community/gpt2 for the fluency metric)",
                 "openai-community/gpt2", is_file=False, location=f"causal_lm/{slug('openai-community/gpt2')}",
                 fetch=fetch_causal_lm, check=_check_causal_lm),
)}

#: Views of :data:`KINDS`: each kind's config key, description, source and fetcher.
RESOURCE_KEYS: dict[str, str] = {kind: r.key for kind, r in KINDS.items()}
DESCRIPTIONS: dict[str, str] = {kind: r.description for kind, r in KINDS.items()}
#: The URLs are the public defaults of the config's ``downloads`` settings (advtrain.downloads.DEFAULTS).
SOURCES: dict[str, str] = {kind: r.source for kind, r in KINDS.items()}
FETCHERS = {kind: r.fetch for kind, r in KINDS.items()}
