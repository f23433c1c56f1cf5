"""advtrain.config_layers: duplicate keys and tabs named by file and line, a method redefined as another kind by a
later config layer, `--config` values typed as a config file types them; and the wiring through `snakemake -n`."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, planned_jobs, run_snakemake, tiny_config, write_config

from advtrain.config import ConfigError
from advtrain.config_layers import (
    METHOD_KEYS,
    check,
    check_method_layers,
    explain_without_base,
    load,
    loaded,
    main,
    method_kind,
    typed_cli_config,
)

# --------------------------------------------------------------------------- one file


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_load_reads_yaml_and_json(tmp_path):
    assert load(write(tmp_path / "a.yaml", "model:\n  epochs: 2\nseeds: [1, 2]\n")) == {
        "model": {"epochs": 2}, "seeds": [1, 2]}
    assert load(write(tmp_path / "a.json", '{"model": {"epochs": 2},\n\t"seeds": [1]}')) == {
        "model": {"epochs": 2}, "seeds": [1]}


@pytest.mark.parametrize(("text", "message"), [
    ("model:\n  epochs: 2\n  batch_size: 8\n  epochs: 4\n",
     r"line 4: duplicate key model\.epochs \(first on line 2\); YAML would keep only the last one"),
    ("methods:\n  PGD-AT: {adversarial_embedding: {kind: pgd}}\n  LDS: {}\n  PGD-AT:\n"
     "    adversarial_embedding: {kind: lds}\n", r"line 4: duplicate key methods\.PGD-AT \(first on line 2\)"),
    ("seeds: [1]\nseeds: [2]\n", r"line 2: duplicate key seeds \(first on line 1\)"),
    ("lca:\n  data:\n    - {a: 1, a: 2}\n", r"line 3: duplicate key lca\.data\.0\.a \(first on line 3\)"),
], ids=["nested", "method", "top-level", "in-flow-mapping"])
def test_duplicate_key_names_file_line_and_key(tmp_path, text, message):
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}, {message}"):
        load(path)


def test_duplicate_key_in_json_names_file_and_key(tmp_path):
    path = write(tmp_path / "c.json", '{"seeds": [1],\n "model": {"epochs": 2,\n "epochs": 3}}')
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}, line 3: duplicate key model\.epochs"):
        load(path)
    path = write(tmp_path / "c.json", '{"seeds": [1],\n\t"model": {"epochs": 2, "epochs": 3}}')  # a tab: not YAML
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}: duplicate key 'epochs' in a JSON object"):
        load(path)


@pytest.mark.parametrize("text", ["model:\n  epochs: 2\n\tbatch_size: 8\n", "model:\n\tepochs: 2\n"],
                         ids=["mixed", "tab-only"])
def test_tab_indentation_names_file_and_line(tmp_path, text):
    path = write(tmp_path / "c.yaml", text)
    line = text.splitlines().index(next(x for x in text.splitlines() if x.startswith("\t"))) + 1
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}, line {line}, column 1: not valid YAML .*: a tab "
                                          r"in the indentation \(YAML indents with spaces only\)"):
        load(path)


@pytest.mark.parametrize(("text", "message"), [
    ("model:\n  epochs: 2\n   batch_size: 8\n", r", line 3, column 14: not valid YAML \(mapping values are not "),
    ("", r": a config file holds keys at its top level \(this one holds nothing\)"),
    ("- 1\n- 2\n", r": a config file holds keys at its top level \(this one holds list\)"),
], ids=["bad-indent", "empty", "list"])
def test_other_bad_files_name_the_file(tmp_path, text, message):
    path = write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(path))}{message}"):
        load(path)


def test_not_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_bytes("seeds: [1]\nmodel: {name: caf\u00e9}\n".encode("cp1252"))
    with pytest.raises(ConfigError, match=r"c\.yaml, line 2: byte 0xe9 is not UTF-8"):
        load(path)


# --------------------------------------------------------------------------- layers

PGD = {"adversarial_embedding": {"kind": "pgd", "steps": 3, "epsilon": 0.003}}
BASE = {"methods": {"BERT": {}, "PGD-AT": PGD, "A2T": {"adversarial_input": {"recipe": "a2t", "fraction": 0.2}},
                    "SSMBA": {"augment": {"augmenters": ["ssmba"], "fraction": 1.0}}}}


@pytest.mark.parametrize(("overlay", "before", "after"), [
    ({"PGD-AT": {"adversarial_embedding": {"kind": "lds"}}}, "adversarial_embedding pgd",
     "adversarial_embedding lds"),
    ({"PGD-AT": None}, "adversarial_embedding pgd", "no parts (the baseline)"),
    ({"PGD-AT": {"adversarial_embedding": None}}, "adversarial_embedding pgd", "no parts (the baseline)"),
    ({"BERT": {"adversarial_embedding": {"kind": "alum"}}}, "no parts (the baseline)", "adversarial_embedding alum"),
    ({"A2T": {"adversarial_input": {"recipe": "a2t_mlm"}}}, "adversarial_input a2t", "adversarial_input a2t_mlm"),
    ({"A2T": {"adversarial_embedding": {"kind": "pgd"}}}, "adversarial_input a2t",
     "adversarial_input a2t, adversarial_embedding pgd"),
    ({"SSMBA": {"augment": {"augmenters": ["backtranslation"]}}}, "augment ssmba", "augment backtranslation"),
], ids=["pgd-to-lds", "method-null", "part-null", "baseline-gets-a-part", "recipe", "added-part", "augmenters"])
def test_changing_a_methods_kind_names_both_layers_and_the_key(overlay, before, after):
    with pytest.raises(ConfigError) as err:
        check_method_layers([("config.yaml", BASE), ("local.yaml", {"methods": overlay})])
    msg = str(err.value)
    name = next(iter(overlay))
    assert msg.startswith(f"methods.{name}: local.yaml changes what the method is: {before} in config.yaml, "), msg
    assert f"{after} once local.yaml is merged into it" in msg
    assert f"report it as {name!r}. Give it a new name under `methods`" in msg


@pytest.mark.parametrize("name", ["PGD-AT", "NEW"])
def test_a_misspelt_part_is_an_unknown_key_not_another_method(name):
    """Under an existing method or a new one alike: the key and its file, not "changes what the method is"."""
    overlay = {"methods": {name: {"adverserial_embedding": {"epsilon": 0.01}}}}
    with pytest.raises(ConfigError) as err:
        check_method_layers([("config.yaml", BASE), ("local.yaml", overlay)])
    assert str(err.value) == (f"methods.{name}.adverserial_embedding: unknown key in local.yaml (allowed here: "
                              "adversarial_embedding, adversarial_input, augment, family, flooding, smoothing, train); "
                              "did you mean adversarial_embedding?")


def test_method_keys_are_the_schemas():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert sorted(METHOD_KEYS) == sorted(schema["$defs"]["method"]["properties"])


@pytest.mark.parametrize("overlay", [
    {"PGD-AT": {"adversarial_embedding": {"epsilon": 0.01, "steps": 5}, "train": {"learning_rate": 1e-5}}},
    {"PGD-AT": {"adversarial_embedding": {"kind": "pgd", "norm": "linf"}}},
    {"PGD-AT": {}, "BERT": {"train": {"epochs": 2}}},
    {"PGD-strong": {"adversarial_embedding": {"kind": "lds"}}},
    {"SSMBA": {"augment": {"fraction": 0.5, "augmenters": ["ssmba"]}}},
    {"BERT": {"family": "AT-DA"}, "PGD-AT": {"family": "mine"}},  # the claims' grouping, not what is trained
], ids=["settings", "same-kind", "empty", "new-name", "same-augmenters", "family"])
def test_settings_and_new_methods_pass(overlay):
    check_method_layers([("config.yaml", BASE), ("local.yaml", {"methods": overlay}), ("--config", {})])


def test_later_layers_compare_with_the_merged_method():
    """A third layer is compared with what the first two made of the method, and names the layer that defined it."""
    layers = [("a.yaml", BASE), ("b.yaml", {"methods": {"PGD-AT": {"adversarial_embedding": {"steps": 5}}}}),
              ("--config", {"methods": {"PGD-AT": {"adversarial_embedding": {"kind": "alum"}}}})]
    with pytest.raises(ConfigError, match=r"^methods\.PGD-AT: --config changes what the method is: adversarial_"
                                          r"embedding pgd in a\.yaml, adversarial_embedding alum once --config"):
        check_method_layers(layers)


def test_method_kind():
    assert method_kind(None) == {} and method_kind({}) == {} and method_kind({"train": {"epochs": 1}}) == {}
    assert method_kind({"family": "AT-EP"}) == {} and method_kind({**PGD, "family": "x"}) == method_kind(PGD)
    assert method_kind({**PGD, "augment": {"augmenters": ["b", "a"]}}) == {
        "adversarial_embedding": "pgd", "augment": ("a", "b")}


def test_repo_presets_layer_cleanly():
    """config/quick.yaml over config.yaml (the README's command) redefines no method."""
    assert check(REPO / "config.yaml", [REPO / "config/quick.yaml"]) == [
        str((REPO / "config.yaml").absolute()), str(REPO / "config/quick.yaml")]


def test_check_names_the_file_of_a_layer(tmp_path):
    base = write(tmp_path / "config.yaml", yaml.safe_dump(BASE))
    local = write(tmp_path / "local.yaml", "methods:\n  PGD-AT:\n    adversarial_embedding: {kind: lds}\n")
    with pytest.raises(ConfigError, match=rf"methods\.PGD-AT: {re.escape(str(local))} changes .* in "
                                          rf"{re.escape(str(base))}, "):
        check(base, [local])
    assert check(tmp_path / "absent.yaml", [base]) == [str(base)]  # the Snakefile's configfile may be absent
    with pytest.raises(ConfigError, match=r"^methods\.PGD-AT: --config changes"):
        check(None, [base], {"methods": {"PGD-AT": {"adversarial_embedding": {"kind": "lds"}}}})


def test_the_loaded_files_and_a_missing_base_are_said_plainly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cwd = Path.cwd()
    base = str(cwd / "config.yaml")
    assert loaded([base, "/x/quick.yaml"], "config.yaml") == (
        f"Config files, in merge order: {base} (base: config.yaml in the working directory), /x/quick.yaml")
    assert loaded(["/x/quick.yaml"], "config.yaml") == (
        f"Config files, in merge order: /x/quick.yaml (no base config.yaml in the working directory {cwd})")
    with pytest.raises(ConfigError, match=rf"^the base config config\.yaml is not in the working directory "
                                          rf"{re.escape(str(cwd))} .*, and no --configfile was given"):
        check("config.yaml", [])
    schema_errors = "\n".join([*(f"<top level>: '{k}' is a required property" for k in ("seeds", "datasets")),
                               "model: 'name' is a required property", "model.epochs: 0 is less than 1"])
    repo_config = REPO / "config.yaml"
    assert explain_without_base(schema_errors, "config.yaml", ["/x/quick.yaml"], repo_config) == (
        f"the base config config.yaml is not in the working directory {cwd} (Snakemake's -d / --directory, where "
        "the Snakefile's `configfile: \"config.yaml\"` is looked for): only /x/quick.yaml was read, leaving seeds, "
        f"datasets, model.name unset. Pass the base config first (--configfile {repo_config} /x/quick.yaml), or run "
        "in the folder that holds it.\nmodel.epochs: 0 is less than 1")
    assert explain_without_base("model.epochs: 0 is less than 1", "config.yaml", []) == "model.epochs: 0 is less than 1"


def test_main_names_the_line_of_a_tab(tmp_path, capsys):
    good = write(tmp_path / "good.yaml", "seeds: [1]\n")
    bad = write(tmp_path / "bad.yaml", "model:\n  epochs: 2\n\tbatch_size: 8\n")
    assert main([str(good), str(bad)]) == 1
    assert f"{bad}, line 3, column 1: not valid YAML" in capsys.readouterr().err
    assert main([str(good)]) == 0
    assert main([]) == 2


# --------------------------------------------------------------------------- --config


def test_typed_cli_config():
    """What Snakemake's --config parser gives for nested values (YAML's BaseLoader: strings), typed."""
    from snakemake.cli import parse_config

    parsed = parse_config(["run={methods: null, datasets: [MR]}", "model={epochs: 2, learning_rate: 2.0e-5, "
                           "path: /data/bert, name: 'null-model'}", "seeds=[1, 2]", "offline=true", "cache_dir=res"])
    assert parsed["run"]["methods"] == "null" and parsed["seeds"] == ["1", "2"]  # what made `null` fail
    assert typed_cli_config(parsed) == {
        "run": {"methods": None, "datasets": ["MR"]},
        "model": {"epochs": 2, "learning_rate": 2e-5, "path": "/data/bert", "name": "null-model"},
        "seeds": [1, 2], "offline": True, "cache_dir": "res"}
    assert typed_cli_config({"model": {"path": "/x: y", "name": ""}}) == {"model": {"path": "/x: y", "name": ""}}
    assert typed_cli_config(None) == {}


# --------------------------------------------------------------------------- through snakemake -n


@pytest.fixture()
def layered_workdir(tmp_path, tiny_model, tiny_data):
    config = tiny_config(tiny_model, tiny_data, tmp_path / "resources")
    config["seeds"] = [1]
    config["methods"] = {"BERT": {}, "PGD-AT": PGD}
    write_config(tmp_path, config)
    return tmp_path


def _failed_before_any_job(proc, workdir: Path) -> str:
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "Invalid configuration:" in out and planned_jobs(out) == []
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()
    return out


def test_snakemake_stops_on_a_layer_that_redefines_a_method(layered_workdir):
    local = write(layered_workdir / "local.yaml", "methods:\n  PGD-AT:\n    adversarial_embedding: {kind: lds}\n")
    proc = run_snakemake(layered_workdir, "-n", "--cores", "1", "--configfile", str(layered_workdir / "config.yaml"),
                         str(local), check=False, cwd=layered_workdir)
    out = _failed_before_any_job(proc, layered_workdir)
    assert (f"methods.PGD-AT: {local} changes what the method is: adversarial_embedding pgd in "
            f"{layered_workdir / 'config.yaml'}, adversarial_embedding lds once {local} is merged") in out, out[-3000:]


def test_snakemake_names_file_and_line_of_a_duplicate_key(layered_workdir):
    """In the Snakefile's own configfile (config.yaml in the working directory), read before Snakemake reads it."""
    path = layered_workdir / "config.yaml"
    lines = path.read_text().splitlines()
    at = lines.index("  max_length: 32") + 1
    path.write_text("\n".join([*lines[:at], "  epochs: 9", *lines[at:]]) + "\n")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(layered_workdir),
                           "-n", "--cores", "1"], capture_output=True, text=True, cwd=layered_workdir, timeout=300)
    out = _failed_before_any_job(proc, layered_workdir)
    second = next(i for i, x in enumerate(lines) if x.startswith("  epochs:")) + 2  # after the inserted line
    assert f"{path}, line {second}: duplicate key model.epochs (first on line {at + 1})" in out, out[-3000:]


