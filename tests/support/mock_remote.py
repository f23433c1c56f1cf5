"""A loopback HTTP server standing in for every remote the fetch rules talk to, with faults on request.

- the Hugging Face hub, as huggingface_hub 0.36 calls it through ``HF_ENDPOINT``: ``GET /api/{models,datasets}/<repo>``
  (and ``.../revision/<rev>``: the repository's sha, file list and card data), ``HEAD``/``GET
  /[datasets/]<repo>/resolve/<rev>/<file>`` (``X-Repo-Commit``, ``ETag``, ``Content-Length``, ranges). No ``X-Xet-*``
  headers are sent, so huggingface_hub downloads over plain HTTP (hf_xet is never used);
- any other path is a static file: TextAttack's S3 files, the neighbour table, NLTK's index and its package zips.

Faults (:meth:`MockRemote.fail`) are answered in order, one per request to that path, before the file is served:
an HTTP status (404, 500 ...), ``"truncate"`` (half the file, with a matching Content-Length: a broken upstream
file) or ``"cut"`` (the full Content-Length, half the body, then the connection closes).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_API = re.compile(r"^/api/(models|datasets)/(.+?)(?:/revision/([^/]+))?$")
_RESOLVE = re.compile(r"^/(datasets/)?(.+?)/resolve/([^/]+)/(.+)$")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class MockRemote:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.repos: dict[tuple[str, str], dict[str, bytes]] = {}
        self.cards: dict[tuple[str, str], dict] = {}
        self.faults: dict[str, list] = {}
        self.log: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------------------------------ content
    def add_file(self, path: str, body: bytes) -> str:
        """Serve ``body`` at ``path``; returns its URL."""
        self.files[path] = body
        return self.url + path

    def add_repo(self, repo_id: str, files: dict[str, bytes] | Path, repo_type: str = "model",
                 card: dict | None = None) -> None:
        if isinstance(files, Path):
            files = {p.relative_to(files).as_posix(): p.read_bytes() for p in sorted(files.rglob("*")) if p.is_file()}
        self.repos[(repo_type, repo_id)] = dict(files)
        if card is not None:
            self.cards[(repo_type, repo_id)] = card

    def fail(self, path: str, *answers) -> None:
        """Answer the next requests to ``path`` with ``answers`` (statuses, "truncate", "cut"), then normally."""
        with self._lock:
            self.faults.setdefault(path, []).extend(answers)

    def reset(self) -> None:
        """No faults queued, no requests logged."""
        with self._lock:
            self.faults.clear()
            self.log.clear()

    def requests(self, path: str, method: str | None = None) -> int:
        """How many requests reached ``path`` (the exact path)."""
        with self._lock:
            return sum(1 for m, p in self.log if p == path and (method is None or m == method))

    def requested(self, suffix: str) -> list[str]:
        """The paths requested that end with ``suffix``."""
        with self._lock:
            return [p for _, p in self.log if p.endswith(suffix)]

    @staticmethod
    def commit(repo_id: str, revision: str | None) -> str:
        if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
            return revision
        return hashlib.sha1(repo_id.encode()).hexdigest()

    # ------------------------------------------------------------------------------------------ server
    def __enter__(self) -> MockRemote:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the server first (with MockRemote() as remote: ...)"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _next_fault(self, path: str):
        with self._lock:
            queue = self.faults.get(path)
            return queue.pop(0) if queue else None


def _handler(remote: MockRemote):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: a "cut" body ends with the connection

        def log_message(self, *args) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def do_GET(self) -> None:
            self._answer(head=False)

        def _answer(self, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            with remote._lock:
                remote.log.append((self.command, path))
            fault = remote._next_fault(path)
            if isinstance(fault, int):
                return self._status(fault, head)
            api = _API.match(path)
            if api:
                return self._api(api, head)
            found = self._resolve(path)
            if found is None:
                return self._status(404, head)
            body, headers = found
            if fault == "truncate":
                body = body[: len(body) // 2]
            self._body(body, headers, head, cut=fault == "cut")

        def _resolve(self, path: str):
            if path in remote.files:
                return remote.files[path], {}
            m = _RESOLVE.match(path)
            if not m:
                return None
            repo_type = "dataset" if m.group(1) else "model"
            files = remote.repos.get((repo_type, m.group(2)))
            if files is None or m.group(4) not in files:
                return None
            body = files[m.group(4)]
            return body, {"X-Repo-Commit": remote.commit(m.group(2), m.group(3)), "ETag": f'"{sha256(body)}"'}

        def _api(self, m: re.Match, head: bool) -> None:
            repo_type = "model" if m.group(1) == "models" else "dataset"
            repo_id = m.group(2)
            files = remote.repos.get((repo_type, repo_id))
            if files is None:
                return self._status(404, head, {"X-Error-Code": "RepoNotFound"})
            info = {"id": repo_id, "sha": remote.commit(repo_id, m.group(3)), "private": False,
                    "siblings": [{"rfilename": name} for name in sorted(files)]}
            if (repo_type, repo_id) in remote.cards:
                info["cardData"] = remote.cards[(repo_type, repo_id)]
            self._body(json.dumps(info).encode(), {"Content-Type": "application/json"}, head)

        def _status(self, status: int, head: bool, headers: dict | None = None) -> None:
            body = json.dumps({"error": f"mock answer {status}"}).encode()
            self._body(body, {"Content-Type": "application/json", **(headers or {})}, head, status=status)

        def _body(self, body: bytes, headers: dict, head: bool, status: int = 200, cut: bool = False) -> None:
            start = 0
            ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
            if ranged and status == 200 and not head:
                start, status = int(ranged.group(1)), 206
                headers = {**headers, "Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"}
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if not head:
                payload = body[start:]
                self.wfile.write(payload[: len(payload) // 2] if cut else payload)

    return Handler


# ---------------------------------------------------------------------------------------------------- content makers
def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def zip_folder(folder: Path, arcroot: str) -> bytes:
    """A zip of ``folder`` with its files under ``arcroot/`` (as TextAttack's paragramcf zip holds paragramcf/)."""
    return zip_bytes({f"{arcroot}/{p.relative_to(folder).as_posix()}": p.read_bytes()
                      for p in sorted(folder.rglob("*")) if p.is_file()})


def nltk_index(remote: MockRemote, packages: dict[str, tuple[str, bytes]], prefix: str = "/nltk") -> str:
    """Serve NLTK packages ({id: (subdir, zip bytes)}) and an index listing them; returns the index URL.

    The entries carry what nltk's ``Package`` reads (url, size, unzipped_size, subdir, md5 ``checksum``).
    """
    entries = []
    for package_id, (subdir, data) in packages.items():
        url = remote.add_file(f"{prefix}/packages/{subdir}/{package_id}.zip", data)
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            unzipped = sum(i.file_size for i in zf.infolist())
        entries.append(f'<package id="{package_id}" name="{package_id}" subdir="{subdir}" url="{url}" '
                       f'size="{len(data)}" unzipped_size="{unzipped}" unzip="1" '
                       f'checksum="{hashlib.md5(data).hexdigest()}" />')
    xml = "<?xml version='1.0'?>\n<nltk_data>\n<packages>\n" + "\n".join(entries) + "\n</packages>\n" \
          "<collections />\n</nltk_data>\n"
    return remote.add_file(f"{prefix}/index.xml", xml.encode())


def nltk_attack_packages() -> dict[str, tuple[str, bytes]]:
    """Tiny stand-ins for the NLTK packages the attack recipes read (found by name, as configure_nltk checks)."""
    return {
        "stopwords": ("corpora", zip_bytes({"stopwords/english": b"a\nthe\nand\nis\nit\nthis\n"})),
        "averaged_perceptron_tagger_eng": ("taggers", zip_bytes({
            "averaged_perceptron_tagger_eng/averaged_perceptron_tagger_eng.classes.json": b'["NN", "JJ"]'})),
        "universal_tagset": ("taggers", zip_bytes({"universal_tagset/en-ptb.map": b"NN\tNOUN\nJJ\tADJ\n"})),
        "wordnet": ("corpora", zip_bytes({"wordnet/lexnames": b"00\tadj.all\t3\n"})),  # PWWS's (fetched too)
    }


def treebank_package(sentences: int = 40) -> tuple[str, bytes]:
    """A tiny Penn Treebank sample in NLTK's layout (corpora/treebank/combined/wsj_*.mrg), as ("corpora", zip)."""
    trees = []
    for i in range(sentences):
        adjective = ("good", "bad", "dull", "great")[i % 4]
        trees.append(f"( (S (NP-SBJ (DT The) (NN movie)) (VP (VBD was) (ADJP (RB very) (JJ {adjective}))) (. .)) )")
    members = {f"treebank/combined/wsj_{k + 1:04d}.mrg": ("\n".join(trees[k::4]) + "\n").encode() for k in range(4)}
    return "corpora", zip_bytes(members)
