"""The workflow's DAG: dry-run time of the full study, what one method's edit reruns, the quick preset end to end.

Measured in one run, each part printed as it finishes and all of them written to ``--output``:

1. ``full_dag``: seconds for ``snakemake -n`` on ``config.yaml`` (the paper's study) in a fresh, empty working
   directory each time (no ``.snakemake`` state; ``-s <repo>/Snakefile -d <tmp>``), median and min of ``--repeats``;
   the number of jobs per rule; and for every method the jobs whose outputs lie under ``/<method>/`` plus the jobs
   downstream of them (the tables that read every model): what an edit of that method reruns at paper scale.
   Beside it, interleaved run by run, the same dry run of a synthetic Snakefile of the same shape, generated from
   that DAG: the same rules, the same jobs with the same wildcards and edges, outputs, logs and resources, but input
   functions that only look a job's inputs up in a table and no configuration, validation or package imports. The
   ratio of the CPU seconds (real / synthetic; target <= 1.1) is what the workflow's own start-up code costs.
2. ``method_edit``: the tiny test workflow (``tests/conftest.py``: tiny BERT, synthetic data; BERT, PGD-AT and LDS,
   one seed, one epoch, IMDB and MR) run to completion with ``--cores 2``; then one setting of ``--method`` is edited
   (``--edit``, default ``adversarial_embedding.epsilon=0.01``) and ``snakemake -n`` lists what reruns. Printed:
   the rerun jobs that are the method's, against all of the method's jobs in the DAG (they must be equal), the
   other rerun jobs (aggregates only), the files Snakemake's ``--summary`` marks "params changed" and those
   ``--list-changes params`` lists (in 9.27.1 also one output of every job with params, changed or not), and
   ``-n --rerun-triggers mtime`` (nothing reruns without the params trigger: the edit reaches the jobs as
   ``params`` only).
3. ``quick`` (with ``--quick``; long: 46 min on 2 idle cores): ``snakemake --cores N --keep-going --configfile
   config/quick.yaml <--configfile files>`` in a fresh working directory (``--quick-dir``, kept), with total wall
   time, per-rule and per-stage wall times from Snakemake's log (start and end stamps of each job, 1 s resolution),
   the ``benchmark:`` TSVs (train, lca_train) and the load average sampled every minute. ``--quick-log LOG...``
   summarises an earlier run's log (the logs of its segments, if it was resumed) and the TSVs of its working
   directory instead of running it.

    python benchmarks/workflow_dag.py --output /tmp/dag.json
    python benchmarks/workflow_dag.py --skip-tiny --repeats 5 --synthetic-dir /tmp/dag_synthetic
    python benchmarks/workflow_dag.py --quick --configfile local.yaml --quick-dir /tmp/quick --output /tmp/dag.json

The machine's load average is recorded beside every figure: on a shared machine the times are inflated.
"""

