"""The paper's conclusions as hypotheses, with three verdicts each: on this run, on the paper's own tables, and what
the run's configuration lets it test (issue 25; docs/claims.md).

A claim (``config/claims.yaml``) has one or more hypotheses; a hypothesis compares a side (a method or a family of
methods) with one or more other sides on one metric, in a direction. :func:`expand` turns a hypothesis into
concrete comparisons, one per ``than`` side, given the configured methods, their families, datasets, attacks and
seeds. Then:

- **run verdict** (:func:`run_verdict`): per-example outcomes of both sides on the same examples, seed s against
  seed s, one stratum per (dataset, evaluation set or attack, seed). A family's outcome on an example is the mean of
  its members' outcomes (the share of its methods that got the example right), so every example counts once however
  many methods a family has; a one-method side's outcome is 0 or 1. Per example d = side - than. The test is the
  exact sign test on d pooled over strata (:func:`advtrain.stats.stratified_mcnemar` on the counts of d > 0 and
  d < 0): with one method per side d is -1, 0 or 1 and this is the stratified exact McNemar test of the report's
  paired tables. The effect is the mean over strata of the mean d (percentage points) with the paired bootstrap
  interval of :func:`advtrain.stats.paired_difference` (examples resampled within each stratum).
  Supported: p < alpha with the claimed sign; contradicted: p < alpha with the other sign; else inconclusive, with
  the smallest effect the sample could have detected (:func:`detectable_effect`).
- **paper verdict** (:func:`paper_verdict`): whether the published numbers (:mod:`advtrain.paper`) point the claimed
  way in every cell the hypothesis covers, with the paper's families; a family's cell value is its members' mean.
- **configuration**: which methods, datasets, attacks, seeds and sample sizes the run verdict rests on, or why the
  run cannot test the comparison (a side with no configured method, a dataset or attack not configured).

A claim's verdict combines its comparisons: supported when every comparison is supported (an intersection-union
test, valid at alpha without adjustment), contradicted when one is contradicted after Holm's adjustment over the
claim's comparisons, not testable when none could be tested, else inconclusive.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from scipy.optimize import brentq
from scipy.stats import norm

from advtrain import paper
from advtrain.predictions import load_correct
from advtrain.stats import Bootstrap, holm, paired_difference, stratified_mcnemar

#: The paper's families (Section 4, "Baselines"). A method's own ``family`` config key overrides this.
DEFAULT_FAMILIES = {
    "BERT": "baseline",
    "SSMBA": "AT-DA", "BackTranslation": "AT-DA",
    "A2T": "AT-IP", "A2T_MLM": "AT-IP", "BERT_Attack": "AT-IP",
    "LDS": "AT-EP", "PGD-AT": "AT-EP",
}

#: A method outside the paper takes the family of its one training part (a method is a composition of parts, see
#: config.yaml `methods`); one with several parts (e.g. BackTranslation_PGD-AT) belongs to no family unless its
#: config says so, since it would stand for two families at once.
PART_FAMILIES = {"augment": "AT-DA", "adversarial_input": "AT-IP", "adversarial_embedding": "AT-EP",
                 "smoothing": "smoothing",  # RanMASK, SAFER (issue 27): certified by randomised smoothing
                 # Flooding-X changes the loss only: no adversarial examples, so it is no AT family (not the baseline).
                 "flooding": "regularisation"}

#: Metrics: what the run pairs per example, and what the paper's tables show.
METRICS = {
    "accuracy": "in-distribution test accuracy (Table 4)",
    "ood_accuracy": "out-of-distribution accuracy (Table 4)",
    "robustness": "accuracy under attack; the paper's Table 2 shows ASR, lower = more robust",
    "lca_match_ratio": "LCA match ratio per POS tag (Table 5)",
    "lca_ablation_accuracy": "top-neuron probe accuracy (Table 7)",
}
DIRECTIONS = ("higher", "lower")
SUPPORTED, CONTRADICTED, INCONCLUSIVE, UNTESTABLE = "supported", "contradicted", "inconclusive", "not testable"


class ClaimsError(ValueError):
    """A claims file that cannot be read as claims; the message names the file, the claim and the key."""


# --------------------------------------------------------------------------- the claims file


@dataclass(frozen=True)
class Side:
    kind: str  # "method" or "family"
    name: str

    @property
    def label(self) -> str:
        return self.name if self.kind == "method" else f"{self.name} (family)"


@dataclass(frozen=True)
class Hypothesis:
    metric: str
    side: Side
    than: tuple[Side, ...]
    direction: str
    datasets: tuple[str, ...] | None = None  # None = all
    attacks: tuple[str, ...] | None = None
    ood: tuple[str, ...] | None = None

    def text(self, than: Side) -> str:
        scope = [f"{key} {', '.join(values)}" for key, values in
                 (("on", self.datasets), ("attacks", self.attacks), ("ood", self.ood)) if values]
        return (f"{self.side.label} {self.direction} than {than.label} in {self.metric}"
                + (f" ({'; '.join(scope)})" if scope else ""))


@dataclass(frozen=True)
class Claim:
    id: str
    quote: str
    where: str
    hypotheses: tuple[Hypothesis, ...]


def load_claims(path: str | Path) -> list[Claim]:
    """The claims of a YAML file (see config/claims.yaml), checked."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ClaimsError(f"claims file {path}: cannot read it ({e})") from e
    return parse_claims(data, str(path))


