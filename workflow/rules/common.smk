import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The package holding the logic; jobs (local, conda or cluster) inherit PYTHONPATH from here.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

from advtrain import config as cfg  # noqa: E402
from advtrain import paper  # noqa: E402
from advtrain import resources as res  # noqa: E402
from advtrain.attacks import required_resources  # noqa: E402
from advtrain.attacks import resources as attack_res  # noqa: E402

SCHEMA = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"

# ---------------------------------------------------------------------------- validation
# Before any job: a bad value stops the run with the key that holds it.
try:
    validate(config, schema=str(SCHEMA))
except WorkflowError:
    explanation = cfg.explain_validation_errors(config, SCHEMA)
    raise WorkflowError(f"Invalid configuration:\n{explanation}") from None
try:
    cfg.check_references(config)
except cfg.ConfigError as e:
    raise WorkflowError(f"Invalid configuration:\n{e}") from None

CACHE = config["cache_dir"]
TRAIN_DATASETS = cfg.training_datasets(config)
OOD_DATASETS = cfg.ood_datasets(config)
METHODS = cfg.selected_methods(config)
SEEDS = config["seeds"]
MODEL_DIR, MODEL_IS_LOCAL = res.model_location(config)
if MODEL_IS_LOCAL:
    try:
        res.require_local(MODEL_DIR, "model.path")
    except res.ResourceError as e:
        raise WorkflowError(str(e)) from None

# ---------------------------------------------------------------------------- attacks
ATTACKS = config.get("attacks") or {}
ATTACK_RECIPES = list(ATTACKS.get("recipes") or [])
ATTACK_SHARDS = int(ATTACKS.get("shards", 4))
ATTACK_NAMES = {
    "textfooler": "TextFooler",
    "bae": "BAE",
    "a2t": "A2T",
    "a2t_mlm": "A2T_MLM",
    "pso": "PSO",
}


def attack_resource_paths():
    """{kind: (path, is_local)}: a configured local path, or where its fetch rule writes it.

    The masked LM is the pretrained model itself when that is bert-base-uncased (so fetch_model is the only rule
    writing that folder); otherwise it has its own fetch output under {cache_dir}/attacks/.
    """
    paths = {}
    for kind in attack_res.RESOURCE_KEYS:
        path, local = attack_res.resource_location(config, kind)
        if not local and kind == "masked_lm":
            if config["model"]["name"] == attack_res.SOURCES["masked_lm"]:
                path = MODEL_DIR
            else:
                path = f"{CACHE}/attacks/masked_lm/{res.slug(attack_res.SOURCES['masked_lm'])}"
        paths[kind] = (path, local)
    return paths


ATTACK_RESOURCES = attack_resource_paths()
if ATTACK_RECIPES:
    for _kind, (_path, _local) in ATTACK_RESOURCES.items():
        if _local:
            try:
                attack_res.require({_kind: _path}, _kind)
            except res.ResourceError as e:
                raise WorkflowError(str(e)) from None


def attack_resource_kinds():
    """Every resource kind the configured recipes read (USE only when configured)."""
    configured = {k: p for k, (p, local) in ATTACK_RESOURCES.items() if local}
    kinds = []
    for recipe in ATTACK_RECIPES:
        for kind in required_resources(recipe, configured):
            if kind not in kinds:
                kinds.append(kind)
    if configured.get("use") and "use" not in kinds:
        kinds.append("use")
    return kinds


def attack_fetch_needed():
    return any(
        not ATTACK_RESOURCES[kind][1]
        and not (kind == "masked_lm" and ATTACK_RESOURCES[kind][0] == MODEL_DIR)
        for kind in attack_resource_kinds()
    )


# Nothing to download: make sure no library waits on the hub.
if config["offline"] or not (res.needs_network(config) or attack_fetch_needed()):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[var] = "1"


def alternatives(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    dataset=alternatives(config["datasets"]),
    method=alternatives(config["methods"]),
    seed=r"\d+",
    attack=alternatives(ATTACK_RECIPES),


# ---------------------------------------------------------------------------- input functions


def model_input(wildcards):
    """The pretrained model: the configured local folder, or the fetch rule's cache folder."""
    return MODEL_DIR


def dataset_input(wildcards):
    """What prepare_dataset reads: the hub copy's folder, or the configured local files."""
    location, _ = res.dataset_location(config, wildcards.dataset)
    if location is not None:
        return {"source": location}
    files = cfg.effective_source(config["datasets"][wildcards.dataset])[1]["files"]
    return {f"file_{key}": path for key, path in files.items()}


def dataset_params(wildcards):
    return config["datasets"][wildcards.dataset]


def hf_dataset_params(wildcards):
    return config["datasets"][wildcards.dataset]["source"]["hf"]


def method_spec(wildcards):
    """A method's resolved settings and parts: train jobs rerun when they change."""
    return cfg.method_spec(config, wildcards.method)


def ood_test_splits(wildcards):
    return {name: f"results/data/{name}/test.parquet" for name in OOD_DATASETS}


def eval_files(datasets=TRAIN_DATASETS, methods=METHODS, seeds=SEEDS):
    return expand(
        "results/eval/{dataset}/{method}/seed{seed}.json",
        dataset=datasets,
        method=methods,
        seed=seeds,
    )


def attack_resource_inputs(wildcards):
    """The resources recipe {attack} reads: local paths, or the fetch rules' outputs."""
    configured = {k: p for k, (p, local) in ATTACK_RESOURCES.items() if local}
    kinds = required_resources(wildcards.attack, configured)
    if configured.get("use"):
        kinds = [*kinds, "use"]
    return {f"res_{kind}": ATTACK_RESOURCES[kind][0] for kind in dict.fromkeys(kinds)}


def attack_summaries(datasets=TRAIN_DATASETS, methods=METHODS, seeds=SEEDS):
    return expand(
        "results/attacks/{dataset}/{method}/seed{seed}/{attack}.json",
        dataset=datasets,
        method=methods,
        seed=seeds,
        attack=ATTACK_RECIPES,
    )


def final_outputs():
    attack_outputs = []
    if ATTACK_RECIPES:
        attack_outputs = [
            *attack_summaries(),
            *expand("results/tables/table2_asr.{ext}", ext=["csv", "md", "tex"]),
        ]
    return [
        *eval_files(),
        *attack_outputs,
        *expand("results/tables/table4_accuracy.{ext}", ext=["csv", "md", "tex"]),
        *expand("results/tables/table1_toy.{ext}", ext=["csv", "md", "tex"]),
        *expand("results/figures/figure1_toy.{ext}", ext=["png", "pdf"]),
    ]