import argparse
import copy
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}
# The tiny run: tests/conftest.py's tiny_config with the baseline and two embedding-space methods (as
# tests/workflow/test_workflow.py's finished_run, less ALUM), one seed and one epoch, so that it completes in minutes even
# on a loaded 2-core machine: 2 datasets x 3 methods = 6 train and 6 evaluate jobs.
TINY_METHODS = {
    "PGD-AT": {"adversarial_embedding": {"kind": "pgd", "grad_norm": "steepest"}},
    "LDS": {"adversarial_embedding": {"kind": "lds", "grad_norm": "steepest"}},
}
TINY_SEEDS, TINY_EPOCHS = [1], 1
STAGES = [("resources", ("fetch_",)), ("data", ("prepare_",)), ("augment", ("augment", "gather_augment")),
          ("train", ("train",)), ("evaluate", ("evaluate",)), ("attack", ("attack_shard", "gather_attack")),
          ("lca", ("lca_",)), ("toy", ("toy_",))]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="dry runs of the full study")
    parser.add_argument("--method", default="PGD-AT", help="the method whose setting is edited in part 2")
    parser.add_argument("--edit", default="adversarial_embedding.epsilon=0.01",
                        help="KEY=VALUE under methods.<method> (dotted key, YAML value)")
    parser.add_argument("--cores", type=int, default=2, help="--cores of the tiny and the quick runs")
    parser.add_argument("--skip-full", action="store_true", help="skip part 1")
    parser.add_argument("--skip-synthetic", action="store_true", help="part 1 without the synthetic Snakefile")
    parser.add_argument("--synthetic-dir", default=None, help="write the synthetic Snakefile here and keep it "
                        "(default: a temporary folder, removed)")
    parser.add_argument("--skip-tiny", action="store_true", help="skip part 2")
    parser.add_argument("--quick", action="store_true", help="run part 3, the quick preset end to end (long)")
    parser.add_argument("--configfile", nargs="*", default=[], help="config files layered over config/quick.yaml "
                        "for part 3 (local resources: see README 'Local resources')")
    parser.add_argument("--quick-dir", default=None, help="working directory of part 3 (default: a new temporary "
                        "one); kept afterwards")
    parser.add_argument("--quick-log", nargs="+", default=None, help="summarise an earlier quick run's Snakemake "
                        "log(s) instead of running part 3 (several: the segments of a resumed run, in order)")
    parser.add_argument("--output", default=None, help="write every figure to this JSON file")
    return parser.parse_args()


def load():
    return [round(x, 2) for x in os.getloadavg()]


