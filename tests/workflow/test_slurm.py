"""The SLURM profile (profiles/slurm) against the rules, and on a real one-node SLURM cluster on localhost.

The fast tests check that every GPU rule asks SLURM for a GPU and that the profile combines sanely with the
workflow profile profiles/default. The slow test installs Debian's slurm-wlm and munge (as root), starts munged,
slurmctld and slurmd on this machine, runs the tiny workflow through `snakemake --profile` (a copy of
profiles/slurm with only the cluster-specific values replaced), runs the same config locally, and compares the
two: the same numbers, the same weights. Without slurmdbd `sacct` has no accounting database; the cluster writes
job-completion records (jobcomp/filetxt), which `sacct --completion` reads, so the test can show `sacct` lines.
"""

from __future__ import annotations

import copy
import json
import os
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, apt_install, run_snakemake, tiny_config, write_config

SLURM_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
# The plugin pinned in pyproject.toml (test and slurm extras); the README quotes it.
PLUGIN_VERSION = "2.8.0"
EMBEDDING_METHOD = {"PGD-AT": {"adversarial_embedding": {"kind": "pgd", "grad_norm": "steepest"}}}
# Written here too, so a developer can quote them (the slow test prints them as well).
SACCT_COPY = Path("/tmp/slurm_sacct.txt")


def _rule_blocks() -> dict[str, str]:
    blocks = {}
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        parts = re.split(r"^rule (\w+):\n", path.read_text(), flags=re.M)
        blocks.update(zip(parts[1::2], parts[2::2], strict=True))
    return blocks


def _profile() -> dict:
    return yaml.safe_load(SLURM_PROFILE.read_text())


# ------------------------------------------------------------------------------------------------ the profile


def test_the_plugin_is_the_pinned_version():
    from importlib.metadata import version

    assert version("snakemake-executor-plugin-slurm") == PLUGIN_VERSION
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'"snakemake-executor-plugin-slurm=={PLUGIN_VERSION}"' in pyproject


def test_every_gpu_rule_asks_slurm_for_one_gpu_and_cpu_rules_for_none():
    profile = _profile()
    # attack_shard and attack_validity ask for one GPU slot, the others for a whole GPU's (GPU_SLOTS, devices.attack_shards_per_gpu)
    gpu_rules = {name for name, body in _rule_blocks().items()
                 if re.search(r"^\s+gpu=(1|GPU_SLOTS),", body, flags=re.M)}
    assert gpu_rules == {"train", "evaluate", "attack_shard", "attack_validity", "augment_shard", "lca_train",
                         "lca_activations", "certify"}
    assert profile["executor"] == "slurm"
    assert profile["software-deployment-method"] == "conda"
    assert profile["retries"] >= 1 and profile["jobs"] >= 1
    cpu_partition = profile["default-resources"]["slurm_partition"]
    per_rule = profile["set-resources"]
    assert {rule for rule, res in per_rule.items() if "gres" in res} == gpu_rules
    for rule in gpu_rules:
        res = per_rule[rule]
        # gres asks SLURM for the GPU; gpu=0 keeps the workstation's one-GPU token (profiles/default) out of it.
        assert res["gres"] == "gpu:1" and res["gpu"] == 0, rule
        assert res["slurm_partition"] != cpu_partition, rule
        assert res["cpus_per_task"] >= 1 and res["mem_mb"] >= 1000 and res["runtime"], rule
    for rule, res in per_rule.items():
        assert rule in _rule_blocks(), f"set-resources names an unknown rule {rule}"
        if rule not in gpu_rules:
            assert "gres" not in res and "gpu" not in res and "slurm_partition" not in res, rule