def parse_claims(data, source: str = "claims") -> list[Claim]:
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise ClaimsError(f"{source}: expected a mapping with a `claims` list")
    claims, seen = [], set()
    for i, entry in enumerate(data["claims"]):
        where = f"{source}: claims[{i}]"
        if not isinstance(entry, dict):
            raise ClaimsError(f"{where}: expected a mapping")
        cid = _text(entry, "id", where)
        where = f"{source}: claim {cid}"
        if cid in seen:
            raise ClaimsError(f"{where}: `id` repeats an earlier claim's")
        seen.add(cid)
        unknown = set(entry) - {"id", "quote", "where", "hypotheses"}
        if unknown:
            raise ClaimsError(f"{where}: unknown key(s) {sorted(unknown)}")
        hypotheses = entry.get("hypotheses")
        if not isinstance(hypotheses, list) or not hypotheses:
            raise ClaimsError(f"{where}: `hypotheses` must be a non-empty list")
        claims.append(Claim(cid, _text(entry, "quote", where), _text(entry, "where", where),
                            tuple(_hypothesis(h, f"{where}, hypotheses[{j}]") for j, h in enumerate(hypotheses))))
    return claims


def _text(entry: dict, key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ClaimsError(f"{where}: `{key}` must be a non-empty string")
    return value.strip()


def _side(value, where: str) -> Side:
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in ("method", "family"):
        raise ClaimsError(f"{where}: a side is {{method: NAME}} or {{family: NAME}}, got {value!r}")
    kind, name = next(iter(value.items()))
    if not isinstance(name, str) or not name:
        raise ClaimsError(f"{where}: the {kind} name must be a non-empty string")
    return Side(kind, name)


def _scope(h: dict, key: str, where: str) -> tuple[str, ...] | None:
    value = h.get(key, "all")
    if value == "all":
        return None
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ClaimsError(f"{where}: `{key}` must be `all` or a non-empty list of names")
    return tuple(value)


def _hypothesis(h, where: str) -> Hypothesis:
    if not isinstance(h, dict):
        raise ClaimsError(f"{where}: expected a mapping")
    unknown = set(h) - {"metric", "side", "than", "direction", "datasets", "attacks", "ood"}
    if unknown:
        raise ClaimsError(f"{where}: unknown key(s) {sorted(unknown)}")
    if h.get("metric") not in METRICS:
        raise ClaimsError(f"{where}.metric: {h.get('metric')!r} is not one of {', '.join(METRICS)}")
    if h.get("direction") not in DIRECTIONS:
        raise ClaimsError(f"{where}.direction: {h.get('direction')!r} is not one of {', '.join(DIRECTIONS)}")
    than = h.get("than")
    if not isinstance(than, list) or not than:
        raise ClaimsError(f"{where}.than: must be a non-empty list of sides")
    hyp = Hypothesis(h["metric"], _side(h.get("side"), f"{where}.side"),
                     tuple(_side(t, f"{where}.than[{k}]") for k, t in enumerate(than)), h["direction"],
                     _scope(h, "datasets", where), _scope(h, "attacks", where), _scope(h, "ood", where))
    if hyp.attacks and hyp.metric != "robustness":
        raise ClaimsError(f"{where}.attacks: only a robustness hypothesis has attacks")
    if hyp.ood and hyp.metric != "ood_accuracy":
        raise ClaimsError(f"{where}.ood: only an ood_accuracy hypothesis has ood sets")
    return hyp


# --------------------------------------------------------------------------- families and the run


def method_families(methods: Mapping[str, dict | None]) -> dict[str, str | None]:
    """{method: family} for configured methods (their config entries): the entry's ``family`` key, else the paper's
    family of that name, else the family of the method's one training part; None when it has no family."""
    families = {}
    for name, spec in methods.items():
        spec = spec or {}
        if spec.get("family"):
            families[name] = spec["family"]
        elif name in DEFAULT_FAMILIES:
            families[name] = DEFAULT_FAMILIES[name]
        else:
            parts = [PART_FAMILIES[p] for p in PART_FAMILIES if spec.get(p) is not None]
            families[name] = parts[0] if len(parts) == 1 else ("baseline" if not parts else None)
    return families


@dataclass(frozen=True)
class Run:
    """What a run configured: the verdicts' scope. ``families``: {method: family or None}."""

    methods: tuple[str, ...]
    families: Mapping[str, str | None]
    datasets: tuple[str, ...]
    ood: tuple[str, ...] = ()
    attacks: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (1,)
    lca_methods: tuple[str, ...] = ()
    lca_seeds: tuple[int, ...] = ()
    #: {part ("evaluation", "attacks", "lca"): why this run did not make it}: ``snakemake --omit-from``
    #: (:func:`advtrain.summary.omitted_evidence`); the claims that need the part are not testable, for that reason.
    omitted: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: dict, omitted: Mapping[str, str] | None = None) -> Run:
        """From a workflow config (the keys config.yaml has today: ``methods``, ``run``, ``datasets`` roles,
        ``attacks.recipes``, ``seeds``, ``lca``) and the parts the invocation omitted."""
        run = config.get("run") or {}
        methods = tuple(run.get("methods") or config["methods"])
        datasets = config.get("datasets") or {}
        lca = config.get("lca") or {}
        seeds = tuple(config.get("seeds") or (1,))
        return cls(methods=methods, families=method_families({m: config["methods"].get(m) for m in methods}),
                   datasets=tuple(run.get("datasets") or [d for d, s in datasets.items() if s.get("role") == "train"]),
                   ood=tuple(d for d, s in datasets.items() if s.get("role") == "ood")
                   if run.get("ood_datasets") is None else tuple(run["ood_datasets"]),
                   attacks=tuple((config.get("attacks") or {}).get("recipes") or ()), seeds=seeds,
                   lca_methods=tuple(m for m in lca.get("methods") or () if m in methods),
                   lca_seeds=tuple(lca.get("seeds") or seeds), omitted=dict(omitted or {}))