def cpu_seconds():
    """User + system seconds of this process's finished children (the Snakemake run and its jobs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def snakemake(workdir, configfiles, *args, log=None, snakefile=REPO / "Snakefile"):
    """The workflow as a user runs it (no conda).

    Returns (wall seconds, CPU seconds, return code, stdout + stderr); the CPU seconds (user + system, jobs
    included) depend much less on the machine's load than the wall time.
    """
    configs = ["--configfile", *map(str, configfiles)] if configfiles else []
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), *configs, *args]
    env = {**os.environ, **ENV}
    cpu, start = cpu_seconds(), time.perf_counter()
    if log is None:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        text = proc.stdout + proc.stderr
    else:
        with open(log, "w") as out:
            proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env)
        text = Path(log).read_text()
    return time.perf_counter() - start, cpu_seconds() - cpu, proc.returncode, text


# --- reading Snakemake's output -------------------------------------------------------------------------------

JOB_START = re.compile(r"^(?:local)?rule (\S+):$")
STAMP = re.compile(r"^\[(\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4})\]$")
FINISHED = re.compile(r"^Finished jobid: (\d+) \(Rule: (\S+)\)")
ERROR = re.compile(r"^Error in rule (\S+):$")


def parse_jobs(text):
    """The jobs a (dry) run lists: rule, jobid, input, output and log files, reason, wildcards, resources, and the
    time stamp before it."""
    jobs, job, stamp = [], None, None
    for line in text.splitlines():
        if m := STAMP.match(line):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := JOB_START.match(line):
            job = {"rule": m.group(1), "input": [], "output": [], "log": [], "reason": "", "jobid": None,
                   "wildcards": {}, "resources": {}, "stamp": stamp}
            jobs.append(job)
        elif job is not None and line.startswith("    ") and ": " in line:
            key, value = line.strip().split(": ", 1)
            if key in ("input", "output", "log"):
                job[key] = [v.strip() for v in value.split(", ")]
            elif key in ("reason", "jobid"):
                job[key] = value
            elif key in ("wildcards", "resources"):
                job[key] = dict(kv.split("=", 1) for kv in value.split(", "))
        else:
            job = None
    return jobs


def job_stats(text):
    """The 'Job stats' table: {rule: count}, with 'total'."""
    if "Job stats" not in text:
        return {}
    table = text[text.index("Job stats"):].split("\n\n")[0].splitlines()[3:]
    return {rule: int(count) for rule, count in (line.split() for line in table)}


def own_jobs(jobs, method):
    """The jobs whose outputs lie under a folder named after the method (its models, evals, attacks, taggers)."""
    return [j for j in jobs if any(f"/{method}/" in path for path in j["output"])]


def downstream(jobs, start):
    """The jobs that read, directly or not, an output of the ``start`` jobs (and so rerun after them)."""
    producer = {path: i for i, job in enumerate(jobs) for path in job["output"]}
    consumers = defaultdict(set)
    for i, job in enumerate(jobs):
        for path in job["input"]:
            if path in producer:
                consumers[producer[path]].add(i)
    seen = {id(j) for j in start}
    todo = [i for i, j in enumerate(jobs) if id(j) in seen]
    reached = set(todo)
    while todo:
        for k in consumers[todo.pop()]:
            if k not in reached:
                reached.add(k)
                todo.append(k)
    return [jobs[i] for i in sorted(reached) if id(jobs[i]) not in seen]


def stage_of(rule):
    for stage, prefixes in STAGES:
        if rule.startswith(prefixes):
            return stage
    return "report"


# --- part 1: the full study's DAG ------------------------------------------------------------------------------


def synthetic_snakefile(jobs, folder):
    """A Snakefile of the same shape as the dry run's DAG: per rule the same wildcards, number of outputs and
    logs and GPU resource; per job the same edges (each input becomes the producing job's synthetic output at the
    same position); input functions that look a job's inputs up in a JSON table. Inputs no job produces (none in
    an empty directory) are dropped. Returns the Snakefile's path."""
    producer = {path: (job, i) for job in jobs for i, path in enumerate(job["output"])}
    rules = {}
    for job in jobs:
        rules.setdefault(job["rule"], []).append(job)

    def outputs(rule, values, kind="out"):
        job = rules[rule][0]
        folder_ = "/".join(["syn" if kind == "out" else "logs", rule, *values])
        return [f"{folder_}/{kind}{i}" for i in range(len(job["output"] if kind == "out" else job["log"]))]

    def key(job):
        return "/".join(job["wildcards"].values())

    table = {}
    for rule, group in rules.items():
        table[rule] = {}
        for job in group:
            inputs = []
            for path in job["input"]:
                if path in producer:
                    source, i = producer[path]
                    inputs.append(outputs(source["rule"], list(source["wildcards"].values()))[i])
            table[rule][key(job)] = inputs
    (folder / "inputs.json").write_text(json.dumps(table))
    names = sorted({name for job in jobs for name in job["wildcards"]})
    lines = ["import json", "", f"INPUTS = json.load(open({str(folder / 'inputs.json')!r}))", "", "",
             "def inputs_of(rule, names):",
             "    return lambda w: INPUTS[rule]['/'.join(getattr(w, n) for n in names)]", "", "",
             "wildcard_constraints:", *(f'    {name}="[^/]+",' for name in names), "", ""]
    order = sorted(rules, key=lambda r: r != "all")  # the default target first
    for rule in order:
        job = rules[rule][0]
        names_ = list(job["wildcards"])
        patterns = ["{" + n + "}" for n in names_]
        lines += [f"rule {rule}:", "    input:"]
        if names_:
            lines.append(f"        inputs_of({rule!r}, {names_!r}),")
        else:
            lines += [f"        {path!r}," for path in table[rule][""]]
        lines += ["    output:", *(f"        {p!r}," for p in outputs(rule, patterns))]
        if job["log"]:
            lines += ["    log:", *(f"        {p!r}," for p in outputs(rule, patterns, kind="log"))]
        if job["resources"].get("gpu") == "1":
            lines += ["    resources:", "        gpu=1,"]
        lines += ["    shell:", '        "touch {output}"', "", ""]
    path = folder / "Snakefile"
    path.write_text("\n".join(lines))
    return path


