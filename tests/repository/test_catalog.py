"""Where researchers look: the Snakemake workflow catalog's usage file and config/README.md agree with the README
and the repository; CI installs with the README's command."""

from __future__ import annotations

import re

import yaml
from conftest import REPO

README = (REPO / "README.md").read_text()
INSTALL = "pip install -r requirements/lock.txt -e '.[test]'"


def test_catalog_usage_file():
    usage = yaml.safe_load((REPO / ".snakemake-workflow-catalog.yml").read_text())["usage"]
    flags = usage["mandatory-flags"]["flags"]
    assert flags in README, f"the catalog's mandatory flags {flags!r} are not in the README's commands"
    assert usage["mandatory-flags"]["desc"]
    stack = usage["software-stack-deployment"]
    # Every rule has a conda env (tests/repository/test_envs.py); no rule names a container.
    assert stack["conda"] is True
    rules = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    assert stack["apptainer"] is ("container:" in rules)
    assert usage["report"] is True and "snakemake --report" in README
    assert (REPO / "config" / "README.md").exists()


def test_config_readme_names_every_config_file():
    text = (REPO / "config" / "README.md").read_text()
    configs = ["config.yaml", *(f"config/{p.name}" for p in (REPO / "config").glob("*.yaml"))]
    for name in configs:
        assert f"`{name}`" in text, f"config/README.md does not say what {name} is for"
    assert re.search(r"--configfile config/quick\.yaml \S+\.yaml", text), "no example of layering a local file"


def test_ci_and_readme_install_with_the_lock():
    assert INSTALL in README
    ci = (REPO / ".ci" / "run").read_text()
    assert f"\n{INSTALL}\n" in ci, ".ci/run does not install with the README's command"
    assert "-m venv" in ci, ".ci/run does not build a fresh virtual environment"
