"""``benchmarks/gpu_check.py``: its ``--smoke`` run on the CPU (every section, a tiny BERT) writes real figures, and
without ``--smoke`` it refuses to run on a machine without CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO, shared_data

SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def run_check(*args: str, cuda_hidden: bool = False, timeout: int = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1")
    if cuda_hidden:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


def test_without_smoke_and_without_cuda_it_stops_naming_smoke(tmp_path):
    out = tmp_path / "check.json"
    result = run_check("--json", str(out), cuda_hidden=True)
    assert result.returncode != 0
    assert "no CUDA device" in result.stderr and "--smoke" in result.stderr
    assert not out.exists()


def positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "check.json"
    result = run_check("--smoke", "--json", str(out), "--nltk-data", str(shared_data("nltk_data")))
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.mark.shared_data
def test_smoke_report_has_every_section_on_the_cpu(smoke):
    assert smoke["mode"] == "smoke" and smoke["device"] == "cpu" and smoke["gpu"] is None
    assert set(smoke["sections"]) == {"training", "precision", "broker", "shared_gpu"}
    for section in smoke["sections"].values():
        assert positive(section["section_seconds"])
    assert positive(smoke["total_seconds"])


@pytest.mark.shared_data
def test_smoke_training_steps_are_measured_in_each_precision(smoke):
    training = smoke["sections"]["training"]
    assert set(training["precisions"]) == {"fp32", "bf16"}
    for cell in training["precisions"].values():
        for key in ("clean", "pgd_at", "a2t"):
            row = cell[key]
            assert positive(row["steps_per_second"]) and positive(row["median_step_ms"]) and positive(row["seconds"])
            assert row["steps_per_second"] == pytest.approx(1000 / row["median_step_ms"], rel=1e-3)
            assert row["min_step_ms"] <= row["median_step_ms"]
            assert positive(row["peak_rss_mib"]) and row["gpu_peak_mib"] is None  # no GPU memory on a CPU
            assert row["forward_dtype"] == [row["expected_dtype"]]  # the precision reached the forward
        assert cell["a2t"]["rows_per_step"] > cell["clean"]["rows_per_step"] == training["batch"]
        clean = cell["clean"]["steps_per_second"]
        assert cell["pgd_at_over_clean"] == pytest.approx(clean / cell["pgd_at"]["steps_per_second"], rel=1e-2)
        assert cell["a2t_step_over_clean"] == pytest.approx(clean / cell["a2t"]["steps_per_second"], rel=1e-2)
        generation = cell["a2t"]["generation"]
        assert generation["attacked"] == 4  # --smoke's a2t_attacked
        assert generation["succeeded"] + generation["failed"] + generation["skipped"] == generation["attacked"]
        assert positive(generation["examples_per_second"]) and positive(generation["peak_rss_mib"])
        assert generation["examples_per_second"] == pytest.approx(
            generation["attacked"] / generation["generation_seconds"], rel=1e-2)
    assert training["precisions"]["fp32"]["clean"]["forward_dtype"] == ["torch.float32"]
    assert training["precisions"]["bf16"]["clean"]["forward_dtype"] == ["torch.bfloat16"]


@pytest.mark.shared_data
def test_smoke_precision_equivalence_carries_correlations(smoke):
    section = smoke["sections"]["precision"]
    corr = section["margin_corr_min_over_lengths"]
    assert set(corr) == {"fp32", "bf16"} and all(set(c) == {"pgd", "lds", "alum"} for c in corr.values())
    assert all(value == pytest.approx(1.0) for value in corr["fp32"].values())  # fp32 against itself
    for per_method in corr.values():
        for value in per_method.values():
            assert value is not None and -1.0 <= value <= 1.0
    assert positive(section["seconds"]) and positive(section["peak_rss_mib"])
    assert section["rows"] and all(-1.0 <= r["margin_corr"] <= 1.0 for r in section["rows"])


@pytest.mark.shared_data
def test_smoke_broker_rates_and_their_ratios(smoke):
    broker = smoke["sections"]["broker"]
    modes = ("textattack", "one_at_a_time", "broker")
    for mode in modes:
        assert positive(broker["examples_per_minute"][mode]) and positive(broker["mode_seconds"][mode])
        assert broker["examples_per_minute"][mode] == pytest.approx(
            broker["examples"] / broker["mode_seconds"][mode] * 60, rel=1e-6)
    for mode in ("textattack", "one_at_a_time"):
        assert broker["speedup"][mode] == pytest.approx(
            broker["examples_per_minute"]["broker"] / broker["examples_per_minute"][mode], rel=1e-6)
    assert broker["examples"] == 4 and positive(broker["peak_rss_mib"])
    assert sum(broker["asr"]["broker"][k] for k in ("Successful", "Failed", "Skipped")) == broker["examples"]


@pytest.mark.shared_data
def test_smoke_two_shards_share_one_device_through_its_slots(smoke):
    shared = smoke["sections"]["shared_gpu"]
    one, two = shared["runs"]["one_job"], shared["runs"]["two_jobs"]
    assert len(one["processes"]) == 1 and len(two["processes"]) == 2
    claims = [p["claimed"] for p in two["processes"]]
    assert shared["same_gpu_two_slots"] and {c["device"] for c in claims} == {"cpu-stand-in"}
    assert sorted(s for c in claims for s in c["slots"]) == [0, 1]
    assert one["processes"][0]["examples"] == shared["examples"] == sum(p["examples"] for p in two["processes"])
    for run in (one, two):
        assert run["combined_examples_per_minute"] == pytest.approx(shared["examples"] / run["wall_seconds"] * 60,
                                                                    rel=1e-3)
        for process in run["processes"]:
            assert positive(process["attack_seconds"]) and positive(process["peak_rss_mib"])
            assert process["examples_per_minute"] == pytest.approx(
                process["examples"] / process["attack_seconds"] * 60, rel=1e-3)
    assert shared["two_over_one"] == pytest.approx(
        two["combined_examples_per_minute"] / one["combined_examples_per_minute"], rel=1e-3)