def members(side: Side, methods: Sequence[str], families: Mapping[str, str | None]) -> list[str]:
    """The methods a side stands for among ``methods``."""
    if side.kind == "method":
        return [side.name] if side.name in methods else []
    return [m for m in methods if families.get(m) == side.name]


@dataclass(frozen=True)
class Comparison:
    """One hypothesis against one ``than`` side, made concrete for a run."""

    claim: Claim
    number: str  # e.g. "C3.2": the claim's second comparison
    hypothesis: Hypothesis
    than: Side
    side_methods: tuple[str, ...] = ()
    than_methods: tuple[str, ...] = ()
    cells: tuple[tuple[str, str], ...] = ()  # (dataset, evaluated on: split, attack, "tags" or "seeds")
    seeds: tuple[int, ...] = ()
    untestable: str | None = None


def _pick(names: Sequence[str], scope: tuple[str, ...] | None, case: bool = True) -> list[str]:
    if scope is None:
        return list(names)
    wanted = set(scope) if case else {s.lower() for s in scope}
    return [n for n in names if (n if case else n.lower()) in wanted]


def _sides(h: Hypothesis, than: Side, methods: Sequence[str], families) -> tuple[list[str], list[str]]:
    side = members(h.side, methods, families)
    # A method never stands on both sides: BackTranslation against AT-DA means "the other AT-DA methods".
    other = [m for m in members(than, methods, families) if m not in side]
    return side, other


def expand(claim: Claim, run: Run) -> list[Comparison]:
    """The claim's comparisons on this run: for each hypothesis and each of its ``than`` sides, the methods on both
    sides, the (dataset, evaluation set or attack) cells and the seeds; ``untestable`` says why not when the run
    lacks a side, a dataset or an attack."""
    out = []
    for h in claim.hypotheses:
        for than in h.than:
            number = f"{claim.id}.{len(out) + 1}"
            lca = h.metric.startswith("lca_")
            methods = run.lca_methods if lca else run.methods
            side, other = _sides(h, than, methods, run.families)
            cells, why = _cells(h, run)
            missing = [label for label, names in ((h.side.label, side), (than.label, other)) if not names]
            if missing:  # every reason, so a user sees all that their configuration would need
                why = "; ".join([f"no configured {'LCA ' if lca else ''}method for {' or '.join(missing)}",
                                 *([why] if why else [])])
            part = evidence_part(h.metric)
            if part in run.omitted:
                why = "; ".join([f"{part} {run.omitted[part]}", *([why] if why else [])])
            out.append(Comparison(claim, number, h, than, tuple(side), tuple(other), tuple(cells),
                                  run.lca_seeds if lca else run.seeds, why))
    return out


def evidence_part(metric: str) -> str:
    """The part of the study a metric is measured in (:data:`advtrain.summary.EVIDENCE`'s keys)."""
    if metric.startswith("lca_"):
        return "lca"
    return "attacks" if metric == "robustness" else "evaluation"