def full_dag(repeats, synthetic=True, synthetic_dir=None):
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    times, cpus, loads, text = [], [], [], ""
    syn_times, syn_cpus, syn_stats, snakefile = [], [], {}, None
    folder = Path(synthetic_dir or tempfile.mkdtemp(prefix="dag_synthetic_"))
    folder.mkdir(parents=True, exist_ok=True)
    # The same workflow profile for both (Snakemake reads profiles/default beside the real Snakefile by itself).
    profile = ["--workflow-profile", str(REPO / "profiles" / "default")]
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="dag_") as tmp:
            loads.append(load())
            seconds, cpu, rc, out = snakemake(tmp, [REPO / "config.yaml"], "-n", *profile)
            if rc != 0:
                sys.exit(f"snakemake -n on config.yaml failed:\n{out[-4000:]}")
            text = text or out
            times.append(round(seconds, 2))
            cpus.append(round(cpu, 2))
        if not synthetic:
            continue
        snakefile = snakefile or synthetic_snakefile(parse_jobs(text), folder)
        with tempfile.TemporaryDirectory(prefix="dag_syn_") as tmp:
            seconds, cpu, rc, out = snakemake(tmp, [], "-n", *profile, snakefile=snakefile)
            if rc != 0:
                sys.exit(f"snakemake -n on the synthetic Snakefile {snakefile} failed:\n{out[-4000:]}")
            syn_stats = syn_stats or job_stats(out)
            syn_times.append(round(seconds, 2))
            syn_cpus.append(round(cpu, 2))
    if not synthetic_dir:
        shutil.rmtree(folder)
    stats = job_stats(text)
    jobs = parse_jobs(text)
    per_method = {}
    for method in config["methods"]:
        own = own_jobs(jobs, method)
        after = downstream(jobs, own)
        per_method[method] = {"own_jobs": len(own), "own_rules": dict(Counter(j["rule"] for j in own)),
                              "downstream_jobs": len(after),
                              "downstream_rules": dict(Counter(j["rule"] for j in after))}
    result = {"command": f"snakemake -n -s {REPO / 'Snakefile'} -d <empty tmp> --configfile config.yaml",
              "seconds": times, "median_s": statistics.median(times), "min_s": min(times),
              "cpu_seconds": cpus, "median_cpu_s": statistics.median(cpus),
              "load_average_before_each": loads, "jobs": stats.get("total"), "jobs_parsed": len(jobs),
              "rules": stats, "per_method": per_method}
    print(f"[full DAG] snakemake -n on config.yaml: {result['jobs']} jobs, median {result['median_s']:.1f} s, "
          f"min {result['min_s']:.1f} s over {repeats} runs; CPU (user + sys) median {result['median_cpu_s']:.1f} s "
          f"(load before each: {loads})", flush=True)
    if synthetic:
        same = syn_stats == stats
        result["synthetic"] = {
            "snakefile": str(snakefile) if synthetic_dir else None, "seconds": syn_times, "cpu_seconds": syn_cpus,
            "median_cpu_s": statistics.median(syn_cpus), "jobs": syn_stats.get("total"), "same_job_stats": same,
            "cpu_ratio": round(result["median_cpu_s"] / statistics.median(syn_cpus), 2), "target_ratio": 1.1}
        print(f"[full DAG] synthetic Snakefile of the same shape ({syn_stats.get('total')} jobs, same jobs per rule: "
              f"{same}): CPU median {result['synthetic']['median_cpu_s']:.1f} s; real / synthetic = "
              f"{result['synthetic']['cpu_ratio']:.2f}x (target <= 1.1x; interleaved, {repeats} each)", flush=True)
    for method, figures in per_method.items():
        print(f"[full DAG]   edit of {method}: its own {figures['own_jobs']} jobs "
              f"{figures['own_rules']} + {figures['downstream_jobs']} downstream {figures['downstream_rules']}")
    return result