def test_the_slurm_profile_and_the_workflow_profile_together(tmp_path, tiny_model, tiny_data):
    """A dry run as a cluster user starts it: both profiles read, each job with its partition and GPU request."""
    config = tiny_config(tiny_model, tiny_data, tmp_path / "resources")
    config["seeds"] = [1]
    write_config(tmp_path, config)
    # --sdm env-modules replaces the profile's conda (conda is not installed here); no rule has envmodules.
    proc = run_snakemake(tmp_path, "--profile", str(SLURM_PROFILE.parent), "--sdm", "env-modules", "-n",
                         cwd=REPO)
    out = proc.stdout + proc.stderr
    assert re.search(r"Using profiles \S*profiles/slurm and workflow specific profile \S*profiles/default", out)
    jobs = re.findall(r"^rule (\w+):\n(?:    .*\n)*?    resources: (.*)$", out, flags=re.M)
    assert {rule for rule, _ in jobs} >= {"prepare_training_dataset", "toy_study", "train", "evaluate",
                                          "table4_accuracy"}
    for rule, resources in jobs:
        res = dict(item.split("=", 1) for item in resources.split(", "))
        if rule in ("train", "evaluate"):
            assert res["slurm_partition"] == "gpu" and res["gres"] == "gpu:1" and res["gpu"] == "0", resources
        else:
            assert res["slurm_partition"] == "cpu" and "gres" not in res and "gpu" not in res, resources
    # The workflow profile's one-GPU limit is still in force; the GPU jobs no longer count against it.
    assert re.search(r"^    resources: .*gpu=0", out, flags=re.M)


# ---------------------------------------------------------------------------------- a one-node SLURM cluster


def _slurm_env() -> dict[str, str]:
    # The default config path only: the plugin's job step drops SLURM_* variables, so srun inside a job would not
    # see a SLURM_CONF pointing elsewhere.
    return {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}


def _run(cmd: list[str], timeout: int = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**_slurm_env(), **(env or {})})
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def _running(names: set[str]) -> list[str]:
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            name = comm.read_text().strip()
        except OSError:  # the process ended meanwhile
            continue
        if name in names:
            found.append(f"{name} (pid {comm.parent.name})")
    return found


def _wait_for(check, what: str, timeout: float, logs: list[Path]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p}\n{p.read_text()[-2000:]}" for p in logs if p.exists())
    raise AssertionError(f"{what} not ready after {timeout} s\n{tails}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _slurm_conf(host: str, state: Path, cpus: int, memory_mb: int) -> str:
    return f"""\
# Written by tests/workflow/test_slurm.py for a one-node test cluster; removed (or the previous file restored) afterwards.
ClusterName=advtrain-test
# Addresses given: the host name need not resolve (containers).
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={state}/munge.socket
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/spool
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# No slurmdbd: job-completion records in a text file, read by `sacct --completion`.
JobCompType=jobcomp/filetxt
JobCompLoc={state}/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
# Finished jobs stay visible to squeue, which the plugin polls instead of sacct (>= 120 s).
MinJobAge=600
# The node is what this file says, whatever the hardware (e.g. a 1-core CI runner).
SlurmdParameters=config_overrides
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture()
def slurm_cluster(tmp_path_factory):
    """munged, slurmctld and slurmd of a one-node cluster `debug` on this host; stopped by PID afterwards."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("the SLURM test starts slurmctld, slurmd and munged as root")
    apt_install("slurm-wlm", "munge", why="the one-node SLURM cluster")
    # After the install, which may start the packages' services on a machine with an init system.
    if running := _running({"slurmctld", "slurmd"}):
        pytest.skip(f"SLURM daemons already run here ({', '.join(running)}): not replacing their configuration")
    version = _run(["/usr/sbin/slurmctld", "-V"]).stdout.strip()

    # A short path: the munge socket's must fit in a Unix socket address (108 bytes).
    state = tmp_path_factory.mktemp("slurm")
    for sub in ("ctld", "spool"):
        (state / sub).mkdir()
    host = _run(["hostname", "-s"]).stdout.strip()
    total_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    previous_conf = SLURM_CONF.read_bytes() if SLURM_CONF.exists() else None

    daemons: list[subprocess.Popen] = []

    def start(*cmd: str) -> None:
        out = open(state / f"{Path(cmd[0]).name}.out", "w")
        daemons.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=_slurm_env(),
                                        start_new_session=True))
        out.close()

    logs = [state / name for name in ("munged.log", "munged.out", "slurmctld.log", "slurmctld.out",
                                      "slurmd.log", "slurmd.out")]
    try:
        SLURM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SLURM_CONF.write_text(_slurm_conf(host, state, cpus=2, memory_mb=max(1024, total_mb - 1024)))
        # munged in the foreground on a socket of its own (AuthInfo above): whatever else runs here is untouched.
        start("/usr/sbin/munged", "--foreground", "--force", f"--socket={state}/munge.socket",
              f"--pid-file={state}/munged.pid", f"--log-file={state}/munged.log",
              f"--seed-file={state}/munged.seed")

        def munge_works() -> bool:
            cred = subprocess.run(["munge", "-n", "-S", f"{state}/munge.socket"], capture_output=True, timeout=10)
            return cred.returncode == 0 and subprocess.run(
                ["unmunge", "-S", f"{state}/munge.socket"], input=cred.stdout, capture_output=True,
                timeout=10).returncode == 0

        _wait_for(munge_works, "munged", 30, logs)
        start("/usr/sbin/slurmctld", "-D")
        start("/usr/sbin/slurmd", "-D")

        def node_idle() -> bool:
            proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10,
                                  env=_slurm_env())
            return proc.returncode == 0 and proc.stdout.strip() == "idle"

        _wait_for(node_idle, "the SLURM node", 90, logs)
        yield {"state": state, "version": version, "jobcomp": state / "jobcomp.txt"}
    finally:
        if daemons[1:] and daemons[1].poll() is None:  # jobs left by a failed run: cancel them first
            try:
                queued = subprocess.run(["squeue", "-h", "-t", "PENDING,RUNNING,COMPLETING", "-o", "%i"],
                                        capture_output=True, text=True, timeout=30, env=_slurm_env()).stdout.split()
                if queued:
                    subprocess.run(["scancel", *queued], capture_output=True, timeout=30, env=_slurm_env())
                    time.sleep(3)
            except (OSError, subprocess.TimeoutExpired):
                pass  # the daemons are stopped below all the same
        for proc in reversed(daemons):
            _stop(proc)
        if previous_conf is None:
            SLURM_CONF.unlink(missing_ok=True)
        else:
            SLURM_CONF.write_bytes(previous_conf)


