"""GPU claims on a workstation (advtrain.device), with faked GPU lists: each GPU job gets a GPU of its own, attack
shards may share one, a claim lasts as long as its process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from types import SimpleNamespace

import pytest
from conftest import REPO

from advtrain import device

pytestmark = pytest.mark.timeout(120)


def test_visible_gpus_follow_cuda_visible_devices_then_nvidia_smi():
    assert device.visible_gpus({"CUDA_VISIBLE_DEVICES": "0,2"}) == ["0", "2"]
    assert device.visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-ab12, GPU-cd34"}) == ["GPU-ab12", "GPU-cd34"]
    assert device.visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,2"}) == ["1"], "CUDA stops at the first invalid one"
    assert device.visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert device.visible_gpus({}, query=lambda: ["0", "1", "2"]) == ["0", "1", "2"]
    assert device.visible_gpus({}, query=lambda: []) == []


def test_whole_gpu_claims_get_distinct_gpus(tmp_path):
    gpus = ["0", "1"]
    first = device.try_claim(gpus, 1, True, tmp_path)
    second = device.try_claim(gpus, 1, True, tmp_path)
    assert {first.device, second.device} == {"0", "1"}
    assert device.try_claim(gpus, 1, True, tmp_path) is None, "both GPUs are taken"
    second.release()
    third = device.try_claim(gpus, 1, True, tmp_path)
    assert third.device == second.device
    first.release()
    third.release()


def test_attack_shards_share_a_gpu_and_fill_one_before_the_next(tmp_path):
    gpus = ["0", "1", "2"]
    shards = [device.try_claim(gpus, 2, False, tmp_path) for _ in range(3)]
    assert [c.device for c in shards] == ["0", "0", "1"], "two per GPU, the fullest first"
    whole = device.try_claim(gpus, 2, True, tmp_path)
    assert whole.device == "2" and whole.slots == [0, 1], "a training job takes every slot of a free GPU"
    assert device.try_claim(gpus, 2, True, tmp_path) is None, "GPU 1 is shared by a shard: not free"
    fourth = device.try_claim(gpus, 2, False, tmp_path)
    assert fourth.device == "1"
    assert device.try_claim(gpus, 2, False, tmp_path) is None
    for claim in [*shards, whole, fourth]:
        claim.release()
    assert device.try_claim(gpus, 2, True, tmp_path).device == "0"


def test_claim_sets_the_visible_gpu_and_waits_for_a_free_one(tmp_path):
    held = device.try_claim(["3"], 1, True, tmp_path)
    environ, messages = {}, []
    threading.Timer(0.5, held.release).start()
    start = time.monotonic()
    claim = device.claim_gpu(["3"], 1, True, tmp_path, poll_seconds=0.1, environ=environ, log=messages.append)
    assert time.monotonic() - start >= 0.4
    assert claim.device == "3" and environ["CUDA_VISIBLE_DEVICES"] == "3"
    assert any("waiting" in m for m in messages) and any("claimed GPU 3" in m for m in messages)
    claim.release()
    assert device.claim_gpu([], environ=environ) is None


def test_a_claim_lasts_as_long_as_its_process(tmp_path):
    """Another process's claim is respected; when that process is killed (-9), the GPU is free again."""
    code = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO / 'src')!r})
        from advtrain import device
        claim = device.try_claim(["0"], 1, True, __import__("pathlib").Path({str(tmp_path)!r}))
        print(claim.device, flush=True)
        time.sleep(600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "0"
        assert device.try_claim(["0"], 1, True, tmp_path) is None
    finally:
        proc.kill()
        proc.wait()
    claim = device.try_claim(["0"], 1, True, tmp_path)
    assert claim is not None and claim.device == "0"
    claim.release()


def test_jobs_without_a_gpu_resource_claim_nothing(monkeypatch):
    monkeypatch.setattr(device, "visible_gpus", lambda: pytest.fail("no GPU listing expected"))
    slurm_job = SimpleNamespace(resources=SimpleNamespace(gpu=0), config={})
    assert device.claim_job_gpu(slurm_job) is None
    cpu_rule = SimpleNamespace(resources=SimpleNamespace(), config={})
    assert device.claim_job_gpu(cpu_rule) is None


def test_jobs_claim_by_kind(monkeypatch, tmp_path):
    monkeypatch.setattr(device, "visible_gpus", lambda: ["0", "1"])
    monkeypatch.setattr(device, "_CLAIMS", [])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    config = {"devices": {"attack_shards_per_gpu": 2, "claim_dir": str(tmp_path)}}
    shard = device.claim_job_gpu(SimpleNamespace(resources=SimpleNamespace(gpu=1), config=config), shareable=True)
    train = device.claim_job_gpu(SimpleNamespace(resources=SimpleNamespace(gpu=2), config=config))
    assert (shard.device, len(shard.slots)) == ("0", 1)
    assert (train.device, train.slots) == ("1", [0, 1])
    for claim in device._CLAIMS:
        claim.release()