def _cells(h: Hypothesis, run: Run) -> tuple[list[tuple[str, str]], str | None]:
    if h.metric == "lca_match_ratio":
        return [("treebank", "tags")], None
    if h.metric == "lca_ablation_accuracy":
        return [("treebank", "seeds")], None
    datasets = _pick(run.datasets, h.datasets)
    if not datasets:
        return [], f"dataset(s) {', '.join(h.datasets)} not configured"
    if h.metric == "accuracy":
        return [(d, "in_distribution") for d in datasets], None
    if h.metric == "ood_accuracy":
        sets = _pick(run.ood, h.ood)
        return [(d, o) for d in datasets for o in sets], (None if sets else "no ood dataset configured")
    attacks = _pick(run.attacks, h.attacks, case=False)
    return [(d, a) for d in datasets for a in attacks], (None if attacks else "no attack configured")


# --------------------------------------------------------------------------- the run's outcomes


@dataclass
class Evidence:
    """The run's per-example records, as the workflow stores them.

    ``correct``: {(dataset, method, seed): {split: bool array}} from ``results/eval/{dataset}/{method}/
    seed{seed}.predictions.npz`` (:func:`advtrain.predictions.load_correct`); ``summaries``: the gathered attack
    summaries ``results/attacks/{dataset}/{method}/seed{seed}/{attack}.json`` (their ``examples``); ``lca``: the LCA
    analyses ``results/lca/analysis/{method}/seed{seed}.json``.
    """

    correct: Mapping[tuple[str, str, int], Mapping[str, np.ndarray]] = field(default_factory=dict)
    summaries: Sequence[dict] = ()
    lca: Sequence[dict] = ()

    @classmethod
    def from_files(cls, evals: Sequence[str | Path] = (), attacks: Sequence[str | Path] = (),
                   lca: Sequence[str | Path] = ()) -> Evidence:
        """From the workflow's files: the eval JSONs (their predictions lie beside them, seed{s}.json ->
        seed{s}.predictions.npz, as the paired_examples rule reads them), gathered attack summaries, LCA analyses."""
        correct = {}
        for path in map(Path, evals):
            e = json.loads(path.read_text())
            correct[(e["dataset"], e["method"], e["seed"])] = load_correct(path.with_suffix(".predictions.npz"))
        return cls(correct=correct, summaries=[json.loads(Path(p).read_text()) for p in attacks],
                   lca=[json.loads(Path(p).read_text()) for p in lca])

    def outcomes(self, metric: str, dataset: str, evaluated_on: str, method: str, seed: int) -> pd.Series | None:
        """Per-unit outcomes of one model (index: the unit, example or tag or seed), or None when not recorded."""
        if metric in ("accuracy", "ood_accuracy"):
            split = self.correct.get((dataset, method, seed), {}).get(evaluated_on)
            return None if split is None else pd.Series(np.asarray(split, dtype=float))
        if metric == "robustness":
            for s in self.summaries:
                if (s["dataset"], s["method"], s["seed"]) == (dataset, method, seed) \
                        and s["attack"].lower() == evaluated_on.lower():
                    f = pd.DataFrame(s["examples"])
                    # Accuracy under attack: the attack failed on an example the model classified correctly
                    # (skipped = misclassified already), the per-example outcome the report's paired tests use.
                    return pd.Series((f["result_type"] == "Failed").to_numpy(dtype=float), index=f["index"])
            return None
        run = next((r for r in self.lca if r["method"] == method and r["seed"] == seed), None)
        if run is None:
            return None
        if metric == "lca_match_ratio":
            rows = [r for r in run["association"] if r["total"]]
            return pd.Series([r["match"] / r["total"] for r in rows], index=[r["tag"] for r in rows])
        return pd.Series([float(run["ablation_accuracy"])], index=[seed])


def _side_mean(evidence: Evidence, metric: str, dataset: str, evaluated_on: str, methods: Sequence[str],
               seed: int) -> tuple[pd.Series | None, list[str]]:
    """A side's per-unit outcome: the mean over its members with a record (a family's share of methods right)."""
    found = {m: evidence.outcomes(metric, dataset, evaluated_on, m, seed) for m in methods}
    found = {m: s for m, s in found.items() if s is not None}
    if not found:
        return None, []
    frame = pd.concat(found, axis=1)
    if metric != "lca_match_ratio" and frame.isna().any().any():
        raise ValueError(f"{dataset}/{evaluated_on}, seed {seed}: {', '.join(found)} were evaluated on different "
                         "examples (record indices differ)")
    # Tags are the units of the match ratio: keep those every member has words for.
    return frame.dropna().mean(axis=1), list(found)