def test_snakemake_config_run_methods_null_means_all(layered_workdir):
    """`--config 'run={methods: null}'` (the README's "null = all") overrides the config file's list; nested numbers
    are numbers (`model={epochs: 1}` was the string "1", which the schema rejects)."""
    config = yaml.safe_load((layered_workdir / "config.yaml").read_text())
    config["run"] = {"methods": ["BERT"], "datasets": ["MR"]}
    write_config(layered_workdir, config)
    proc = run_snakemake(layered_workdir, "-n", "--cores", "1", "--config", "run={methods: null, datasets: [MR]}",
                         "model={epochs: 1}", cwd=layered_workdir)
    trained = {w["method"] for rule, w in planned_jobs(proc.stdout + proc.stderr) if rule == "train"}
    assert trained == {"BERT", "PGD-AT"}
    base = layered_workdir / "config.yaml"  # the Snakefile's configfile, then the same file as --configfile
    assert f"Config files, in merge order: {base} (base: config.yaml in the working directory), {base}\n" in proc.stderr


def test_snakemake_says_plainly_that_the_base_config_is_missing(layered_workdir, tmp_path_factory):
    """-d to a folder without config.yaml and only a partial --configfile: one sentence, not a schema error per key."""
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    part = write(layered_workdir / "part.yaml", "model:\n  epochs: 1\n")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(elsewhere),
                           "--configfile", str(part), "-n", "--cores", "1"], capture_output=True, text=True,
                          cwd=layered_workdir, timeout=300)
    out = _failed_before_any_job(proc, elsewhere)
    assert (f"Invalid configuration:\nthe base config config.yaml is not in the working directory {elsewhere} "
            "(Snakemake's -d / --directory, where the Snakefile's `configfile: \"config.yaml\"` is looked for): only "
            f"{part} was read, leaving seeds, datasets, methods, toy, model.name") in out, out[-3000:]
    assert f"Pass the base config first (--configfile {REPO / 'config.yaml'} {part})" in out
    assert "is a required property" not in out
    assert f"Config files, in merge order: {part} (no base config.yaml in the working directory {elsewhere})" in out


def test_snakemake_names_the_folder_a_layers_relative_path_was_resolved_against(layered_workdir, tiny_model):
    """`model.path: tiny` in a layer beside tiny/: resolved against the working directory (-d), as Snakemake does,
    and the error says where it looked and where the folder is."""
    layer = layered_workdir / "layer"
    shutil.copytree(tiny_model, layer / "tiny")
    local = write(layer / "local.yaml", "model:\n  path: tiny\n")
    proc = run_snakemake(layered_workdir, "-n", "--cores", "1", "--configfile", str(layered_workdir / "config.yaml"),
                         str(local), check=False, cwd=layered_workdir)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and planned_jobs(out) == [], out[-3000:]
    assert (f"model.path: tiny (resolved against the working directory {layered_workdir}, Snakemake's -d) does not "
            f"exist; {layer / 'tiny'} does, beside {local}, but paths in config files are relative to the working "
            "directory: write it as an absolute path.") in out, out[-3000:]
