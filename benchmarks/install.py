"""The README's set-up on a fresh virtual environment: wall time and installed packages, with pip and with uv.

For each installer, one run: a new virtual environment in a temporary folder (``python -m venv``, or ``uv venv``),
then the README's install command in it (``pip install -r requirements/lock.txt -e '.[test]'``; for uv, the same
arguments after ``uv pip install --python <venv>``), timed; then the number of installed distributions and an
import of torch, transformers, snakemake and advtrain in the new environment. Targets on 2 cores with warm package caches:
<= 3 min with pip, <= 1 min with uv. ``--warm`` runs each installer once, untimed, into a throw-away environment
first, so both caches are warm (a cold cache measures the network instead). pip caches a download only when the
index's answer says it may be cached (HTTP caching headers); where a proxy strips them, pip downloads every wheel
again on each install and only its wheels built from sdists are cached: the script prints the number of files in
pip's HTTP cache, so the figure says which case it measured.

    python benchmarks/install.py --warm --output /tmp/install.json
    python benchmarks/install.py --installers pip --keep /tmp/fresh --test   # then the README's fast tests in it

uv, unlike pip, reads no pip.conf: on a machine whose pip.conf points at local wheels (``find-links``, e.g. a CPU
build of torch), pass the same folder with ``--find-links`` (given to uv only), or uv downloads PyPI's CUDA build.
The machine's load average is recorded before and after each run: on a shared machine the times are inflated.
"""

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The README's set-up command (its Install section); checked against the README below.
ARGS = ["-r", "requirements/lock.txt", "-e", ".[test]"]
README_COMMAND = "pip install -r requirements/lock.txt -e '.[test]'"
TEST_COMMAND = ["-m", "pytest", "-m", "not slow", "-q", "-p", "no:cacheprovider"]
ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
       "TOKENIZERS_PARALLELISM": "false"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--installers", nargs="+", choices=["pip", "uv"], default=["pip", "uv"])
    parser.add_argument("--python", default=sys.executable, help="the Python of the new environments")
    parser.add_argument("--find-links", default=None, help="a wheel folder for uv (pip reads its own pip.conf)")
    parser.add_argument("--pip-args", default="", help="extra pip install arguments, e.g. '--no-compile' (pip "
                        "compiles every module to bytecode as it installs; uv does not by default)")
    parser.add_argument("--warm", action="store_true", help="install once untimed first, to warm the caches")
    parser.add_argument("--keep", default=None, help="keep the environments under this folder (<folder>/<installer>)")
    parser.add_argument("--test", action="store_true", help="run the README's tests (-m 'not slow') in the pip "
                        "environment afterwards")
    parser.add_argument("--output", default=None, help="write the figures to this JSON file")
    return parser.parse_args()


def load():
    return [round(x, 2) for x in os.getloadavg()]


def uv():
    here = Path(sys.executable).parent / "uv"
    return str(here) if here.exists() else shutil.which("uv") or sys.exit("uv not found: pip install uv")


def commands(installer, venv, python, find_links, pip_args=()):
    """(create the environment, install into it) as argument lists."""
    if installer == "pip":
        return [python, "-m", "venv", str(venv)], [str(venv / "bin" / "pip"), "install", *pip_args, *ARGS]
    extra = ["--find-links", find_links] if find_links else []
    return ([uv(), "venv", "--quiet", "--python", python, str(venv)],
            [uv(), "pip", "install", "--python", str(venv / "bin" / "python"), *extra, *ARGS])


def run(cmd, **kwargs):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, **kwargs)
    if proc.returncode:
        sys.exit(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc


def install(installer, venv, args):
    create, setup = commands(installer, venv, args.python, args.find_links, shlex.split(args.pip_args))
    before = load()
    create_s, _ = run(create)
    install_s, _ = run(setup)
    python = str(venv / "bin" / "python")
    _, listed = run([python, "-c", "import importlib.metadata as m; print(len({d.name.lower() for d in "
                     "m.distributions()}))"])
    # textattack itself is not imported: its import reads NLTK data, which the workflow provides, not the install.
    _, versions = run([python, "-c", "import importlib.metadata as m, torch, transformers, snakemake, advtrain; "
                       "print(torch.__version__, transformers.__version__, 'textattack', m.version('textattack'))"],
                      env={**os.environ, **ENV})
    return {"installer": installer, "create": shlex.join(create), "install": shlex.join(setup),
            "venv_s": round(create_s, 1), "install_s": round(install_s, 1), "total_s": round(create_s + install_s, 1),
            "packages": int(listed.stdout.strip()), "imports": versions.stdout.strip(),
            "load_average_before": before, "load_average_after": load()}


def main():
    args = parse_args()
    readme = (REPO / "README.md").read_text()
    if README_COMMAND not in readme:
        sys.exit(f"the README no longer holds {README_COMMAND!r}: update ARGS/README_COMMAND here")
    report = {"cores": os.cpu_count(), "python": args.python, "runs": []}
    cache = subprocess.run([sys.executable, "-m", "pip", "cache", "list", "--format", "abspath"], capture_output=True,
                           text=True).stdout.split()
    http = subprocess.run([sys.executable, "-m", "pip", "cache", "info"], capture_output=True, text=True).stdout
    http_files = next((line.split(":")[1].strip() for line in http.splitlines() if "HTTP files" in line), "?")
    report["pip_cache"] = {"http_files": http_files, "built_wheels": len(cache)}
    print(f"pip's cache before: {http_files} HTTP files, {len(cache)} wheels built from sdists", flush=True)
    root = Path(args.keep or tempfile.mkdtemp(prefix="install_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        if args.warm:
            for installer in args.installers:
                warm = root / f"warm-{installer}"
                shutil.rmtree(warm, ignore_errors=True)
                seconds = install(installer, warm, args)["total_s"]
                shutil.rmtree(warm)
                print(f"[warm-up] {installer}: {seconds:.0f} s (untimed for the figures)", flush=True)
        for installer in args.installers:
            venv = root / installer
            shutil.rmtree(venv, ignore_errors=True)
            result = install(installer, venv, args)
            report["runs"].append(result)
            print(f"[{installer}] {result['total_s']:.0f} s ({result['venv_s']:.1f} s venv + {result['install_s']:.0f} s "
                  f"install), {result['packages']} packages; imports: {result['imports']}; load "
                  f"{result['load_average_before']} -> {result['load_average_after']}", flush=True)
        if args.test and "pip" in args.installers:
            python = str(root / "pip" / "bin" / "python")
            start = time.perf_counter()
            proc = subprocess.run([python, *TEST_COMMAND], cwd=REPO, capture_output=True, text=True,
                                  env={**os.environ, **ENV, "PATH": f"{root / 'pip' / 'bin'}:{os.environ['PATH']}"})
            last = (proc.stdout.strip().splitlines() or [""])[-1]
            report["tests"] = {"command": shlex.join([python, *TEST_COMMAND]), "returncode": proc.returncode,
                               "summary": last, "s": round(time.perf_counter() - start)}
            print(f"[tests in the pip environment] {last} (exit {proc.returncode})", flush=True)
            if proc.returncode:
                print(proc.stdout[-6000:], proc.stderr[-3000:])
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=1))
        print(f"written {args.output}")


if __name__ == "__main__":
    main()
