"""Downloads: where each remote resource comes from (config ``downloads``), and the one way a file is fetched.

Every fetch writes into a hidden temporary sibling of its destination (``.<name>.part-XXXX``), checks what it got
(length, sha256 where one is recorded, archive integrity), and only then renames it into place: a failed or
interrupted fetch never leaves something a later run would take as complete. Network errors, HTTP 5xx and 429 are
retried (``downloads.retries`` attempts); a 404 or a checksum mismatch is not. Every failure is a
:class:`~advtrain.errors.ResourceError` that names the config key of the resource and how to supply it locally.

Fetched files and folders are made readable by all and writable by their owner only, whatever the umask: NLTK
(3.10+) refuses to read data from a folder or file that its group or other users can write to.

Torch-free: ``workflow/rules/common.smk`` imports this module.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urljoin

from advtrain.errors import ResourceError

#: The public sources, as the schema's defaults (config ``downloads``). A sha256 of null means none is published:
#: the fetch then logs the value it got and writes it beside the file (``<file>.sha256``), to be pinned here.
DEFAULTS: dict = {
    "retries": 3,
    "nltk_index": "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/index.xml",
    "word_embedding": {
        "url": "https://textattack.s3.amazonaws.com/word_embeddings/paragramcf",
        "sha256": None,
    },
    "hownet": {
        "url": "https://textattack.s3.amazonaws.com/transformations/hownet/word_candidates_sense.pkl",
        "sha256": None,
    },
    "word_neighbours": {
        "url": "https://raw.githubusercontent.com/robinjia/certified-word-sub/"
               "42006fe9ea68663443be794a96d9daccfc664dc4/data/counterfitted_neighbors.json",
        "sha256": "103247143f39bd5dd66850f3a912393392641dbd98093c61e2b24a4cc8a96fb0",
    },
    "flair_pos": {
        "repo": "flair/upos-english-fast",
        "revision": "8748c221af08eaf5c9f098fdb478564662837b10",
        "file": "pytorch_model.bin",
        "sha256": "33bc2c250d4ae8714641305b21bbfcbf069fae647b3f15db45a90de187c14bde",
    },
}


def settings(config: dict) -> dict:
    """``downloads`` of ``config`` over :data:`DEFAULTS` (one level deep: a resource's unset keys keep theirs)."""
    given = config.get("downloads") or {}
    return {key: {**default, **(given.get(key) or {})} if isinstance(default, dict) else given.get(key, default)
            for key, default in DEFAULTS.items()}


def flair_url(source: dict) -> str:
    """The file URL of the flair tagger on the hub (``HF_ENDPOINT`` honoured)."""
    from huggingface_hub import hf_hub_url

    return hf_hub_url(source["repo"], source["file"], revision=source.get("revision"))


# ---------------------------------------------------------------------------------------------------- errors, retry
def failure(key: str, what: str, source: str, reason: object, hint: str) -> ResourceError:
    return ResourceError(f"{key}: could not download {what} from {source} ({reason}). {hint}")


def local_hint(key: str, thing: str = "a local copy") -> str:
    return f"Without network access, get it elsewhere and set `{key}` to {thing}."


class IncompleteDownload(OSError):
    """The connection closed before the announced number of bytes arrived."""


def transient(exc: BaseException) -> bool:
    """Whether trying again may help: network errors, timeouts, cut-off bodies, HTTP 5xx and 429."""
    import requests

    if type(exc).__name__ == "OfflineModeIsEnabled":  # HF_HUB_OFFLINE is set: no attempt will reach the hub
        return False
    response = getattr(exc, "response", None)
    if isinstance(exc, requests.HTTPError) and response is not None:
        return response.status_code >= 500 or response.status_code == 429
    return isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError,
                            IncompleteDownload))


