"""What Snakemake imports to build the DAG stays light: every module that the Snakefile and the rule files
(workflow/rules/common.smk) import from the package at top level is free of torch, transformers, textattack and datasets, so a dry run (`snakemake -n`: 1,524 jobs on
config.yaml) does not pay for their import (15.8 s of a 57 s profile when one of them slipped in)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from conftest import REPO

HEAVY = ("torch", "transformers", "textattack", "datasets")
WORKFLOW_FILES = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]


def package_imports() -> list[str]:
    """The top-level (unindented, so read while the DAG is built) import statements of the package in the
    workflow's files, as written (comments dropped)."""
    lines = [line.split("#", 1)[0].rstrip() for path in WORKFLOW_FILES for line in path.read_text().splitlines()]
    return [line for line in lines if re.match(r"(from|import) advtrain\b", line)]


def test_the_workflow_imports_nothing_heavy_to_build_the_dag():
    imports = package_imports()
    assert imports, "no import of the package found in the Snakefile or workflow/rules/*.smk"
    assert not any(line.endswith(("(", "\\")) for line in imports), "write each import on one line: " + str(imports)
    script = "\n".join([*imports, "import json, sys",
                        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    heavy = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not heavy, (f"importing the workflow's modules ({'; '.join(imports)}) imports {heavy}: keep what the DAG "
                       f"needs in torch-free modules (as advtrain.training.input_schedule)")
