"""The conda environments: each parses, every rule names one and a log, and the pins agree with each other
and with the package's requirements."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement

ENVS = sorted((REPO / "envs").glob("*.yaml"))
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))


def pins(env_file) -> dict[str, str]:
    spec = yaml.safe_load(env_file.read_text())
    pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
    out = {}
    for line in pip:
        name, _, version = line.partition("==")
        assert version, f"{env_file.name}: {line!r} is not pinned with =="
        out[name.lower().replace("_", "-")] = version
    return out


@pytest.mark.parametrize("env_file", ENVS, ids=lambda p: p.name)
def test_env_parses_and_pins_python(env_file):
    spec = yaml.safe_load(env_file.read_text())
    assert "conda-forge" in spec["channels"]
    assert any(str(d).startswith("python=") for d in spec["dependencies"])
    assert pins(env_file)


def test_every_rule_names_an_existing_env_and_a_log():
    for smk in RULE_FILES:
        for block in re.split(r"\n(?=rule )", smk.read_text())[1:]:
            name = block.split(":", 1)[0].removeprefix("rule ")
            assert "\n    log:" in block, f"{smk.name}: rule {name} has no log"
            env = re.search(r'\n    conda:\n\s+"([^"]+)"', block)
            assert env, f"{smk.name}: rule {name} has no conda env"
            assert (smk.parent / env.group(1)).resolve().exists(), f"{smk.name}: rule {name}: {env.group(1)}"


def test_pins_agree_across_envs_and_with_the_package_requirements():
    seen: dict[str, tuple[str, str]] = {}
    for env_file in ENVS:
        for name, version in pins(env_file).items():
            if name in seen:
                assert seen[name][0] == version, f"{name}: {version} in {env_file.name}, {seen[name]}"
            seen[name] = (version, env_file.name)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        req = Requirement(line)
        name = req.name.lower().replace("_", "-")
        if name in seen:
            assert req.specifier.contains(seen[name][0]), f"{name}=={seen[name][0]} violates {line}"