def strata(comparison: Comparison, evidence: Evidence) -> list[dict]:
    """The comparison's strata: per (dataset, evaluated on, seed) the two sides' outcomes on the same units."""
    out = []
    metric = comparison.hypothesis.metric
    for dataset, evaluated_on in comparison.cells:
        if metric == "lca_ablation_accuracy":  # one value per seed: the seeds are the units, in one stratum
            pair = _seed_units(comparison, evidence)
            if pair is not None:
                out.append({"key": (dataset, evaluated_on, "all"), **pair})
            continue
        for seed in comparison.seeds:
            a, used_a = _side_mean(evidence, metric, dataset, evaluated_on, comparison.side_methods, seed)
            b, used_b = _side_mean(evidence, metric, dataset, evaluated_on, comparison.than_methods, seed)
            if a is None or b is None:
                continue
            common = a.index.intersection(b.index)
            if metric != "lca_match_ratio" and not len(common) == len(a) == len(b):
                raise ValueError(f"{dataset}/{evaluated_on}, seed {seed}: the two sides were evaluated on different "
                                 "examples")
            if not len(common):  # no tag with words for every model: nothing to pair
                continue
            out.append({"key": (dataset, evaluated_on, seed), "a": a[common].to_numpy(),
                        "b": b[common].to_numpy(), "methods": used_a + used_b, "seeds": [seed]})
    return out


def _seed_units(comparison: Comparison, evidence: Evidence) -> dict | None:
    a, b, used, seeds = [], [], {}, []
    for seed in comparison.seeds:
        x, ua = _side_mean(evidence, "lca_ablation_accuracy", "", "", comparison.side_methods, seed)
        y, ub = _side_mean(evidence, "lca_ablation_accuracy", "", "", comparison.than_methods, seed)
        if x is not None and y is not None:
            a.append(float(x.iloc[0]))
            b.append(float(y.iloc[0]))
            used.update(dict.fromkeys(ua + ub))  # an ordered set: the claimed side's methods first
            seeds.append(seed)
    return {"a": np.array(a), "b": np.array(b), "methods": list(used), "seeds": seeds} if a else None


# --------------------------------------------------------------------------- statistics


