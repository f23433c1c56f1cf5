"""Randomised-smoothing defences: RanMASK (Zeng et al. 2021) and SAFER (Ye et al. 2020).

Both train on noisy copies of the training texts and predict with an ensemble of noisy copies; both certify a
prediction from a Monte-Carlo estimate of the ensemble's vote.

- **RanMASK** (``zjiehang/RanMASK``): the noise replaces ``round(rate * words)`` randomly chosen words with the mask
  token, keeping at least two words (``utils/mask.py:50-84``). Certification (``classifier.py:396-444``): the guess
  is the majority of ``ensemble_size`` masked copies; ``certify_samples`` further copies give the count ``k`` of the
  guess, a one-sided Clopper-Pearson lower bound ``p`` at level ``alpha`` (``utils/certify.py:20-21``), and the
  radius is the smallest number of changed words ``r`` with ``(0.5 + lambda - p) / lambda >= C(n - r, keep) /
  C(n, keep)``, ``lambda = k / certify_samples`` (``utils/certify.py:24-44``). The reference's radius is the first
  size that is *not* certified (``utils/metrics.py:142-146``); :func:`ranmask_radius` returns the largest size that
  is, one less.
- **SAFER** (``lushleaf/Structure-free-certified-NLP``): each word is replaced by a random member of its
  perturbation set (itself and its counter-fitted neighbours; ``data_util.py:15-40``, TextDefender
  ``utils/safer.py:23-44``). Each word ``w`` has an overlap ``tv_w = min over neighbours w' of |S_w n S_w'| / |S_w|``
  (``evaluation.py:458-481``); a text is certified when ``p - 1 + prod(tv) >= 0.5 + mc_error``, ``p`` the share of
  random copies classified with the true label (``evaluation.py:291-297``). The reference takes the product over all
  words (any number of substitutions); :func:`safer_radius` takes it over the ``R`` smallest overlaps (its
  ``get_tv`` sorts them, ``evaluation.py:431``) for the certified accuracy at each radius ``R``.

Prediction (evaluation and the attacks' victim) averages ``ensemble_size`` copies as TextDefender's ensemble wrapper
does (``textattack/models/wrappers/huggingface_model_ensemble_wrapper.py:88-101``): ``logits`` = the mean of the
L2-normalised logits, ``votes`` = the vote shares. Each text's copies are drawn from a generator seeded by the text
(:func:`text_state`), so a text always gets the same prediction and attack records are reproducible. The ledger
rows ``ranmask-*`` and ``safer-*`` (docs/fidelity.md) list every choice. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

KINDS = ("ranmask", "safer")

#: Each kind's settings and where the value comes from (docs/fidelity.md, rows ranmask-* and safer-*).
DEFAULTS: dict[str, dict] = {
    "ranmask": {
        "mask_rate": 0.9,  # TextDefender trainer/mask.py:60 (the rate); RanMASK args.py:63 has 0.7
        "ensemble_size": 100,  # TextDefender args.py:63 (ensemble_num); RanMASK args.py:64 (predict_ensemble)
        "aggregate": "logits",  # TextDefender args.py:64; RanMASK args.py:95 has votes
        "certify_samples": 5000,  # RanMASK args.py:67 (ceritfy_ensemble)
        "alpha": 0.05,  # RanMASK args.py:76
        "seed": 0,
    },
    "safer": {
        "ensemble_size": 100,  # TextDefender args.py:63
        "aggregate": "logits",  # TextDefender args.py:64
        "similarity": 0.8,  # SAFER run.sh (--similarity_threshold 0.8), data_process.py:337
        "perturbation_size": 100,  # SAFER run.sh (--perturbation_constraint 100), data_process.py:339
        "certify_samples": 100000,  # SAFER run.sh (--num_random_sample 100000)
        "mc_error": 0.01,  # SAFER run.sh, evaluation.py:557
        "seed": 0,
    },
}
AGGREGATES = ("logits", "votes")
SETTINGS_FILE = "smoothing.json"
TABLE_FILE = "safer_perturbation.json"
#: The mask token where the tokenizer has none (a decoder-only model).
FALLBACK_MASK = "[MASK]"
_PUNCTUATION = set(string.punctuation)


def resolve(settings: dict) -> dict:
    """The part's settings with its kind's defaults filled in; a clear error for an unknown kind or aggregate."""
    kind = settings.get("kind")
    if kind not in DEFAULTS:
        raise ValueError(f"methods.<m>.smoothing.kind: {kind!r} is not one of {', '.join(KINDS)}")
    unknown = set(settings) - {"kind", *DEFAULTS[kind]}
    if unknown:
        raise ValueError(f"methods.<m>.smoothing: {', '.join(sorted(unknown))} not a {kind} setting "
                         f"(known: {', '.join(DEFAULTS[kind])})")
    out = {"kind": kind, **DEFAULTS[kind], **{k: v for k, v in settings.items() if v is not None}}
    if out["aggregate"] not in AGGREGATES:
        raise ValueError(f"methods.<m>.smoothing.aggregate: {out['aggregate']!r} is not one of {AGGREGATES}")
    return out


def text_state(seed: int, text: str) -> np.random.RandomState:
    """A generator of its own for ``text``: the same copies whenever the same text is predicted (NumPy's legacy
    generator, whose ``choice``/``randint`` draws are the references' global ``np.random`` ones)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return np.random.RandomState([int(seed) & 0xFFFFFFFF, *np.frombuffer(digest[:8], dtype=np.uint32).tolist()])


# ------------------------------------------------------------------------------------------------ RanMASK noise
def mask_words(text: str, rate: float, token: str, n: int, rng, min_keep: int = 2) -> list[str]:
    """``n`` copies of ``text`` with ``round(rate * words)`` words masked, at least ``min_keep`` kept (RanMASK
    ``utils/mask.py:50-84``: split on whitespace, Python's round, sampling without replacement)."""
    words = text.split()
    length = len(words)
    masked = round(length * rate)
    if length - masked < min_keep:
        masked = max(length - min_keep, 0)
    out = []
    for _ in range(n):
        copy = list(words)
        for i in rng.choice(list(range(length)), masked, replace=False).tolist():
            copy[i] = token
        out.append(" ".join(copy))
    return out


def kept_words(length: int, rate: float) -> int:
    """Words a certificate assumes kept (``classifier.py:415``: without mask_words's two-word floor)."""
    return length - round(length * rate)


# ------------------------------------------------------------------------------------------------ SAFER noise
def perturbation_table(words: list[str], vectors: np.ndarray, neighbours: np.ndarray, similarity: float,
                       size: int, block: int = 4096) -> dict[str, list[str]]:
    """word -> its perturbation set: itself, then its neighbours (``neighbours[i]``, nearest first, as the
    counter-fitted embedding's ``nn.npy``) with cosine similarity above ``similarity``, at most ``size`` words.

    SAFER (``data_process.py:158-314``) links words whose (post-processed) counter-fitted vectors have a dot product
    above the threshold and takes the nearest ``size`` words of each one's connected component; here a word's own
    neighbours are its set (ledger ``safer-perturbation-set``). Words without a neighbour are left out (kept as is).
    """
    norms = np.linalg.norm(vectors, axis=1)
    norms[norms == 0] = 1.0
    unit = vectors / norms[:, None]
    table = {}
    for start in range(0, len(words), block):
        rows = neighbours[start:start + block]
        cos = np.einsum("nd,nkd->nk", unit[start:start + block], unit[rows])
        for offset, (row, sims) in enumerate(zip(rows, cos, strict=True)):
            i = start + offset
            near = [words[j] for j, s in zip(row.tolist(), sims.tolist(), strict=True) if j != i and s > similarity]
            if near and size > 1:  # a set of the word alone changes nothing
                table[words[i]] = [words[i], *near][:size]
    return table


def neighbour_table(neighbours: dict[str, list[str]], size: int) -> dict[str, list[str]]:
    """word -> itself and its listed neighbours, at most ``size`` words, from a neighbour table such as
    ``counterfitted_neighbors.json`` (the file SAFER's ``data_util.py:6`` reads; its neighbours are within cosine
    0.875 of the word, above SAFER's 0.8)."""
    return {w: [w, *ns][:size] for w, ns in neighbours.items() if ns and size > 1}


def resource_kinds(settings: dict, local: dict) -> list[str]:
    """The attack resources a smoothing part reads (``local``: the kinds set to a local path): SAFER's table comes
    from ``word_neighbours`` when it is configured, as the attacks' stand-in does, else from ``word_embedding``."""
    if (settings or {}).get("kind") != "safer":
        return []
    return ["word_neighbours"] if local.get("word_neighbours") else ["word_embedding"]


def substitute_words(text: str, table: dict[str, list[str]], n: int, rng) -> list[str]:
    """``n`` copies of ``text`` with each word replaced by a random member of its set, a trailing punctuation mark
    kept (TextDefender ``utils/safer.py:23-44``; the callers lower-case, ``trainer/safer.py:63``)."""
    words = text.split()
    out = []
    for _ in range(n):
        copy = []
        for word in words:
            if word[-1] in _PUNCTUATION:
                copy.append(_sample(word[:-1], table, rng) + word[-1])
            else:
                copy.append(_sample(word, table, rng))
        out.append(" ".join(copy))
    return out


def _sample(word: str, table: dict, rng) -> str:
    choices = table.get(word)
    return choices[rng.randint(0, len(choices))] if choices else word


def overlaps(table: dict[str, list[str]]) -> dict[str, float]:
    """SAFER's per-word bound: ``min over neighbours w' of |S_w n S_w'| / |S_w|`` (``evaluation.py:471-481``); a
    neighbour without a set of its own has ``S_w' = {w'}``. Words outside the table are 1 (unchanged)."""
    sets = {w: set(s) for w, s in table.items()}
    out = {}
    for word, members in table.items():
        own = sets[word]
        out[word] = min((len(sets.get(other, {other}) & own) / len(own) for other in members[1:]), default=1.0)
    return out


def text_overlaps(text: str, tv: dict[str, float]) -> list[float]:
    """The overlap of each word of ``text``, smallest first (``evaluation.py:419-431``: a trailing punctuation
    mark stripped; words outside the table count 1)."""
    values = []
    for word in text.split():
        if word and word[-1] in _PUNCTUATION:
            word = word[:-1]
        values.append(tv.get(word, 1.0))
    return sorted(values)


# ------------------------------------------------------------------------------------------------ ensemble
def aggregate(logits: np.ndarray, n: int, method: str) -> np.ndarray:
    """One row per text from ``n`` consecutive rows of copies' logits: ``votes`` = each label's share of the
    copies' argmax; ``logits`` = the mean of the L2-normalised logits (TextDefender
    ``huggingface_model_ensemble_wrapper.py:88-101``; TextAttack then takes its softmax, the rows not summing to 1)."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = logits.shape[1]
    groups = logits.reshape(-1, n, labels)
    if method == "votes":
        votes = groups.argmax(-1)
        return np.stack([np.bincount(v, minlength=labels) / n for v in votes])
    norms = np.linalg.norm(groups, axis=-1, keepdims=True)
    return (groups / np.maximum(norms, 1e-12)).mean(axis=1)  # sklearn's normalize leaves zero rows at 0


# ------------------------------------------------------------------------------------------------ certificates
def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided lower confidence bound at level 1 - alpha on a binomial proportion (RanMASK's ``lc_bound``:
    statsmodels' ``proportion_confint(k, n, alpha=2 * alpha, method="beta")[0]``)."""
    from scipy.stats import beta

    return 0.0 if k == 0 else float(beta.ppf(alpha, k, n - k + 1))


def _unchanged_share(size: int, keep: int, radius: int) -> float:
    """The chance that ``keep`` kept words out of ``size`` miss ``radius`` changed ones: C(size-r, keep)/C(size, keep)."""
    if radius > size:
        return 0.0
    return math.comb(size - radius, keep) / math.comb(size, keep)


def ranmask_radius(bound: float, size: int, keep: int, lam: float) -> int:
    """The largest number of changed words RanMASK certifies (-1: none), for the lower bound ``bound`` on the
    guess's probability, ``size`` words of which ``keep`` are kept, and ``lam`` = the guess's share of the samples
    (``utils/certify.py:32-44``, ``classifier.py:435``: certified at r while ``C(size-r, keep)/C(size, keep)`` >
    ``(0.5 + lam - bound) / lam``)."""
    if lam <= 0:
        return -1
    threshold = (0.5 + lam - bound) / lam
    radius = 0
    while radius <= size and _unchanged_share(size, keep, radius) > threshold:
        radius += 1
    return radius - 1


def safer_radius(p: float, text_tv: list[float], mc_error: float) -> int:
    """The largest number of substituted words SAFER certifies (-1: none): ``p - 1 + prod(R smallest overlaps) >=
    0.5 + mc_error`` (``evaluation.py:297``; R = every word is the reference's certificate)."""
    radius, product = -1, 1.0
    for r in range(len(text_tv) + 1):
        if r:
            product *= text_tv[r - 1]
        if p - 1.0 + product < 0.5 + mc_error:
            break
        radius = r
    return radius


# ------------------------------------------------------------------------------------------------ the defence
@dataclass
class Smoothing:
    """A trained model's smoothing: its resolved settings, its mask token (RanMASK) or perturbation table (SAFER)."""

    settings: dict
    mask_token: str = FALLBACK_MASK
    table: dict[str, list[str]] = field(default_factory=dict)
    max_length: int | None = None  # tokens a training copy is cut at (the run's `train.max_length`; not saved)

    @property
    def kind(self) -> str:
        return self.settings["kind"]

    @property
    def size(self) -> int:
        return int(self.settings["ensemble_size"])

    def noisy(self, text: str, n: int, rng) -> list[str]:
        """``n`` noisy copies of ``text`` drawn from ``rng`` (training draws one per example and step)."""
        if self.kind == "ranmask":
            return mask_words(text, float(self.settings["mask_rate"]), self.mask_token, n, rng)
        return substitute_words(text.lower(), self.table, n, rng)

    def copies(self, text: str, n: int | None = None) -> list[str]:
        """The ensemble's copies of ``text``: the same ones every time (a generator seeded by the text)."""
        return self.noisy(text, self.size if n is None else n, text_state(self.settings["seed"], text))

    def expand(self, texts: list[str], n: int | None = None) -> list[str]:
        return [c for t in texts for c in self.copies(t, n)]

    def combine(self, logits, n: int | None = None) -> np.ndarray:
        return aggregate(logits, self.size if n is None else n, self.settings["aggregate"])

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        (folder / SETTINGS_FILE).write_text(json.dumps({**self.settings, "mask_token": self.mask_token}, indent=1)
                                            + "\n")
        if self.kind == "safer":
            (folder / TABLE_FILE).write_text(json.dumps(self.table, ensure_ascii=False))


def load(model_dir: str | Path) -> Smoothing | None:
    """The smoothing a model was trained with (saved beside its weights), or None for a plain classifier."""
    folder = Path(model_dir)
    path = folder / SETTINGS_FILE
    if not path.is_file():
        return None
    settings = json.loads(path.read_text())
    token = settings.pop("mask_token", FALLBACK_MASK)
    table = json.loads((folder / TABLE_FILE).read_text()) if settings["kind"] == "safer" else {}
    return Smoothing(resolve(settings), token, table)


def build(settings: dict, tokenizer=None, resources: dict | None = None, max_length: int | None = None) -> Smoothing:
    """The ``smoothing`` part of a method: RanMASK's mask token is the tokenizer's; SAFER's table comes from the
    counter-fitted embedding (``attacks.resources.word_embedding``) or its stand-in neighbour table."""
    smoothing = _build(resolve(settings), tokenizer, resources or {})
    smoothing.max_length = max_length
    return smoothing


def _build(settings: dict, tokenizer, resources: dict) -> Smoothing:
    if settings["kind"] == "ranmask":
        token = getattr(tokenizer, "mask_token", None) or FALLBACK_MASK
        return Smoothing(settings, token)
    from advtrain.attacks import resources as res

    if resources.get("word_neighbours"):  # the stand-in table (Jia et al.'s, also in SAFER's repository)
        return Smoothing(settings, table=neighbour_table(res.load_word_neighbours(resources["word_neighbours"]),
                                                         int(settings["perturbation_size"])))
    # The embedding's files as TextAttack's loader reads them (advtrain.attacks.resources), without importing it.
    folder = res.require(resources, "word_embedding")
    files = {name: folder / file for name, file in res.WORD_EMBEDDING_FILES.items()}
    word2index = np.load(files["wordlist"], allow_pickle=True)
    if getattr(word2index, "shape", None) == ():
        word2index = word2index.item()
    words = [w for w, _ in sorted(word2index.items(), key=lambda item: item[1])]
    table = perturbation_table(words, np.load(files["matrix"]), np.load(files["nn"]), float(settings["similarity"]),
                               int(settings["perturbation_size"]))
    return Smoothing(settings, table=table)