# --- part 2: one method's edit on a completed tiny run ---------------------------------------------------------


def set_dotted(mapping, dotted, value):
    *parents, last = dotted.split(".")
    for key in parents:
        mapping = mapping.setdefault(key, {})
    mapping[last] = value


def method_edit(method, edit, cores):
    sys.path.insert(0, str(REPO / "tests"))
    from conftest import build_tiny_bert, tiny_config, write_tiny_data

    key, value = edit.split("=", 1)
    with tempfile.TemporaryDirectory(prefix="dag_tiny_") as tmp:
        tmp = Path(tmp)
        workdir = tmp / "work"
        workdir.mkdir()
        config = tiny_config(build_tiny_bert(tmp / "model"), write_tiny_data(tmp / "data"), workdir / "resources")
        config["methods"].update(copy.deepcopy(TINY_METHODS))
        config["seeds"], config["model"]["epochs"] = TINY_SEEDS, TINY_EPOCHS
        if method not in config["methods"]:
            sys.exit(f"--method {method} is not one of the tiny run's methods {list(config['methods'])}")
        configfile = workdir / "config.yaml"
        configfile.write_text(yaml.safe_dump(config, sort_keys=False))

        load_before = load()
        seconds, cpu, rc, text = snakemake(workdir, [configfile], "--cores", str(cores))
        if rc != 0:
            sys.exit(f"the tiny run failed:\n{text[-6000:]}")
        completed = {"jobs": job_stats(text).get("total"), "wall_s": round(seconds, 1),
                     "cpu_s": round(cpu, 1), "load_average_before": load_before, "load_average_after": load()}
        print(f"[method edit] tiny run completed: {completed['jobs']} jobs in {completed['wall_s']:.0f} s "
              f"(load {load_before} -> {completed['load_average_after']})", flush=True)
        *_, text = snakemake(workdir, [configfile], "-n")
        nothing_before = "Nothing to be done" in text

        edited = copy.deepcopy(config)
        set_dotted(edited["methods"][method], key, yaml.safe_load(value))
        configfile.write_text(yaml.safe_dump(edited, sort_keys=False))
        *_, text = snakemake(workdir, [configfile], "-n")
        rerun = parse_jobs(text)
        *_, forced = snakemake(workdir, [configfile], "-n", "--forceall")
        every = parse_jobs(forced)
        *_, changes = snakemake(workdir, [configfile], "--list-changes", "params")
        *_, summary = snakemake(workdir, [configfile], "--summary")
        *_, mtime = snakemake(workdir, [configfile], "-n", "--rerun-triggers", "mtime")

    outputs = lambda js: sorted(path for j in js for path in j["output"])  # noqa: E731
    mine, all_mine = own_jobs(rerun, method), own_jobs(every, method)
    others = [j for j in rerun if j not in mine]
    listed = sorted(line.strip() for line in changes.splitlines() if line.strip().startswith("results/"))
    # --summary's status column: "params changed" per output file
    changed = sorted(line.split("\t")[0] for line in summary.splitlines() if "\tparams changed\t" in line)
    train_outputs = outputs([j for j in all_mine if j["rule"] == "train"])
    result = {
        "edit": f"methods.{method}.{key} = {value}", "completed_run": completed,
        "nothing_to_do_before_edit": nothing_before,
        "rerun_jobs": len(rerun), "rerun_rules": dict(Counter(j["rule"] for j in rerun)),
        "rerun_method_jobs": len(mine), "method_jobs_in_dag": len(all_mine), "dag_jobs": len(every),
        "rerun_method_jobs_equal_all_method_jobs": outputs(mine) == outputs(all_mine),
        "other_rerun_jobs": len(others), "other_rerun_rules": sorted({j["rule"] for j in others}),
        # aggregates: no output of theirs lies under any method's folder (tables, the summary, `all`)
        "other_rerun_jobs_are_aggregates": all(not own_jobs([j], m) for j in others for m in edited["methods"]),
        "reasons": dict(Counter(j["reason"].split(":")[0] for j in rerun)),
        "summary_params_changed": changed,
        "summary_params_changed_are_method_train_outputs": changed == train_outputs,
        # Snakemake 9.27.1's --list-changes params also lists one output of every job with params whose params
        # did not change (ParamsChange.__or__ returns the unchanged side with its file); the rerun decision and
        # --summary use the truth value and are right.
        "list_changes_params": listed,
        "list_changes_params_beyond_method_train_outputs": sorted(set(listed) - set(train_outputs)),
        "list_changes_params_includes_method_train_outputs": set(train_outputs) <= set(listed),
        "rerun_jobs_with_rerun_triggers_mtime": len(parse_jobs(mtime)),
        "nothing_to_do_with_rerun_triggers_mtime": "Nothing to be done" in mtime,
    }
    print(f"[method edit] {result['edit']}: {len(rerun)} jobs rerun of {len(every)}; {len(mine)} are {method}'s, "
          f"of its {len(all_mine)} jobs in the DAG (equal: {result['rerun_method_jobs_equal_all_method_jobs']}); "
          f"the other {len(others)}: {result['other_rerun_rules']}", flush=True)
    print(f"[method edit] --summary 'params changed': {changed} (= {method}'s train outputs: "
          f"{result['summary_params_changed_are_method_train_outputs']}); --list-changes params: {len(listed)} "
          f"files, {len(result['list_changes_params_beyond_method_train_outputs'])} beyond them (a Snakemake 9.27.1 "
          f"quirk: one output of every job with params); -n --rerun-triggers mtime: "
          f"{result['rerun_jobs_with_rerun_triggers_mtime']} jobs", flush=True)
    return result