def retrying(call: Callable, *, retries: int, what: str, wait: float = 1.0):
    """``call()``, tried up to ``retries`` times while it fails transiently (waits 1, 2, 4 ... s between tries)."""
    for attempt in range(1, max(1, int(retries)) + 1):
        try:
            return call()
        except Exception as exc:
            if attempt >= retries or not transient(exc):
                raise
            pause = min(wait * 2 ** (attempt - 1), 30.0)
            print(f"{what}: {exc}; trying again in {pause:g} s (attempt {attempt + 1} of {retries})", flush=True)
            time.sleep(pause)
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------------- staging
def _shareable(path: Path) -> None:
    """Owner read/write, everyone else read-only (folders 0755, files 0644), whatever the umask."""
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        if p.is_symlink():
            continue
        p.chmod(0o755 if p.is_dir() else 0o644)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def staging(dest: str | Path, directory: bool = False) -> Iterator[Path]:
    """A hidden temporary sibling of ``dest`` to fill; removed if the block fails. Call :func:`publish` to keep it."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{dest.name}.part-"
    if directory:
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=prefix))
    else:
        fd, name = tempfile.mkstemp(dir=dest.parent, prefix=prefix)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
    finally:
        if tmp.exists() or tmp.is_symlink():
            _remove(tmp)


def publish(tmp: Path, dest: str | Path) -> Path:
    """Move a finished ``tmp`` to ``dest`` in one rename (same folder), replacing what was there."""
    dest = Path(dest)
    _shareable(tmp)
    if dest.exists() or dest.is_symlink():
        _remove(dest)
    os.replace(tmp, dest)
    return dest


# ---------------------------------------------------------------------------------------------------- one file
def _get(url: str, tmp: Path, timeout: float) -> dict[str, str]:
    """Stream ``url`` into ``tmp``; the hex digests (sha256, md5) of what arrived."""
    import requests

    digests = {"sha256": hashlib.sha256(), "md5": hashlib.md5(usedforsecurity=False)}
    received = 0
    with requests.get(url, stream=True, timeout=timeout, headers={"Accept-Encoding": "identity"}) as response:
        response.raise_for_status()
        announced = response.headers.get("Content-Length")
        with open(tmp, "wb") as f:
            for chunk in response.iter_content(chunk_size=1 << 20):
                f.write(chunk)
                received += len(chunk)
                for digest in digests.values():
                    digest.update(chunk)
        if announced is not None and "Content-Encoding" not in response.headers and received != int(announced):
            raise IncompleteDownload(f"the connection closed after {received} of {announced} bytes")
    return {name: digest.hexdigest() for name, digest in digests.items()}


def download_file(url: str, dest: str | Path, *, key: str, what: str, hint: str, retries: int = 3,
                  sha256: str | None = None, md5: str | None = None, checksum_key: str | None = None,
                  timeout: float = 60.0) -> str:
    """Download ``url`` into the file ``dest`` (see the module docstring); returns the sha256 of the file.

    ``sha256`` / ``md5``: the digest the file must have (``checksum_key`` names the setting that holds it). With
    neither, the sha256 that arrived is logged and written to ``<dest>.sha256`` so that it can be pinned.
    """
    dest = Path(dest)
    print(f"downloading {what} from {url}", flush=True)
    with staging(dest) as tmp:
        try:
            digests = retrying(lambda: _get(url, tmp, timeout), retries=retries, what=f"{what} ({url})")
        except Exception as exc:
            raise failure(key, what, url, exc, hint) from exc
        expected = {name: value.lower() for name, value in (("sha256", sha256), ("md5", md5)) if value}
        for name, value in expected.items():
            if digests[name] != value:
                where = f"the recorded `{checksum_key}`" if checksum_key else "the checksum NLTK's index records"
                raise failure(key, what, url, f"its {name} is {digests[name]}, not {value} as {where} says: the file "
                              "changed at the source or was corrupted on the way; nothing was kept", hint)
        size = tmp.stat().st_size
        publish(tmp, dest)
    if expected:
        print(f"{what}: {size} bytes, {' and '.join(expected)} as recorded", flush=True)
    else:
        Path(f"{dest}.sha256").write_text(f"{digests['sha256']}  {dest.name}\n")
        pin = f" Pin it with `{checksum_key}: {digests['sha256']}`." if checksum_key else ""
        print(f"{what}: {size} bytes, sha256 {digests['sha256']} (no checksum recorded; written to {dest}.sha256).{pin}",
              flush=True)
    return digests["sha256"]


def check_zip(path: Path, *, key: str, what: str, source: str, hint: str) -> None:
    """A clear error (naming ``key``) for an archive that is cut short or corrupt."""
    try:
        with zipfile.ZipFile(path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise failure(key, what, source, f"not a complete zip archive: {exc}", hint) from exc
    if bad is not None:
        raise failure(key, what, source, f"the zip archive is corrupt at {bad}", hint)


# ---------------------------------------------------------------------------------------------------- NLTK
def fetch_nltk_packages(packages: list[str], dest: str | Path, *, index_url: str, key: str, retries: int = 3) -> Path:
    """NLTK data packages (as ``nltk.download`` would install them) into the folder ``dest``, from NLTK's index.

    nltk 3.10's own downloader refuses any address that is not globally routable (so no local mirror or stand-in
    can serve it) and any proxy unless ``NLTK_ALLOW_PROXIED_URLOPEN=1``; here the index and the package zips are
    fetched like every other file (``HTTPS_PROXY`` is honoured), each zip checked against the checksum the index
    records. The zips are kept as they are: NLTK reads packages from their zips.
    """
    from xml.etree import ElementTree

    from nltk.downloader import Package

    hint = local_hint(key, "an NLTK data folder that has " + ", ".join(packages))
    dest = Path(dest)
    with staging(dest, directory=True) as tmp:
        index_file = tmp / ".index.xml"
        download_file(index_url, index_file, key=key, what="NLTK's data index", hint=hint, retries=retries)
        try:
            root = ElementTree.parse(index_file).getroot()
        except ElementTree.ParseError as exc:
            raise failure(key, "NLTK's data index", index_url, f"not an NLTK index: {exc}", hint) from exc
        index_file.unlink()
        Path(f"{index_file}.sha256").unlink(missing_ok=True)
        entries = {element.get("id"): element for element in root.iter("package")}
        for name in packages:
            if name not in entries:
                raise failure(key, f"NLTK package {name!r}", index_url, "the index does not list it", hint)
            package = Package.fromxml(entries[name])
            url = urljoin(index_url, package.url)
            file = tmp / package.filename
            download_file(url, file, key=key, what=f"NLTK package {name}", hint=hint, retries=retries,
                          sha256=getattr(package, "sha256_checksum", None), md5=package.checksum)
            Path(f"{file}.sha256").unlink(missing_ok=True)
            if file.suffix == ".zip":
                check_zip(file, key=key, what=f"NLTK package {name}", source=url, hint=hint)
        publish(tmp, dest)
    return dest


def nltk_folder_problem(folder: str | Path) -> str | None:
    """Why NLTK would refuse to read ``folder`` (a data root another account can write to), or None.

    As NLTK judges it: the folder, every folder below it and every file in those (packages live in category folders
    such as ``corpora/``; a file at the top, such as Snakemake's ``.snakemake_timestamp``, is never read).
    """
    from nltk import pathsec

    folder = Path(folder)
    if not pathsec.ENFORCE or os.name != "posix" or not folder.is_dir():
        return None
    for p in [folder, *folder.rglob("*")]:
        st = p.lstat()
        if stat.S_ISLNK(st.st_mode) or (p.parent == folder and not stat.S_ISDIR(st.st_mode)):
            continue
        if not pathsec._private_stat(st):
            return (f"{p} is writable by its group or other users, or owned by another account "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}); NLTK 3.10+ will not read from it. Run "
                    f"`chmod -R go-w {folder}`")
    return None
