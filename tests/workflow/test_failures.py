"""Failure behaviour of the real workflow, as `snakemake` meets it.

- a failed attack shard: the other shard's work is kept, only the failed shard reruns, and the gathered result
  equals a clean run's;
- corrupted inputs (empty, one class, undecodable bytes, a missing column, a truncated parquet file): the run
  stops naming the file (and line), no model is trained on it, the other dataset's outputs are left alone;
- bad config values: the run stops before any job with "Invalid configuration" and the key holding the value.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from attack_fixtures import assert_same_records, build_sentence_encoder, build_word_embedding, read_jsonl
from conftest import (
    TWO_JOBS,
    planned_jobs,
    run_snakemake,
    shared_data,
    tiny_config,
    write_config,
    write_tiny_data,
)
from test_attack_workflow import attack_config

pytestmark = pytest.mark.slow


def output_of(proc) -> str:
    return proc.stdout + proc.stderr


def snapshot(root: Path, *paths: str) -> dict[str, tuple[int, str]]:
    """{relative path: (mtime in ns, sha256)} of every file at or under ``paths``."""
    found = {}
    for rel in paths:
        top = root / rel
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        for path in files:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            found[str(path.relative_to(root))] = (path.stat().st_mtime_ns, digest)
    return found


# --------------------------------------------------------------------------- a failed attack shard

RECIPE = "textfooler"
RUN = "results/attacks/MR/BERT/seed1"
SHARD = RUN + "/" + RECIPE + "/shard{k}-of-2"
TARGET = "results/tables/table2_asr.csv"  # the gathered summary and what reads it; no evaluation, no toy
INJECTED = "injected failure in attack shard 2 (tests/workflow/test_failures.py)"

# Loaded by every Python process with its folder on PYTHONPATH: the snakemake process and each job's script.
# Snakemake runs a `script:` as a copy named .snakemake/scripts/tmp<random>.attack_shard.py; in that copy
# only, the second shard raises inside the attack (after the script sent its output to the rule's log).
SITECUSTOMIZE = f'''
import inspect
import sys

if sys.argv and sys.argv[0].endswith(".attack_shard.py"):
    import advtrain.attacks

    _attack_examples = advtrain.attacks.attack_examples

    def attack_examples(*args, **kwargs):
        bound = inspect.signature(_attack_examples).bind(*args, **kwargs)
        if bound.arguments["shard"].index == 1:
            raise RuntimeError({INJECTED!r})
        return _attack_examples(*args, **kwargs)

    advtrain.attacks.attack_examples = attack_examples
'''


@pytest.fixture(scope="module")
def trained_for_attack(tmp_path_factory, tiny_model, tiny_data):
    """A workdir whose MR model is trained (data + train jobs done), ready for the attack stage: TextFooler,
    4 examples, 2 shards. Its config's paths lie outside it or are relative: a copy of it is a workdir too."""
    nltk_data = shared_data("nltk_data")
    root = tmp_path_factory.mktemp("shard_failure")
    resources = {
        "word_embedding": str(build_word_embedding(root / "paragramcf")),
        "sentence_encoder": str(build_sentence_encoder(root / "sentence_encoder", tiny_model)),
        "nltk_data": str(nltk_data),
    }
    workdir = root / "trained"
    workdir.mkdir()
    config = attack_config(tiny_model, tiny_data, workdir, resources, shards=2)
    config["cache_dir"] = "resources"
    config["attacks"]["recipes"] = [RECIPE]
    write_config(workdir, config)
    run_snakemake(workdir, *TWO_JOBS, "results/models/MR/BERT/seed1/model",
                  "results/data/MR/test.parquet")
    return root, workdir