# --- part 3: the quick preset end to end -----------------------------------------------------------------------


def sample_load(samples, stop, every=60):
    while not stop.wait(every):
        samples.append([time.strftime("%H:%M:%S"), *load()])


def timed_jobs(text):
    """The finished jobs of one Snakemake log with their start and end stamps, and the rules that failed."""
    jobs = {j["jobid"]: j for j in parse_jobs(text) if j["jobid"] is not None}
    stamp, ends, failed = None, {}, []
    for line in text.splitlines():
        if m := STAMP.match(line):
            stamp = datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
        elif m := FINISHED.match(line):
            ends[m.group(1)] = stamp
        elif m := ERROR.match(line):
            failed.append(m.group(1))
    return [dict(rule=j["rule"], output=j["output"][:1], start=j["stamp"], end=ends[i])
            for i, j in jobs.items() if i in ends and j["stamp"]], failed


def summarise_run(texts, workdir):
    """Per-job, per-rule and per-stage wall times from a run's logs (one per segment, when a run was resumed);
    the ``benchmark:`` TSVs of its directory."""
    timed, failed, spans = [], [], []
    for text in texts:
        jobs, errors = timed_jobs(text)
        timed += jobs
        failed += errors
        stamps = [datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y")
                  for m in map(STAMP.match, text.splitlines()) if m]
        spans.append((max(stamps) - min(stamps)).total_seconds() if stamps else 0.0)
    per_rule, per_stage = defaultdict(list), defaultdict(list)
    for job in timed:
        job["s"] = (job["end"] - job["start"]).total_seconds()
        per_rule[job["rule"]].append(job)
        per_stage[stage_of(job["rule"])].append(job)

    def figures(group):
        return {"jobs": len(group), "job_s_sum": sum(j["s"] for j in group), "job_s_max": max(j["s"] for j in group),
                "span_s": (max(j["end"] for j in group) - min(j["start"] for j in group)).total_seconds(),
                "first_start": min(j["start"] for j in group).strftime("%H:%M:%S"),
                "last_end": max(j["end"] for j in group).strftime("%H:%M:%S")}

    benchmarks = {}
    for tsv in sorted(Path(workdir, "results/benchmarks").rglob("*.tsv")):
        rows = tsv.read_text().splitlines()
        header, first = rows[0].split("\t"), rows[1].split("\t")
        benchmarks[str(tsv.relative_to(workdir))] = {k: first[header.index(k)] for k in ("s", "max_rss", "cpu_time")
                                                     if k in header}
    return {"jobs_planned": job_stats(texts[0]).get("total"), "jobs_finished": len(timed), "failed_rules": failed,
            "log_span_s": sum(spans), "log_span_s_per_segment": spans,
            "per_rule": {rule: figures(group) for rule, group in per_rule.items()},
            "per_stage": {stage: figures(group) for stage, group in per_stage.items()},
            "per_job": [{"rule": j["rule"], "output": j["output"], "s": j["s"],
                         "start": j["start"].strftime("%H:%M:%S")} for j in sorted(timed, key=lambda j: j["start"])],
            "benchmark_tsvs": benchmarks}