def _test_profile(dest: Path) -> Path:
    """profiles/slurm with only what is specific to a cluster replaced, for the test cluster.

    Partitions -> debug; no GPU request (the node has none; `gpu: 0` stays); sizes cut to a 2-CPU node; no conda
    (its channels are unreachable here); no account; squeue for status (no sacct database) polled every 2 s.
    """
    profile = _profile()

    def fit(resources: dict) -> dict:
        resources = dict(resources)
        resources.pop("gres", None)
        if "slurm_partition" in resources:
            resources["slurm_partition"] = "debug"
        if "mem_mb" in resources:
            resources["mem_mb"] = 1000
        if "cpus_per_task" in resources:
            resources["cpus_per_task"] = min(resources["cpus_per_task"], 2)
        return resources

    del profile["software-deployment-method"]
    profile["default-resources"] = fit(profile["default-resources"])
    profile["set-resources"] = {rule: fit(res) for rule, res in profile["set-resources"].items()}
    profile.update({"slurm-no-account": True, "slurm-status-command": "squeue",
                    "slurm-init-seconds-before-status-checks": 1, "seconds-between-status-checks": 2})
    dest.mkdir(parents=True)
    (dest / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return dest


def _weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(model_dir / "model.safetensors")


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_tiny_workflow_through_slurm_equals_the_local_run(tmp_path, tiny_model, tiny_data, slurm_cluster):
    config = tiny_config(tiny_model, tiny_data, tmp_path / "unused")
    config["seeds"] = [1]
    config["methods"].update(copy.deepcopy(EMBEDDING_METHOD))
    config["run"] = {"methods": None, "datasets": ["MR"]}
    runs = {}
    for name in ("slurm", "local"):
        runs[name] = tmp_path / name
        runs[name].mkdir()
        write_config(runs[name], {**config, "cache_dir": str(runs[name] / "resources")})
    profile = _test_profile(tmp_path / "profile")

    # Both at once: the SLURM run spends much of its time polling and starting job steps.
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        on_slurm = pool.submit(run_snakemake, runs["slurm"], "--profile", str(profile), timeout=1500, cwd=REPO,
                               env=_slurm_env())
        local = pool.submit(run_snakemake, runs["local"], "--cores", "2", timeout=1500, cwd=REPO)
        slurm_proc, _ = on_slurm.result(), local.result()
    print(f"both runs: {time.monotonic() - started:.0f} s")
    slurm_out = slurm_proc.stdout + slurm_proc.stderr
    assert re.search(r"Using profiles \S+ and workflow specific profile \S*profiles/default", slurm_out)
    assert "SLURM run ID:" in slurm_out

    # What SLURM ran: one COMPLETED job per non-local job, with the profile's requests.
    sacct = _run(["sacct", "--completion", "--format=JobID,JobName%36,Partition,AllocCPUS,State,ExitCode,"
                  "Elapsed,Start,End,NodeList"]).stdout
    queue = _run(["squeue", "--states=all", "-h", "-o", "%i|%k|%T|%C|%m|%P"]).stdout
    report = (f"{slurm_cluster['version']}, {PLUGIN_VERSION=}\n$ sacct --completion ...\n{sacct}\n"
              f"$ squeue --states=all -o '%i|%k|%T|%C|%m|%P'  (job id|comment: rule and wildcards|state|CPUs|"
              f"memory|partition)\n{queue}")
    (tmp_path / "sacct.txt").write_text(report)
    SACCT_COPY.write_text(report)
    print(report)

    jobs = {}
    for line in queue.splitlines():
        job_id, comment, state, cpus, mem, partition = line.split("|")
        jobs[job_id] = {"rule": re.match(r"rule_(\w+?)(_wildcards_|$)", comment).group(1), "state": state,
                        "cpus": int(cpus), "mem": mem, "partition": partition}
    completion = {}
    for line in _run(["sacct", "--completion", "-P", "-n", "--format=JobID,State,ExitCode"]).stdout.splitlines():
        job_id, state, exit_code = line.split("|")
        completion[job_id] = (state, exit_code)
    assert set(completion) == set(jobs)
    assert all(v == ("COMPLETED", "0:0") for v in completion.values()), completion
    rules = sorted(job["rule"] for job in jobs.values())
    # summary and claims are local rules (their inputs follow --omit-from, which spawned jobs do not get), like
    # fidelity.
    assert rules == sorted(["prepare_training_dataset", "prepare_ood_dataset", "toy_study", "train", "train",
                            "evaluate", "evaluate", "table3_runtime", "table4_accuracy", "paired_comparisons",
                            "paired_examples"])
    for job in jobs.values():
        assert job["state"] == "COMPLETED" and job["partition"] == "debug", job
        assert job["mem"] == "1000M", job  # the (test) profile's mem_mb reached sbatch
        if job["rule"] in ("train", "evaluate"):
            assert job["cpus"] == 2, job  # cpus_per_task of the profile, not the rule's threads
    records = slurm_cluster["jobcomp"].read_text()
    assert records.count("JobState=COMPLETED") == len(jobs)

    # The same results, computed on the cluster and locally.
    slurm_res, local_res = runs["slurm"] / "results", runs["local"] / "results"
    for method in ("BERT", "PGD-AT"):
        ev = json.loads((slurm_res / f"eval/MR/{method}/seed1.json").read_text())
        assert ev == json.loads((local_res / f"eval/MR/{method}/seed1.json").read_text())
        # A model that learned the task (as in test_workflow.py), so the comparison is not of two coin flips.
        assert ev["accuracy"]["in_distribution"] > 0.9 and ev["accuracy"]["YELP"] > 0.9, ev
        metrics = [json.loads((res / f"models/MR/{method}/seed1/metrics.json").read_text())
                   for res in (slurm_res, local_res)]
        for key in ("steps", "train_loss", "final_logged_loss", "validation_accuracy", "validation_loss",
                    "device", "precision", "resumed_from"):
            assert metrics[0][key] == metrics[1][key], (method, key, metrics[0][key], metrics[1][key])
        on_slurm, here = (_weights(res / f"models/MR/{method}/seed1/model") for res in (slurm_res, local_res))
        assert on_slurm.keys() == here.keys()
        differ = [name for name in here if not on_slurm[name].equal(here[name])]
        assert not differ, f"{method}: weights differ between the SLURM and the local run: {differ}"
    for table in ("table1_toy.csv", "table4_accuracy.csv", "paired_vs_bert.csv"):
        pd.testing.assert_frame_equal(pd.read_csv(slurm_res / "tables" / table),
                                      pd.read_csv(local_res / "tables" / table), check_exact=True)
    # Table 3 is run time: its timings differ by nature, its counts and the paper's columns do not.
    runtime = [pd.read_csv(res / "tables/table3_runtime.csv") for res in (slurm_res, local_res)]
    fixed = [c for c in runtime[1].columns if c == "method" or c.endswith(("_n", "_paper_minutes"))]
    pd.testing.assert_frame_equal(runtime[0][fixed], runtime[1][fixed])