def test_failed_attack_shard_reruns_alone(trained_for_attack):
    root, trained = trained_for_attack
    failing, clean = root / "failing", root / "clean"
    shutil.copytree(trained, failing)
    shutil.copytree(trained, clean)
    inject = root / "inject"
    inject.mkdir()
    (inject / "sitecustomize.py").write_text(SITECUSTOMIZE)
    # Attack jobs ask for the workflow profile's one `gpu`; there is none here: both shards may run at once.
    # (The target after a one-value option: --resources would take it as a resource.)
    run_args = ("--resources", "gpu=2", "--cores", "2", TARGET)

    # 1. Shard 2 fails; --keep-going lets shard 1 finish.
    pythonpath = os.pathsep.join(p for p in (str(inject), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": pythonpath}
    first = run_snakemake(failing, "--keep-going", *run_args, check=False, env=env)
    out = output_of(first)
    assert first.returncode != 0, out[-3000:]
    started = planned_jobs(out)
    assert sorted(w["scatteritem"] for rule, w in started if rule == "attack_shard") == ["1-of-2", "2-of-2"]
    assert {rule for rule, _ in started} == {"attack_shard"}  # the gather never started, nothing retrained
    shard1, shard2 = (failing / SHARD.format(k=k) for k in (1, 2))
    assert Path(f"{shard1}.jsonl").is_file() and Path(f"{shard1}.json").is_file(), out[-3000:]
    assert not Path(f"{shard2}.jsonl").exists() and not Path(f"{shard2}.json").exists()
    assert not (failing / RUN / f"{RECIPE}.json").exists() and not (failing / TARGET).exists()
    log = (failing / f"logs/attack/MR/BERT/seed1/{RECIPE}/shard2-of-2.log").read_text()
    assert f"RuntimeError: {INJECTED}" in log, log[-3000:]
    assert "Error in rule attack_shard" in out and "shard2-of-2.log" in out
    assert len(read_jsonl(Path(f"{shard1}.jsonl"))) == 2  # shard 1's half of the 4 examples
    kept = snapshot(failing, f"{RUN}/{RECIPE}", "results/models", "results/data")

    # 2. The rerun plans the failed shard and what reads it, nothing else.
    dry = run_snakemake(failing, "-n", *run_args)
    jobs = planned_jobs(output_of(dry))
    assert sorted(rule for rule, _ in jobs) == ["attack_shard", "gather_attack", "table2_asr"], jobs
    assert [w["scatteritem"] for rule, w in jobs if rule == "attack_shard"] == ["2-of-2"]

    # 3. The rerun (nothing injected) runs only shard 2; shard 1's files, the data and the model stay.
    rerun = run_snakemake(failing, *run_args)
    ran = planned_jobs(output_of(rerun))
    assert [(rule, w.get("scatteritem")) for rule, w in ran if rule in ("attack_shard", "train")] == [
        ("attack_shard", "2-of-2")]
    after = snapshot(failing, f"{RUN}/{RECIPE}", "results/models", "results/data")
    assert {k: v for k, v in after.items() if k in kept} == kept
    assert set(after) - set(kept) == {f"{RUN}/{RECIPE}/shard2-of-2.jsonl", f"{RUN}/{RECIPE}/shard2-of-2.json"}

    # 4. The same attack run in one go, from the same trained model, in another directory: the same results.
    run_snakemake(clean, *run_args)
    for k in (1, 2):
        shard = f"{SHARD.format(k=k)}.jsonl"
        # Shard 1 ran beside a failing shard 2, then shard 2 alone: the broker batched other queries with them.
        assert_same_records(read_jsonl(failing / shard), read_jsonl(clean / shard))
    gathered, reference = (json.loads((d / RUN / f"{RECIPE}.json").read_text()) for d in (failing, clean))
    assert gathered["total"] == 4 and gathered["shards"] == 2
    assert {k: v for k, v in gathered.items() if k != "seconds"} == {
        k: v for k, v in reference.items() if k != "seconds"}
    pd.testing.assert_frame_equal(pd.read_csv(failing / TARGET), pd.read_csv(clean / TARGET))


# --------------------------------------------------------------------------- corrupted inputs

SOURCE_FILES = {"IMDB": "data/tiny_train.csv", "MR": "data/rt-polarity.pos"}
OTHER = {"IMDB": "MR", "MR": "IMDB"}


@pytest.fixture(scope="module")
def data_stage_done(tmp_path_factory, tiny_model):
    """A workdir whose IMDB and MR data stages have run (not YELP's), with its source files under data/."""
    workdir = tmp_path_factory.mktemp("data_stage")
    write_tiny_data(workdir / "data")
    names = {"tiny_train": "tiny_train.csv", "tiny_test": "tiny_test.csv", "mr_pos": "rt-polarity.pos",
             "mr_neg": "rt-polarity.neg", "yelp": "yelp.txt"}
    config = tiny_config(tiny_model, {k: Path("data") / v for k, v in names.items()}, Path("resources"))
    config["seeds"] = [1]
    config["methods"] = {"BERT": {}}
    config["run"] = {"methods": ["BERT"], "datasets": ["IMDB", "MR"]}
    write_config(workdir, config)
    run_snakemake(workdir, *TWO_JOBS, "results/data/IMDB/test.parquet", "results/data/MR/test.parquet")
    return workdir, config


def rewrite_csv(path: Path, edit) -> None:
    df = pd.read_csv(path)
    edit(df).to_csv(path, index=False)


def empty_file(workdir, config, dataset):
    path = SOURCE_FILES[dataset]
    (workdir / path).write_bytes(b"")
    return [f"{path}: file is empty"]


def one_class(workdir, config, dataset):
    rewrite_csv(workdir / "data/tiny_train.csv", lambda df: df.assign(label=1))
    return ["data/tiny_train.csv", "split 'train' has one class only (label 1)"]


def undecodable_byte(workdir, config, dataset):
    """A byte the file's encoding has no character for, on line 7: after the csv's header and 5 rows, after 6
    sentences of MR's .pos file (cp1252, where 0x81 is unassigned)."""
    path = workdir / SOURCE_FILES[dataset]
    byte, encoding = (0xFF, "utf-8") if dataset == "IMDB" else (0x81, "cp1252")
    lines = path.read_bytes().split(b"\n")
    lines[6] = lines[6][:4] + bytes([byte]) + lines[6][4:]
    path.write_bytes(b"\n".join(lines))
    return [f"{SOURCE_FILES[dataset]}, line 7: byte {byte:#04x} cannot be decoded as {encoding}"]


def utf16_file(workdir, config, dataset):
    """The .pos file saved as UTF-16 (with a byte-order mark), still configured as cp1252: read as cp1252 it would
    be NUL-interleaved text."""
    path = workdir / SOURCE_FILES[dataset]
    path.write_bytes(path.read_bytes().decode("cp1252").encode("utf-16"))
    return [f"{SOURCE_FILES[dataset]}: starts with a UTF-16-LE byte-order mark, so it is utf-16 text, not cp1252. "
            "Set the source's `encoding: utf-16`."]


def missing_column(workdir, config, dataset):
    rewrite_csv(workdir / "data/tiny_train.csv", lambda df: df.rename(columns={"label": "sentiment"}))
    return ["data/tiny_train.csv: missing label column 'label'", "label_column"]


def truncated_parquet(workdir, config, dataset):
    files = {}
    for split in ("train", "test"):
        files[split] = f"data/tiny_{split}.parquet"
        pd.read_csv(workdir / f"data/tiny_{split}.csv").to_parquet(workdir / files[split], index=False)
    raw = (workdir / files["train"]).read_bytes()
    (workdir / files["train"]).write_bytes(raw[: len(raw) // 2])
    config["datasets"]["IMDB"]["source"]["local"].update(format="parquet", files=files)
    return ["data/tiny_train.parquet: cannot read as parquet"]


def empty_texts(workdir, config, dataset):
    """Two texts blanked, one written as NaN (how a missing value often reaches a csv)."""
    rewrite_csv(workdir / "data/tiny_train.csv",
                lambda df: df.assign(text=df["text"].where(~df.index.isin([1, 4]), "").where(df.index != 6, "NaN")))
    return ["data/tiny_train.csv: 3 rows without text (empty, or a missing value such as NaN): line 3 (''), "
            "line 6 (''), line 8 ('NaN'). Fill in or remove them, or set `datasets.IMDB.empty_texts: drop`"]


def cut_mid_line(workdir, config, dataset):
    """The csv cut in the middle of its last row, as by an interrupted copy."""
    path = workdir / "data/tiny_train.csv"
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 12])
    line = raw[: len(raw) - 12].count(b"\n") + 1
    return [f"data/tiny_train.csv, line {line}: the last line has no line break",
            "the file was probably truncated", "`datasets.IMDB.source.local.sha256.train: "]


CORRUPTIONS = [
    ("empty-csv", "IMDB", empty_file),
    ("empty-pos-file", "MR", empty_file),
    ("one-class", "IMDB", one_class),
    ("non-utf8", "IMDB", undecodable_byte),
    ("non-cp1252", "MR", undecodable_byte),
    ("utf16-as-cp1252", "MR", utf16_file),
    ("missing-column", "IMDB", missing_column),
    ("truncated-parquet", "IMDB", truncated_parquet),
    ("empty-texts", "IMDB", empty_texts),
    ("csv-cut-mid-line", "IMDB", cut_mid_line),
]


@pytest.mark.parametrize(("dataset", "corrupt"), [c[1:] for c in CORRUPTIONS],
                         ids=[f"{c[0]}-{c[1]}" for c in CORRUPTIONS])
def test_corrupted_input_stops_its_dataset_only(data_stage_done, tmp_path, dataset, corrupt):
    base, base_config = data_stage_done
    workdir = tmp_path / "run"
    shutil.copytree(base, workdir)  # file times kept: its finished outputs are as up to date as the base's
    other = OTHER[dataset]
    shutil.rmtree(workdir / "results/data" / dataset)  # only the other dataset's data stage has run
    (workdir / f"logs/data/{dataset}.log").unlink()
    before = snapshot(workdir, f"results/data/{other}", f"logs/data/{other}.log")
    assert len(before) == 7

    config = copy.deepcopy(base_config)
    expected = corrupt(workdir, config, dataset)
    write_config(workdir, config)
    # Everything that needs the corrupted dataset (its data, model, evaluation), the other dataset's finished
    # data stage, and YELP's data stage, independent of the corrupted file: --keep-going lets it run.
    targets = [f"results/eval/{dataset}/BERT/seed1.json", f"results/data/{other}/test.parquet"]
    proc = run_snakemake(workdir, "--cores", "2", "--keep-going", *targets, check=False)
    out = output_of(proc)
    assert proc.returncode != 0, out[-3000:]

    log = (workdir / f"logs/data/{dataset}.log").read_text()
    for words in expected:
        assert words in log, log[-3000:]
        assert words in out  # the profile's show-failed-logs: the reason is in snakemake's own output too
    assert "Error in rule prepare_training_dataset" in out
    assert not (workdir / "results/data" / dataset).exists()

    ran = {rule for rule, _ in planned_jobs(out)}
    assert "train" not in ran and "evaluate" not in ran, ran
    assert not (workdir / "results/models" / dataset).exists()
    assert not (workdir / "logs/train" / dataset).exists()
    assert not (workdir / "results/models").exists()

    assert snapshot(workdir, f"results/data/{other}", f"logs/data/{other}.log") == before
    assert {w["dataset"] for rule, w in planned_jobs(out) if rule.startswith("prepare")} == {dataset, "YELP"}
    assert json.loads((workdir / "results/data/YELP/test.json").read_text())["rows"] == 80


def test_data_summary_records_each_source_file(data_stage_done):
    """Each split's summary names the files its rows came from, with their sha256, size and rows."""
    workdir, _ = data_stage_done

    def record(name, rows):
        raw = (workdir / "data" / name).read_bytes()
        return {"path": f"data/{name}", "sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw), "rows": rows,
                "empty_texts_dropped": 0}

    imdb = {s: json.loads((workdir / f"results/data/IMDB/{s}.json").read_text()) for s in ("train", "validation", "test")}
    assert imdb["train"]["sources"] == imdb["validation"]["sources"] == [record("tiny_train.csv", 280)]
    assert imdb["test"]["sources"] == [record("tiny_test.csv", 80)]
    mr = json.loads((workdir / "results/data/MR/test.json").read_text())
    assert mr["sources"] == [record("rt-polarity.pos", 150), record("rt-polarity.neg", 150)]


# --------------------------------------------------------------------------- bad config values

# (id, path, value, the key the message names). Each is one edit of a valid tiny config.
BAD_VALUES = [
    # wrong types
    ("seeds-not-a-list", ("seeds",), 1, "seeds"),
    ("batch-size-string", ("model", "batch_size"), "8", "model.batch_size"),
    # out of range
    ("negative-seed", ("seeds",), [1, -2], "seeds.1"),
    ("seed-too-large", ("seeds",), [2**32], "seeds.0"),
    ("zero-epochs", ("model", "epochs"), 0, "model.epochs"),
    ("negative-learning-rate", ("model", "learning_rate"), -1e-5, "model.learning_rate"),
    ("nan-learning-rate", ("model", "learning_rate"), float("nan"), "model.learning_rate"),
    ("method-zero-learning-rate", ("methods", "BERT"), {"train": {"learning_rate": 0}},
     "methods.BERT.train.learning_rate"),
    ("negative-epsilon", ("methods", "PGD-AT"), {"adversarial_embedding": {"kind": "pgd", "epsilon": -0.003}},
     "methods.PGD-AT.adversarial_embedding.epsilon"),
    ("fractional-steps", ("methods", "PGD-AT"), {"adversarial_embedding": {"kind": "pgd", "steps": 2.5}},
     "methods.PGD-AT.adversarial_embedding.steps"),
    ("negative-carve", ("datasets", "IMDB", "carve", "validation"), -0.1, "datasets.IMDB.carve.validation"),
    ("fractional-carve-count", ("datasets", "IMDB", "carve", "validation"), 2.5,
     "datasets.IMDB.carve.validation"),
    ("toy-switch-after-last-epoch", ("toy", "switch_epoch"), 500, "toy.switch_epoch"),
    # unknown names and parts
    ("unknown-method-part", ("methods", "PGD"), {"mixup": {"kind": "synonym"}}, "methods.PGD.mixup"),
    ("unknown-embedding-kind", ("methods", "PGD-AT"), {"adversarial_embedding": {"kind": "fgsm"}},
     "methods.PGD-AT.adversarial_embedding.kind"),
    ("unknown-dataset-in-run", ("run", "datasets"), ["IMDB", "SST2"], "run.datasets[1]"),
    ("unknown-local-format", ("datasets", "IMDB", "source", "local", "format"), "xlsx",
     "datasets.IMDB.source.local.format"),
    ("unknown-encoding", ("datasets", "MR", "source", "local", "encoding"), "utf-99",
     "datasets.MR.source.local.encoding"),
    ("unknown-augmenter", ("methods", "SSMBA"), {"augment": {"augmenters": ["ssmba"]}},
     "methods.SSMBA.augment.augmenters[0]"),
    # typo'd keys
    ("top-level-typo", ("seed",), 1, "seed"),
    ("model-key-typo", ("model", "lerning_rate"), 1e-5, "model.lerning_rate"),
    ("dataset-key-typo", ("datasets", "IMDB", "sorce"), {"local": {}}, "datasets.IMDB.sorce"),
    ("embedding-key-typo", ("methods", "PGD-AT"), {"adversarial_embedding": {"kind": "pgd", "epsilom": 0.1}},
     "methods.PGD-AT.adversarial_embedding.epsilom"),
    # attacks
    ("unknown-attack-recipe", ("attacks",), {"recipes": ["hotflip"]}, "attacks.recipes.0"),
    ("zero-attack-shards", ("attacks",), {"recipes": ["textfooler"], "shards": 0}, "attacks.shards"),
    # lca
    ("lca-unknown-method", ("lca",), {"methods": ["PGD"]}, "lca.methods[0]"),
    ("lca-test-fraction-above-1", ("lca",), {"methods": ["BERT"], "data": {"test_fraction": 1.5}},
     "lca.data.test_fraction"),
]
BAD_IDS = [c[0] for c in BAD_VALUES]


def set_value(config: dict, path: tuple, value) -> dict:
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return config


def bad_config_workdir(root: Path, tiny_model, tiny_data, case: str) -> Path:
    """The tiny config (one seed, BERT, both training datasets, the tiny model), edited."""
    workdir = root / case
    workdir.mkdir(parents=True)
    config = tiny_config(tiny_model, tiny_data, workdir / "resources")
    config["seeds"] = [1]
    config["run"] = {"methods": ["BERT"], "datasets": ["IMDB", "MR"]}
    if case != "control":
        _, path, value, _ = BAD_VALUES[BAD_IDS.index(case)]
        set_value(config, path, value)
    write_config(workdir, config)
    return workdir


@pytest.fixture(scope="module")
def bad_config_runs(request, tmp_path_factory, tiny_model, tiny_data):
    """{case: (workdir, completed process)}: `snakemake --cores 1` on each selected case, a few at a time
    (each run is mostly Snakemake parsing the workflow), plus a dry run of the unedited config."""
    test = "test_bad_config_value_stops_before_any_job"
    selected = [item.callspec.params["case"] for item in request.session.items
                if item.path == request.path and getattr(item, "originalname", None) == test]
    root = tmp_path_factory.mktemp("bad_configs")

    def run(case: str):
        workdir = bad_config_workdir(root, tiny_model, tiny_data, case)
        args = ("-n", "--cores", "1") if case == "control" else ("--cores", "1")
        return workdir, run_snakemake(workdir, *args, check=False, cwd=workdir, timeout=300)

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(["control", *selected], pool.map(run, ["control", *selected]), strict=True))
    _, control = results["control"]
    assert control.returncode == 0 and "train" in {r for r, _ in planned_jobs(output_of(control))}, (
        "the unedited tiny config must be valid:\n" + output_of(control)[-3000:])
    return results


def test_bad_values_are_many_and_distinct():
    assert len(set(BAD_IDS)) == len(BAD_IDS) >= 20


@pytest.mark.parametrize("case", BAD_IDS, ids=BAD_IDS)
def test_bad_config_value_stops_before_any_job(bad_config_runs, case):
    workdir, proc = bad_config_runs[case]
    key = BAD_VALUES[BAD_IDS.index(case)][3]
    out = output_of(proc)
    assert proc.returncode != 0, out[-3000:]
    assert "Invalid configuration:" in out, out[-3000:]
    assert re.search(rf"^{re.escape(key)}: ", out, re.M), out[-3000:]
    assert "Building DAG" not in out and "Job stats" not in out
    assert planned_jobs(out) == []
    for folder in ("results", "logs", "resources"):
        assert not (workdir / folder).exists(), folder


# --------------------------------------------------------------------------- the attack stage, checked at start-up


def layout_only_attack_resources(root: Path) -> dict[str, str]:
    """TextFooler's resources as the start-up check sees them: the files are there (empty; dry runs only)."""
    from advtrain.attacks.resources import NLTK_PACKAGES, WORD_EMBEDDING_FILES

    embedding, encoder, nltk_data = root / "paragramcf", root / "sentence_encoder", root / "nltk_data"
    for file in (embedding / WORD_EMBEDDING_FILES[n] for n in ("matrix", "wordlist", "nn")):
        file.parent.mkdir(parents=True, exist_ok=True)
        file.touch()
    encoder.mkdir()
    (encoder / "config.json").write_text("{}")
    for location in NLTK_PACKAGES.values():
        (nltk_data / location).parent.mkdir(parents=True, exist_ok=True)
        (nltk_data / f"{location}.zip").touch()
    return {"word_embedding": str(embedding), "sentence_encoder": str(encoder), "nltk_data": str(nltk_data)}


def attack_workdir(root: Path, tiny_model, tiny_data, **attacks) -> Path:
    workdir = root / "work"
    workdir.mkdir()
    config = tiny_config(tiny_model, tiny_data, workdir / "resources")
    config["seeds"] = [1]
    config["run"] = {"methods": ["BERT"], "datasets": ["MR"]}
    config["attacks"] = {"recipes": ["textfooler"], "resources": layout_only_attack_resources(root / "res"), **attacks}
    config["attacks"]["resources"].update(attacks.get("resources", {}))
    write_config(workdir, config)
    return workdir


def test_an_empty_nltk_data_folder_stops_the_run_before_any_job(tmp_path, tiny_model, tiny_data):
    """Not in the first attack shard once every model has trained."""
    empty = tmp_path / "nltk_data"
    empty.mkdir()
    workdir = attack_workdir(tmp_path, tiny_model, tiny_data, resources={"nltk_data": str(empty)})
    proc = run_snakemake(workdir, "--cores", "1", check=False, cwd=workdir, timeout=300)
    out = output_of(proc)
    assert proc.returncode != 0 and planned_jobs(out) == [], out[-3000:]
    assert (f"attacks.resources.nltk_data: {empty} is not an NLTK data folder (stopwords, averaged_perceptron_tagger_"
            "eng, universal_tagset): NLTK package(s) stopwords, averaged_perceptron_tagger_eng, universal_tagset not "
            "found in it") in out, out[-3000:]
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()


def test_no_shard_beyond_the_requested_examples_is_scheduled(tmp_path, tiny_model, tiny_data):
    workdir = attack_workdir(tmp_path, tiny_model, tiny_data, num_examples=3, shards=8)
    proc = run_snakemake(workdir, "-n", "--cores", "1", "results/attacks/MR/BERT/seed1/textfooler.json", cwd=workdir)
    shards = sorted(w["scatteritem"] for rule, w in planned_jobs(output_of(proc)) if rule == "attack_shard")
    assert shards == ["1-of-3", "2-of-3", "3-of-3"]