def quick(configfiles, cores, quick_dir, quick_log):
    files = [REPO / "config/quick.yaml", *(Path(f).resolve() for f in configfiles)]
    if quick_log:
        texts = [Path(log).read_text() for log in quick_log]
        workdir = re.search(r"Working directory: (\S+)", texts[0]).group(1)
        result = {"logs": quick_log, "workdir": workdir}
    else:
        workdir = Path(quick_dir or tempfile.mkdtemp(prefix="dag_quick_")).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        samples, stop = [[time.strftime("%H:%M:%S"), *load()]], threading.Event()
        sampler = threading.Thread(target=sample_load, args=(samples, stop), daemon=True)
        sampler.start()
        print(f"[quick] running the quick preset in {workdir} (log: {workdir / 'quick.log'})", flush=True)
        seconds, cpu, rc, text = snakemake(workdir, files, "--cores", str(cores), "--keep-going",
                                           log=workdir / "quick.log")
        texts = [text]
        stop.set()
        samples.append([time.strftime("%H:%M:%S"), *load()])
        result = {"command": f"snakemake -s Snakefile -d {workdir} --configfile {' '.join(map(str, files))} "
                             f"--cores {cores} --keep-going", "workdir": str(workdir), "returncode": rc,
                  "wall_s": round(seconds, 1), "cpu_s": round(cpu, 1), "load_average_samples": samples}
    result.update(summarise_run(texts, workdir))
    if result.get("returncode"):
        print(f"[quick] snakemake exited with {result['returncode']}: see {workdir}/quick.log")
    wall = result.get("wall_s") or result["log_span_s"]
    print(f"[quick] {result['jobs_finished']} of {result['jobs_planned']} jobs in {wall / 60:.1f} min"
          f"{' (from the log)' if quick_log else ''}; failed: {result['failed_rules'] or 'none'}")
    for stage, fig in sorted(result["per_stage"].items(), key=lambda kv: kv[1]["first_start"]):
        print(f"[quick]   {stage:9} {fig['jobs']:3} jobs, {fig['job_s_sum'] / 60:6.1f} job-min, "
              f"{fig['first_start']}-{fig['last_end']}")
    return result


def main():
    args = parse_args()
    report = {"cores": os.cpu_count(), "load_average_start": load(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if not args.skip_full:
        report["full_dag"] = full_dag(args.repeats, synthetic=not args.skip_synthetic,
                                      synthetic_dir=args.synthetic_dir)
    if not args.skip_tiny:
        report["method_edit"] = method_edit(args.method, args.edit, args.cores)
    if args.quick or args.quick_log:
        report["quick"] = quick(args.configfile, args.cores, args.quick_dir, args.quick_log)
    report["load_average_end"] = load()
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1, default=str))
        print(f"written {args.output}")


if __name__ == "__main__":
    main()
