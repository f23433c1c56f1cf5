"""The whole study on the tiny model, offline: every table and figure, results/summary.md and the HTML report.

It runs with HF_HUB_OFFLINE=1 and every resource local, under a guard (a ``sitecustomize`` on PYTHONPATH, so
Snakemake and every job's Python load it) that refuses and records any connection that is not to the local
machine: the run must finish with nothing recorded. The report is then opened in headless Chromium.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap

import pandas as pd
import pytest
from attack_fixtures import build_resources
from conftest import TWO_JOBS, apt_install, run_snakemake, shared_data, tiny_config, write_config
from test_lca_workflow import pos_file

pytestmark = pytest.mark.slow

TABLES = ["table1_toy", "table2_asr", "table3_runtime", "table4_accuracy", "table5_lca", "table6_lca_words",
          "table7_ablation", "paired_vs_bert", "paired_examples_vs_bert", "attack_budget", "attack_effort",
          "attack_validity", "attack_examples", "claims"]
RECIPES = ["textfooler", "a2t"]
FIGURES = ["figure1_toy", "tradeoff", *(f"budget_MR_{a}" for a in RECIPES)]
# The report() outputs: every table's csv and every figure's png.
REPORTED = [f"{t}.csv" for t in TABLES] + [f"{f}.png" for f in FIGURES]

NETWORK_GUARD = '''
"""Refuse and record every connection that leaves the machine (loaded by every Python process of the run)."""
import ipaddress
import os
import socket

_LOG = os.environ["NETWORK_GUARD_LOG"]
_connect = socket.socket.connect
_getaddrinfo = socket.getaddrinfo


def _local(host):
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _refuse(what):
    with open(_LOG, "a") as log:
        log.write(f"{os.getpid()} {what}\\n")
    raise OSError(f"network access refused by the test guard: {what}")


def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _refuse(f"connect {address!r}")
    return _connect(self, address)


def getaddrinfo(host, *args, **kwargs):
    if not _local(host if isinstance(host, str) else None if host is None else host.decode()):
        _refuse(f"getaddrinfo {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = connect
socket.getaddrinfo = getaddrinfo
'''


def study_config(tiny_model, tiny_data, workdir, resources):
    config = tiny_config(tiny_model, tiny_data, workdir / "resources")
    config["methods"]["PGD-AT"] = {"adversarial_embedding": {"kind": "pgd", "grad_norm": "steepest"}}
    config["methods"]["LDS"] = {"adversarial_embedding": {"kind": "lds", "grad_norm": "steepest"}}
    # Two seeds (paired comparisons need them), one training dataset, two recipes: the attack jobs dominate the
    # cost (test_attack_workflow runs all four recipes; test_robustness_workflow adds a dataset by config).
    config["run"] = {"methods": ["BERT", "PGD-AT"], "datasets": ["MR"]}
    config["statistics"] = {"bootstrap_resamples": 200, "adversarial_samples": 2}
    config["attacks"] = {
        "recipes": RECIPES, "num_examples": 3, "query_budget": 40, "shards": 1,
        "model_batch_size": 16, "seed": 765, "resources": {**dict.fromkeys(["use"]), **resources},
    }
    config["lca"] = {
        "methods": ["BERT", "PGD-AT"], "seeds": [1],
        "data": {"source": "local", "files": {"all": str(pos_file(workdir / "pos.txt", 80))}, "test_fraction": 0.25},
        "train": {"epochs": 1},
        "probe": {"epochs": 3, "batch_size": 64, "learning_rate": 0.01, "l1": 0.001, "l2": 0.001},
        "top_neurons": 2, "words_per_neuron": 2, "ablation_neurons": 3, "search_stride": 20,
    }
    return config


@pytest.fixture(scope="module")
def study(tmp_path_factory, tiny_model, tiny_data):
    nltk_data = shared_data("nltk_data")  # textattack needs NLTK's stopwords at import
    resources = build_resources(tmp_path_factory.mktemp("study_resources"), tiny_model, nltk_data)
    workdir = tmp_path_factory.mktemp("study")
    config = study_config(tiny_model, tiny_data, workdir, resources)
    write_config(workdir, config)
    guard_dir = workdir / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(textwrap.dedent(NETWORK_GUARD))
    guard_log = workdir / "network_attempts.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "NETWORK_GUARD_LOG": str(guard_log),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(guard_dir), os.environ.get("PYTHONPATH")]))}
    proc = run_snakemake(workdir, *TWO_JOBS, env=env, timeout=3000)
    report = run_snakemake(workdir, "--report", "report.html", env=env)
    keep = os.environ.get("ADVTRAIN_KEEP_STUDY")
    if keep:  # a copy of the outputs, for benchmarks/study_outputs.py (same --basetemp on both runs)
        shutil.copytree(workdir / "results", keep, dirs_exist_ok=True)
    return workdir, config, proc, report, guard_log


def test_no_network_access_was_attempted(study):
    workdir, _, proc, _, guard_log = study
    attempts = guard_log.read_text() if guard_log.exists() else ""
    assert attempts == "", f"the run tried to reach the network:\n{attempts}"
    # The guard was active: it is importable from the run's environment.
    assert (workdir / "guard/sitecustomize.py").exists() and proc.returncode == 0


def test_every_table_and_figure_in_every_format(study):
    workdir, config, _, _, _ = study
    for stem in TABLES:
        for ext in ("csv", "md", "tex"):
            path = workdir / "results/tables" / f"{stem}.{ext}"
            assert path.stat().st_size > 0, path
        assert r"\toprule" in (workdir / f"results/tables/{stem}.tex").read_text(), stem
    for stem in FIGURES:
        for ext in ("png", "pdf"):
            assert (workdir / "results/figures" / f"{stem}.{ext}").stat().st_size > 1000, (stem, ext)
    # Mean ± sd over the two seeds, with their number and a bootstrap interval, where a table is per seed.
    table4 = pd.read_csv(workdir / "results/tables/table4_accuracy.csv").set_index("method")
    assert list(table4.index) == ["BERT", "PGD-AT"] and (table4["MR_on_MR_n"] == 2).all()
    md4 = (workdir / "results/tables/table4_accuracy.md").read_text()
    assert "±" in md4 and "MR→MR 95% CI" in md4
    assert (table4["MR_on_MR_ci_low"] <= table4["MR_on_MR_mean"]).all()
    table2 = pd.read_csv(workdir / "results/tables/table2_asr.csv")
    assert list(table2["attack"]) == ["TextFooler", "A2T", "Average"]
    assert {"BERT_ci_low", "BERT_ci_high"} <= set(table2.columns)
    paired = pd.read_csv(workdir / "results/tables/paired_vs_bert.csv")
    assert set(paired["method"]) == {"PGD-AT"} and (paired["seeds"] == 2).all()
    assert {"accuracy", "YELP accuracy", "average ASR"} <= set(paired["metric"])
    examples = pd.read_csv(workdir / "results/tables/paired_examples_vs_bert.csv")
    assert set(examples["method"]) == {"PGD-AT"} and (examples["seeds"] == 2).all()
    assert set(examples["metric"]) == {"accuracy (MR test)", "accuracy (YELP)", "accuracy under TextFooler",
                                       "accuracy under A2T"}
    assert examples["p_value"].between(0, 1).all() and (examples["p_holm"] >= examples["p_value"]).all()
    assert (examples.loc[examples["metric"] == "accuracy under A2T", "examples"] == 3).all()
    budget = pd.read_csv(workdir / "results/tables/attack_budget.csv")
    assert len(budget) == len(RECIPES) * 2 and (budget["budget"] == 40).all()
    assert budget["auc_asr_mean"].between(0, 100).all()
    curves = pd.read_csv(workdir / "results/tables/attack_budget_curves.csv")
    assert curves["budget"].max() <= 40 and set(curves["seed"]) == {1, 2}
    effort = pd.read_csv(workdir / "results/tables/attack_effort.csv")
    assert (effort["attacked"] + effort["skipped"] == 2 * 3).all()  # 3 examples per seed
    validity = pd.read_csv(workdir / "results/tables/attack_validity.csv")
    assert set(validity["attack"]) == {"TextFooler", "A2T"} and (validity["seeds"] == 2).all()
    assert ((validity["adversarial_examples"] == 0) | validity["similarity_mean"].between(-1, 1)).all()
    # The fluency columns: perplexities under the tiny GPT-2 (attacks.resources.causal_lm), at least 1 by definition.
    scored = validity[validity["adversarial_examples"] > 0]
    assert len(scored) and (scored[["perplexity_original_mean", "perplexity_adversarial_mean"]] >= 1).all().all()
    # The claims: a verdict for every comparison; those this run configures (PGD-AT, the AT-EP family, against BERT
    # in and out of distribution, under both attacks, LCA's ablation) tested, the others said why not.
    claims = pd.read_csv(workdir / "results/tables/claims.csv", keep_default_na=False, na_values=[""])
    assert set(claims["run_verdict"]) <= {"supported", "contradicted", "inconclusive", "not testable"}
    tested = claims[claims["run_verdict"] != "not testable"]
    assert {"accuracy", "ood_accuracy", "robustness", "lca_ablation_accuracy"} <= set(tested["metric"])
    assert tested["p_value"].between(0, 1).all() and (tested["rests_on"] != "").all()
    assert (claims.loc[claims["run_verdict"] == "not testable", "why_not"] != "").all()
    assert tested.loc[tested["metric"] == "robustness", "rests_on"].str.contains("MR/textfooler").all()
    for method in ("BERT", "PGD-AT"):
        for seed in (1, 2):
            assert (workdir / f"results/eval/MR/{method}/seed{seed}.predictions.npz").stat().st_size > 0
            for recipe in RECIPES:
                assert (workdir / f"results/attacks/MR/{method}/seed{seed}/{recipe}/validity.csv").exists()


def test_summary_lists_every_table_and_figure(study):
    workdir, _, proc, _, _ = study
    summary = (workdir / "results/summary.md").read_text()
    for stem in TABLES:
        assert f"### {stem}\n\n`tables/{stem}.csv`, `tables/{stem}.md`, `tables/{stem}.tex`" in summary, stem
        caption = (workdir / f"results/tables/{stem}.md").read_text().splitlines()[0]
        assert caption in summary
    for stem in FIGURES:
        assert f"![{stem}](figures/{stem}.png)" in summary
    assert "- **seeds**: 1, 2" in summary and "- **methods**: BERT, PGD-AT" in summary
    assert "## The paper's claims\n\n| claim " in summary and summary.index("## The paper's claims") < summary.index(
        "## Tables")
    assert "results/summary.md" in proc.stdout + proc.stderr  # the end-of-run message


def test_report_carries_every_table_and_figure_with_its_caption(study):
    workdir, _, _, report, _ = study
    html = (workdir / "report.html").read_text()
    for name in REPORTED:
        assert name in html, name
    # Captions are rendered from the rst files with the run's config filled in.
    assert "over 2 seed(s)" in html  # Table 4's caption
    assert "Table 1 of the toy study" in html and "LCA" in html


def chromium():
    apt_install("chromium", why="opening the report in headless Chromium")
    return shutil.which("chromium")


def headless(browser, *args, timeout=180):
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
           "--virtual-time-budget=20000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_report_opens_in_headless_chromium(study, tmp_path):
    workdir, _, _, _, _ = study
    browser = chromium()
    url = (workdir / "report.html").as_uri()
    dom = headless(browser, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-3000:]
    # The report is a script-rendered page: what the browser built, not the file's text, must show the study.
    text = re.sub(r"<[^>]+>", " ", dom.stdout)
    assert "Adversarial" in text or "adversarial" in text, text[:2000]
    for category in ("Tables", "Figures", "Robustness", "LCA", "Toy study"):
        assert category in text, category
    shot = tmp_path / "report.png"
    taken = headless(browser, "--window-size=1400,1000", f"--screenshot={shot}", url)
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-3000:]
    keep = os.environ.get("REPORT_SCREENSHOT")
    if keep:  # a developer's copy, for looking at it
        shutil.copy(shot, keep)


def test_full_config_dry_run_lists_summary_once():
    from conftest import REPO

    proc = run_snakemake(REPO, "-n", "--quiet", "rules")
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, flags=re.M))
    assert counts["summary"] == "1" and counts["toy_study"] == "1"