def detectable_effect(n: int, second_moment: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest mean paired difference delta (in the units of d) that a two-sided test at ``alpha`` detects
    with probability ``power`` from n paired units whose differences d have observed E[d^2] = ``second_moment``.

    Normal approximation of McNemar's test (Connor 1987): n = (z_{1-alpha/2} sqrt(psi) + z_power sqrt(psi -
    delta^2))^2 / delta^2, where for binary outcomes E[d^2] = psi is the discordance rate (the share of pairs where
    exactly one side is right): the variance of d is psi under the null and psi - delta^2 under the alternative. The
    same formula serves a family's fractional d (E[d^2] then plays psi's part). Solved for delta; NaN when the sample
    could detect no effect at all (no discordant pair, or n too small for even delta = sqrt(psi)).
    """
    if n <= 0 or second_moment <= 0:
        return math.nan
    za, zb = norm.ppf(1 - alpha / 2), norm.ppf(power)
    top = math.sqrt(second_moment)

    def gap(delta: float) -> float:  # increasing in delta; its root is the detectable effect
        return delta * math.sqrt(n) - za * top - zb * math.sqrt(max(second_moment - delta * delta, 0.0))

    if gap(top) < 0:
        return math.nan
    return float(brentq(gap, 1e-12, top, xtol=1e-10))


def paired_test(strata_: Sequence[dict], direction: str, bootstrap: Bootstrap, *key) -> dict:
    """The run verdict of one comparison from its strata (outcomes in [0, 1] per unit; ``a`` the claimed side).

    Exact sign test on d = a - b pooled over strata (:func:`advtrain.stats.stratified_mcnemar` with each stratum's
    counts of d > 0 and d < 0: McNemar's test when both sides are single methods), the mean difference over strata
    in percentage points with its paired bootstrap interval (:func:`advtrain.stats.paired_difference`, strata in
    place of seeds), and, when inconclusive, the detectable effect at power 0.8 (pp) from the pooled units.
    """
    alpha = 1.0 - bootstrap.confidence
    if not strata_:
        return {"verdict": UNTESTABLE, "effect": math.nan, "low": math.nan, "high": math.nan, "p": math.nan,
                "side_only": 0, "than_only": 0, "units": 0, "detectable": math.nan}
    diffs = [np.asarray(s["a"], float) - np.asarray(s["b"], float) for s in strata_]
    test = stratified_mcnemar([(int((d > 0).sum()), int((d < 0).sum())) for d in diffs])
    effect = paired_difference({s["key"]: (100.0 * np.asarray(s["a"], float), 100.0 * np.asarray(s["b"], float))
                                for s in strata_}, bootstrap, *key)
    claimed = 1.0 if direction == "higher" else -1.0
    # The test's direction (more units where the side is ahead) and the mean effect's sign must agree: with a
    # family's fractional d or unequal strata they can differ, and then neither reading is established.
    sign = np.sign(test["b"] - test["c"]) if np.sign(test["b"] - test["c"]) == np.sign(effect["difference"]) else 0
    if test["p"] < alpha and sign == claimed:
        verdict = SUPPORTED
    elif test["p"] < alpha and sign == -claimed:
        verdict = CONTRADICTED
    else:
        verdict = INCONCLUSIVE
    pooled = np.concatenate(diffs)
    detectable = 100.0 * detectable_effect(len(pooled), float(np.mean(pooled ** 2)), alpha)
    return {"verdict": verdict, "effect": effect["difference"], "low": effect["low"], "high": effect["high"],
            "p": test["p"], "side_only": test["b"], "than_only": test["c"], "units": len(pooled),
            "detectable": detectable}


def run_verdict(comparison: Comparison, evidence: Evidence, bootstrap: Bootstrap) -> dict:
    """The run verdict of one comparison with what it rests on (methods, cells, seeds, units)."""
    if comparison.untestable:
        return {**paired_test([], comparison.hypothesis.direction, bootstrap), "rests_on": "",
                "why_not": comparison.untestable}
    found = strata(comparison, evidence)
    result = paired_test(found, comparison.hypothesis.direction, bootstrap, "claims", comparison.number)
    if not found:
        return {**result, "rests_on": "", "why_not": "configured, but no records found"}
    methods = list(dict.fromkeys(m for s in found for m in s["methods"]))
    cells = list(dict.fromkeys(f"{s['key'][0]}/{s['key'][1]}" for s in found))
    seeds = sorted({seed for s in found for seed in s["seeds"]})
    sizes = sorted({len(s["a"]) for s in found})
    return {**result, "why_not": "",
            "rests_on": f"{', '.join(methods)}; {', '.join(cells)}; seeds {', '.join(map(str, seeds))}; "
                        f"{len(found)} {'stratum' if len(found) == 1 else 'strata'} of {'/'.join(map(str, sizes))} units"}


# --------------------------------------------------------------------------- the paper's tables


def paper_cells(h: Hypothesis, than: Side) -> list[dict]:
    """The cells of the paper's tables the comparison covers, with both sides' values (the members' mean, the
    paper's families) and whether they point the claimed way. A tie does not. Table 2's ASR is lower when more
    robust, so a claim of higher robustness is a claim of lower ASR."""
    methods, values, higher_better, unit = _paper_table(h)
    side, other = _sides(h, than, [m for m in DEFAULT_FAMILIES if m in methods], DEFAULT_FAMILIES)
    if not side or not other:
        return []
    claimed_higher = (h.direction == "higher") == higher_better
    cells = []
    for label, value_of in values:
        side_values, than_values = {m: value_of(m) for m in side}, {m: value_of(m) for m in other}
        a, b = float(np.mean(list(side_values.values()))), float(np.mean(list(than_values.values())))
        cells.append({"cell": label, "side": a, "than": b, "agrees": a > b if claimed_higher else a < b,
                      "unit": unit, "side_values": side_values, "than_values": than_values})
    return cells


def _values_text(label: str, mean: float, values: Mapping[str, float]) -> str:
    """"LDS 81.80", or for a family its mean and its members: "AT-EP 84.98 (LDS 81.80, PGD-AT 88.16)"."""
    if len(values) == 1:
        return f"{next(iter(values))} {mean:.2f}"
    return f"{label} {mean:.2f} ({', '.join(f'{m} {v:.2f}' for m, v in values.items())})"


def _paper_table(h: Hypothesis) -> tuple[list[str], list[tuple[str, object]], bool, str]:
    """(the table's methods, [(cell label, method -> value)] in the hypothesis' scope, higher is better, unit)."""
    if h.metric in ("accuracy", "ood_accuracy"):
        t = paper.load("table4_accuracy").set_index("method")
        pairs = [tuple(c.split("_on_")) for c in t.columns if "_on_" in c]
        pairs = [(d, e) for d, e in pairs if (h.datasets is None or d in h.datasets)
                 and ((d == e) if h.metric == "accuracy" else (d != e and (h.ood is None or e in h.ood)))]
        return list(t.index), [(d if d == e else f"{d}→{e}", lambda m, c=f"{d}_on_{e}": float(t.loc[m, c]))
                               for d, e in pairs], True, "accuracy %"
    if h.metric == "robustness":
        t = paper.load("table2_asr")
        t = t[t["attack"] != "Average"]  # the paper's own average of the other cells, not a cell of its own
        if h.datasets is not None:
            t = t[t["dataset"].isin(h.datasets)]
        if h.attacks is not None:  # claims name attacks by recipe (textfooler), the table by label (TextFooler)
            t = t[t["attack"].str.lower().isin({a.lower() for a in h.attacks})]
        return list(t.columns), [(f"{r['dataset']} {r['attack']}", lambda m, r=r: float(r[m]))
                                 for _, r in t.iterrows()], False, "ASR %"
    if h.metric == "lca_match_ratio":
        t = paper.load("table5_lca").set_index("pos")
        methods = list(dict.fromkeys(c.rsplit("_", 1)[0] for c in t.columns))
        return methods, [(f"POS {tag}", lambda m, tag=tag: 100.0 * t.loc[tag, f"{m}_match"] / t.loc[tag, f"{m}_total"])
                         for tag in t.index], True, "match %"
    t = paper.load("table7_ablation")
    return list(t.columns), [("top-10 neurons", lambda m: float(t.loc[0, m]))], True, "accuracy %"


def _agreement(cells: int, disagree: int) -> str:
    noun = "cell" if cells == 1 else "cells"
    if not disagree:
        return f"agrees in the 1 {noun}" if cells == 1 else f"agrees in all {cells} {noun}"
    return f"disagrees in {disagree} of {cells} {noun}"


def paper_verdict(h: Hypothesis, than: Side) -> dict:
    """Whether the paper's numbers point the claimed way in every cell the comparison covers, and the cells that
    do not."""
    cells = paper_cells(h, than)
    if not cells:
        return {"paper": "not in the paper's tables", "paper_cells": 0, "paper_disagreeing": 0, "paper_disagree": ""}
    bad = [c for c in cells if not c["agrees"]]
    listed = "; ".join(f"{c['cell']}: {_values_text(h.side.name, c['side'], c['side_values'])} vs "
                       f"{_values_text(than.name, c['than'], c['than_values'])}" for c in bad)
    return {"paper": _agreement(len(cells), len(bad)),
            "paper_cells": len(cells), "paper_disagreeing": len(bad),
            "paper_disagree": f"{listed} ({cells[0]['unit']})" if bad else ""}


# --------------------------------------------------------------------------- the table


def claims_table(claims: Sequence[Claim], run: Run, evidence: Evidence, bootstrap: Bootstrap) -> pd.DataFrame:
    """One row per comparison: the claim, the hypothesis, the run verdict with its effect, interval, p-value and
    detectable effect, what it rests on (or why it cannot be tested), and the paper verdict."""
    rows = []
    for claim in claims:
        for c in expand(claim, run):
            r = run_verdict(c, evidence, bootstrap)
            rows.append({
                "claim": claim.id, "comparison": c.number, "quote": claim.quote, "where": claim.where,
                "hypothesis": c.hypothesis.text(c.than), "metric": c.hypothesis.metric,
                "direction": c.hypothesis.direction,
                "side_methods": ", ".join(c.side_methods), "than_methods": ", ".join(c.than_methods),
                "run_verdict": r["verdict"], "effect_pp": r["effect"], "ci_low": r["low"], "ci_high": r["high"],
                "confidence": bootstrap.confidence, "p_value": r["p"], "side_only": r["side_only"],
                "than_only": r["than_only"], "units": r["units"], "detectable_pp": r["detectable"],
                "rests_on": r["rests_on"], "why_not": r["why_not"],
                **paper_verdict(c.hypothesis, c.than),
            })
    return pd.DataFrame(rows)


def combine(rows: pd.DataFrame, alpha: float) -> str:
    """A claim's run verdict from its comparisons (module docstring): contradicted when one comparison is, after
    Holm's adjustment over the claim's tested comparisons; supported when all are; else inconclusive."""
    tested = rows[rows["run_verdict"] != UNTESTABLE]
    if tested.empty:
        return UNTESTABLE
    adjusted = holm(tested["p_value"].to_numpy(float))
    if ((tested["run_verdict"] == CONTRADICTED).to_numpy() & (adjusted < alpha)).any():
        verdict = CONTRADICTED
    elif len(tested) == len(rows) and (tested["run_verdict"] == SUPPORTED).all():
        return SUPPORTED
    else:
        verdict = INCONCLUSIVE
    return verdict if len(tested) == len(rows) else f"{verdict} ({len(tested)} of {len(rows)} comparisons tested)"


def claim_summary(table: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """One row per claim: its quote and place, the combined run verdict and the paper verdict over all cells."""
    rows = []
    for cid, group in table.groupby("claim", sort=False):
        cells, disagree = int(group["paper_cells"].sum()), int(group["paper_disagreeing"].sum())
        rows.append({"claim": cid, "quote": group["quote"].iloc[0], "where": group["where"].iloc[0],
                     "run": combine(group, alpha),
                     "paper": _agreement(cells, disagree) if cells else "not in the paper's tables"})
    return pd.DataFrame(rows)


def _number(value: float, digits: int = 2, sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def display_table(table: pd.DataFrame) -> pd.DataFrame:
    """The comparisons formatted for reading."""
    ci = f"{round(100 * table['confidence'].iloc[0])}% CI" if len(table) else "CI"
    return pd.DataFrame({
        "comparison": table["comparison"], "hypothesis": table["hypothesis"],
        "run": table["run_verdict"],
        "effect (pp)": table["effect_pp"].map(lambda v: _number(v, sign=True)),
        ci: [f"[{_number(lo)}, {_number(hi)}]" if not math.isnan(lo) else "—"
             for lo, hi in zip(table["ci_low"], table["ci_high"], strict=True)],
        "p": table["p_value"].map(lambda p: "—" if math.isnan(p) else ("< 0.001" if p < 0.001 else f"{p:.3f}")),
        "detectable (pp, power 0.8)": [_number(d) if v == INCONCLUSIVE else "" for d, v in
                                       zip(table["detectable_pp"], table["run_verdict"], strict=True)],
        "rests on / why not": [r or w for r, w in zip(table["rests_on"], table["why_not"], strict=True)],
        "paper": table["paper"],
        "paper cells that disagree": table["paper_disagree"],
    })


def _markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)"
    return frame.astype(str).apply(lambda col: col.str.replace("|", r"\|", regex=False)).to_markdown(
        index=False, disable_numparse=True)


CAPTION = "The paper's claims on this run and on the paper's own tables"


def render_markdown(table: pd.DataFrame, run: Run, alpha: float = 0.05) -> str:
    """The caption line first, as every table of the report (results/summary.md quotes the file under its own
    heading): then the run, the claims, and every comparison."""
    summary = claim_summary(table, alpha)
    families = ", ".join(f"{m}: {run.families.get(m) or '—'}" for m in run.methods)
    return "\n\n".join([
        CAPTION,
        f"Run: methods {', '.join(run.methods)} (families {families}); datasets {', '.join(run.datasets) or '—'}; "
        f"ood {', '.join(run.ood) or '—'}; attacks {', '.join(run.attacks) or '—'}; seeds "
        f"{', '.join(map(str, run.seeds))}; LCA methods {', '.join(run.lca_methods) or '—'}"
        f"{''.join(f'; {part} {why}' for part, why in run.omitted.items())}. "
        f"Run verdicts: exact paired sign (McNemar) tests pooled over strata at alpha = {alpha:g}; "
        "paper verdicts: do the published numbers point the claimed way in every cell (docs/claims.md).",
        "**Claims**", _markdown(summary),
        "**Comparisons**", _markdown(display_table(table)),
    ]) + "\n"


def render_latex(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """The claims, then every comparison, as booktabs tables (the report's other tables come as tex too)."""
    from advtrain.tables import to_latex

    return "\n".join([to_latex(claim_summary(table, alpha).drop(columns="quote"), CAPTION),
                      to_latex(display_table(table), "The comparisons")])


def write_claims(table: pd.DataFrame, run: Run, stem: str | Path, alpha: float = 0.05) -> list[Path]:
    """``{stem}.csv`` (every comparison, numbers), ``{stem}.md`` (claims, then comparisons) and ``{stem}.tex``."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    csv, md, tex = stem.with_suffix(".csv"), stem.with_suffix(".md"), stem.with_suffix(".tex")
    table.to_csv(csv, index=False)
    md.write_text(render_markdown(table, run, alpha), encoding="utf-8")
    tex.write_text(render_latex(table, alpha), encoding="utf-8")
    return [csv, md, tex]


def summary_section(table: pd.DataFrame, alpha: float = 0.05) -> str:
    """The claims, one line each (run and paper verdicts), for ``results/summary.md`` and the HTML report."""
    return "## The paper's claims\n\n" + _markdown(claim_summary(table, alpha)) + \
        "\n\nEvery comparison, its effect, interval and detectable effect: `results/tables/claims.md`.\n"


def make_claims(claims_file: str | Path, config: dict, evals: Sequence[str | Path], attacks: Sequence[str | Path],
                lca: Sequence[str | Path], stem: str | Path,
                omitted: Mapping[str, str] | None = None) -> tuple[pd.DataFrame, list[Path]]:
    """What rule `claims` runs: the claims of ``claims_file`` judged on the run of ``config`` from its eval JSONs
    (predictions beside them), gathered attack summaries and LCA analyses, less the parts ``omitted`` (see
    :class:`Run`); writes ``{stem}.csv``, ``.md`` and ``.tex``."""
    bootstrap = Bootstrap.from_config(config.get("statistics"))
    run = Run.from_config(config, omitted)
    table = claims_table(load_claims(claims_file), run, Evidence.from_files(evals, attacks, lca), bootstrap)
    return table, write_claims(table, run, stem, alpha=1.0 - bootstrap.confidence)
