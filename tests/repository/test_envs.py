"""The lock and the conda environments: each env parses, every rule names one and a log, every pin of an env is
the lock's, the lock satisfies the package's requirements, and the lock and each env's pip list resolve on their
own (uv's resolver against the package index: nothing is installed)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import tomllib

import pytest
import yaml
from conftest import REPO
from packaging.requirements import Requirement

ENVS = sorted((REPO / "envs").glob("*.yaml"))
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
LOCK = REPO / "requirements" / "lock.txt"

# requirements/compile.py writes the lock and the envs; its parsing and resolver settings are the ones checked here.
_spec = importlib.util.spec_from_file_location("compile_requirements", REPO / "requirements" / "compile.py")
compile_requirements = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compile_requirements)
pinned, normalise = compile_requirements.pinned, compile_requirements.normalise


def env_pip(env_file) -> list[str]:
    spec = yaml.safe_load(env_file.read_text())
    return next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)


def pins(text: str) -> set[tuple[str, str]]:
    return {(name, version) for name, version, _ in pinned(text)}


@pytest.mark.parametrize("env_file", ENVS, ids=lambda p: p.name)
def test_env_parses_and_pins_python(env_file):
    spec = yaml.safe_load(env_file.read_text())
    assert "conda-forge" in spec["channels"]
    assert f"python={compile_requirements.PYTHON}" in spec["dependencies"]
    assert pins("\n".join(env_pip(env_file)))  # every line name==version, or pinned() raises


def test_every_rule_names_an_existing_env_and_a_log():
    for smk in RULE_FILES:
        for block in re.split(r"\n(?=rule )", smk.read_text())[1:]:
            name = block.split(":", 1)[0].removeprefix("rule ")
            assert "\n    log:" in block, f"{smk.name}: rule {name} has no log"
            env = re.search(r'\n    conda:\n\s+"([^"]+)"', block)
            assert env, f"{smk.name}: rule {name} has no conda env"
            assert (smk.parent / env.group(1)).resolve().exists(), f"{smk.name}: rule {name}: {env.group(1)}"


def test_the_lock_satisfies_every_requirement_of_the_package():
    lock = {name: version for name, version, _ in pinned(LOCK.read_text())}
    assert len(lock) == len(pinned(LOCK.read_text())), "one version per package (--fork-strategy fewest)"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [line for extra in project["optional-dependencies"].values() for line in extra]
    lines += [line for line in (REPO / "requirements" / "pins.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    for line in lines:
        req = Requirement(line)
        name = normalise(req.name)
        if name == project["name"]:
            continue  # the test extra's self-reference to other extras
        assert name in lock, f"{line!r} is not in requirements/lock.txt: run python requirements/compile.py"
        assert req.specifier.contains(lock[name], prereleases=True), \
            f"{name}=={lock[name]} in requirements/lock.txt violates {line!r}: run python requirements/compile.py"
    assert lock["torch"] == "2.13.0"
    cuda = sorted(n for n in lock if compile_requirements.CUDA_RUNTIME.match(n))
    assert not cuda, f"torch's CUDA runtime belongs to torch's own pins, not the lock: {cuda}"


@pytest.mark.parametrize("env_file", ENVS, ids=lambda p: p.name)
def test_env_pins_are_the_lock_pins(env_file):
    lock = pins(LOCK.read_text())
    env = pins("\n".join(env_pip(env_file)))
    assert env <= lock, f"{env_file.name} pins that are not the lock's: {sorted(env - lock)}"
    source = REPO / "requirements" / "envs" / f"{env_file.stem}.in"
    assert source.exists(), f"{env_file.name} has no source {source.relative_to(REPO)}"
    direct = {normalise(line) for line in source.read_text().splitlines() if line and not line.startswith("#")}
    assert direct <= {name for name, _ in env}, f"{env_file.name} lacks {sorted(direct - {n for n, _ in env})}"


def resolve_alone(requirements: list[str], tmp_path) -> set[tuple[str, str]]:
    """What uv's resolver makes of a pinned list on its own (the lock's settings), torch's CUDA runtime aside.

    No uv or no package index: a skip on a developer's machine, a failure in CI (CI=true), which has both.
    """
    in_ci = os.environ.get("CI", "").lower() == "true"
    try:
        uv = compile_requirements.uv()
    except SystemExit as e:
        if in_ci:
            raise AssertionError(str(e)) from None
        pytest.skip(str(e))
    listed = tmp_path / "requirements.txt"
    listed.write_text("\n".join(requirements) + "\n")
    proc = subprocess.run([*uv, "pip", "compile", str(listed), *compile_requirements.RESOLVE_FLAGS, "--no-header",
                           "--no-annotate", "--quiet"], capture_output=True, text=True, timeout=600)
    unreachable = re.search(r"Failed to fetch|error sending request|dns error|connect|network|timed out",
                            proc.stderr, re.IGNORECASE)
    if proc.returncode and unreachable and not in_ci:
        pytest.skip(f"the package index is unreachable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, f"uv pip compile of the pinned list failed:\n{proc.stderr}"
    return {(name, version) for name, version in pins(proc.stdout)
            if not compile_requirements.CUDA_RUNTIME.match(name)}


@pytest.mark.parametrize("listing", ["lock.txt", *(p.name for p in ENVS)])
def test_resolves_on_its_own(listing, tmp_path):
    """Resolving the pinned list alone gives back exactly the list: it is consistent and holds its whole closure."""
    if listing == "lock.txt":
        requirements = [line for line in LOCK.read_text().splitlines() if line and line[0] not in "# "]
    else:
        requirements = env_pip(REPO / "envs" / listing)
    expected = pins("\n".join(requirements))
    resolved = resolve_alone(requirements, tmp_path)
    assert resolved == expected, (f"{listing}: missing from the list {sorted(resolved - expected)}, "
                                  f"not needed or other versions {sorted(expected - resolved)}")
