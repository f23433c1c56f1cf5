import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

# The package holding the logic; jobs (local, conda or cluster) inherit PYTHONPATH from here.
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

from advtrain import augment  # noqa: E402
from advtrain import config as cfg  # noqa: E402
from advtrain import config_files  # noqa: E402
from advtrain import downloads  # noqa: E402
from advtrain import fidelity  # noqa: E402
from advtrain import models  # noqa: E402
from advtrain import paper  # noqa: E402
from advtrain import resources as res  # noqa: E402
from advtrain import summary as report_parts  # noqa: E402
from advtrain.attacks import required_resources, shard_count  # noqa: E402
from advtrain.attacks import resources as attack_res  # noqa: E402
from advtrain.lca import settings as lca_settings  # noqa: E402
from advtrain.training import input_schedule  # noqa: E402

SCHEMA = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"

# ---------------------------------------------------------------------------- validation
# `--config` values typed as a config file would type them (Snakemake keeps nested ones strings: "null", "2").
update_config(config, config_files.typed_cli_config(workflow.config_settings.config))
# Before any job: a bad value stops the run with the key that holds it.
try:
    validate(config, schema=str(SCHEMA))
except WorkflowError:
    explanation = cfg.explain_validation_errors(config, SCHEMA)
    # Without the base config (config_files.smk), say so instead of listing each key it would have set.
    if BASE_CONFIG and not Path(BASE_CONFIG).exists():
        explanation = config_files.explain_without_base(
            explanation, BASE_CONFIG, CONFIG_FILES, Path(workflow.basedir, BASE_CONFIG)
        )
    raise WorkflowError(f"Invalid configuration:\n{explanation}") from None
try:
    cfg.check_references(config)
except cfg.ConfigError as e:
    raise WorkflowError(f"Invalid configuration:\n{e}") from None

CACHE = config["cache_dir"]
DOWNLOADS = downloads.settings(config)
# TextAttack's cache, with its post-install marker (advtrain.attacks.resources.prepare_textattack): importing it in
# a job then downloads nothing into the home folder.
os.environ.update(TA_CACHE_DIR=str(Path(CACHE, "textattack").resolve()))
TRAIN_DATASETS = cfg.training_datasets(config)
OOD_DATASETS = cfg.ood_datasets(config)
METHODS = cfg.selected_methods(config)
SEEDS = config["seeds"]
# The `gpu` resource counts GPU slots (profiles/default: GPUs x slots per GPU). Attack shards take one slot and may
# share a GPU; every other GPU job takes a whole GPU. advtrain.device.claim_job_gpu picks the GPU.
GPU_SLOTS = int((config.get("devices") or {}).get("attack_shards_per_gpu", 1))
MODEL_DIR, MODEL_IS_LOCAL = res.model_location(config)
try:
    if MODEL_IS_LOCAL:
        res.require_model_folder(MODEL_DIR, "model.path")
        # A decoder-only model (GPT-2, Llama) without anything to pad with, or under a method that perturbs an
        # encoder's embedding layer, stops here rather than in its first training job.
        models.check_model_folder(
            MODEL_DIR, "model.path", {m: cfg.method_parts(config, m) for m in METHODS}
        )
    res.require_dataset_files(config, [*TRAIN_DATASETS, *OOD_DATASETS])
except res.ResourceError as e:
    raise WorkflowError(str(e)) from None

# ---------------------------------------------------------------------------- attacks
ATTACKS = config.get("attacks") or {}
ATTACK_RECIPES = list(ATTACKS.get("recipes") or [])
ATTACK_SHARDS = shard_count(ATTACKS)  # attacks.shards, at most attacks.num_examples
from advtrain.attacks.recipes import ATTACK_NAMES  # noqa: E402

# {kind: (path, is_local)}: a configured local path, the pretrained model's folder or where its fetch rule writes it.
ATTACK_RESOURCES = attack_res.resource_paths(config)
VALIDITY_RESOURCES = ("nltk_data", "sentence_encoder")
# Bootstrap intervals and paired tests of the report (config `statistics`).
STATISTICS = config.get("statistics") or {}
# Every configured local resource, with the files its loader reads: an empty nltk_data folder stops the run here,
# not in the first attack shard once every model has trained.
if ATTACK_RECIPES:
    for _kind, (_path, _local) in ATTACK_RESOURCES.items():
        if _local:
            try:
                attack_res.check_local(_kind, _path)
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
    # attack_validity measures every adversarial example with the sentence encoder and reads its texts with NLTK.
    for kind in VALIDITY_RESOURCES if ATTACK_RECIPES else ():
        if kind not in kinds:
            kinds.append(kind)
    return kinds


def attack_fetch_needed():
    return any(
        not ATTACK_RESOURCES[kind][1]
        and not (kind == "masked_lm" and ATTACK_RESOURCES[kind][0] == MODEL_DIR)
        for kind in attack_resource_kinds()
    )


# ---------------------------------------------------------------------------- input-space AT (AT-IP)
# Methods with an `adversarial_input` part attack training examples with a recipe that reads the attack resources
# (`attacks.resources`, same keys, same fetch rules, same start-up errors as the attack stage).
AT_IP_METHODS = [
    m for m in METHODS if cfg.method_parts(config, m).get("adversarial_input")
]


def adversarial_input_kinds(method):
    """The resource kinds the recipe of `method`'s adversarial_input part reads."""
    part = cfg.method_parts(config, method).get("adversarial_input")
    if not part:
        return []
    configured = {k: p for k, (p, local) in ATTACK_RESOURCES.items() if local}
    return list(dict.fromkeys(required_resources(part["recipe"], configured)))


if AT_IP_METHODS:
    for _m in AT_IP_METHODS:
        try:
            input_schedule.check_schedule(
                cfg.method_parts(config, _m)["adversarial_input"],
                cfg.train_settings(config, _m)["epochs"],
                where=f"methods.{_m}.adversarial_input",
            )
            for _kind in adversarial_input_kinds(_m):
                if ATTACK_RESOURCES[_kind][1]:
                    attack_res.check_local(_kind, ATTACK_RESOURCES[_kind][0])
        except (cfg.ConfigError, res.ResourceError) as e:
            raise WorkflowError(f"Invalid configuration:\n{e}") from None


def adversarial_input_fetch_needed():
    return any(
        not ATTACK_RESOURCES[kind][1]
        and not (kind == "masked_lm" and ATTACK_RESOURCES[kind][0] == MODEL_DIR)
        for m in AT_IP_METHODS
        for kind in adversarial_input_kinds(m)
    )


# ---------------------------------------------------------------------------- augmentation (AT-DA)
try:
    augment.check_config(config)
except cfg.ConfigError as e:
    raise WorkflowError(f"Invalid configuration:\n{e}") from None
AUGMENTATION = config.get("augmentation") or {}
AUGMENTERS = augment.augmenters(config)
AUGMENT_SHARDS = int(AUGMENTATION.get("shards", 4))
# {augmenter: {role: (folder, is_local)}}: a local path, the pretrained model's folder, or a fetch output.
AUGMENT_MODELS = {
    name: {
        role: augment.model_location(config, name, role)
        for role in augment.MODEL_ROLES[spec["kind"]]
    }
    for name, spec in AUGMENTERS.items()
}
# Augmenters the selected methods use: only their local models must exist, only theirs are fetched.
USED_AUGMENTERS = [
    name
    for name in AUGMENTERS
    if any(
        name in (cfg.method_parts(config, m).get("augment") or {}).get("augmenters", [])
        for m in METHODS
    )
]
# {cache folder name: (hub name, config key)} of the models fetch_augment_model downloads.
AUGMENT_FETCH = {}
for _name in USED_AUGMENTERS:
    for _role, (_path, _local) in AUGMENT_MODELS[_name].items():
        if _local:
            try:
                res.require_local(_path, f"{augment.model_key(_name, _role)}.path")
            except res.ResourceError as e:
                raise WorkflowError(str(e)) from None
        elif _path != MODEL_DIR:
            AUGMENT_FETCH[Path(_path).name] = (
                AUGMENTERS[_name][_role]["name"],
                augment.model_key(_name, _role),
            )


# ---------------------------------------------------------------------------- LCA (POS tagging)
try:
    lca_settings.check(config)
    for _key, _path in lca_settings.local_paths(config).items():
        res.require_local(_path, _key, f"Set `{_key}` to an existing path.")
except (cfg.ConfigError, res.ResourceError) as e:
    raise WorkflowError(f"Invalid configuration:\n{e}") from None
LCA = config.get("lca") or {}
LCA_DATA = lca_settings.data_settings(config)
LCA_METHODS = lca_settings.methods(config)
LCA_SEEDS = lca_settings.seeds(config)
if (
    LCA_METHODS
    and LCA_DATA.get("source", "treebank") != "local"
    and not LCA_DATA.get("nltk_data")
    and config["offline"]
):
    raise WorkflowError(
        "lca.data.nltk_data: `offline` is set, so NLTK's corpus cannot be fetched; point "
        f"lca.data.nltk_data to an NLTK data folder with corpora/{LCA_DATA.get('source', 'treebank')}."
    )


def lca_corpus_input(wildcards):
    """What lca_data reads: local POS files, a configured NLTK folder, or the fetch rule's folder."""
    if LCA_DATA.get("source") == "local":
        return {f"file_{k}": v for k, v in (LCA_DATA.get("files") or {}).items()}
    return {"nltk_data": LCA_DATA.get("nltk_data") or f"{CACHE}/lca/nltk_data"}


# `snakemake --omit-from RULE|FILE` removes the jobs of RULE (or of FILE) and all that follows from them. The report
# follows it: a table or figure made from an omitted rule leaves rule all's and the summary's inputs, so the summary
# is still written and says what is absent and why, and no job runs only to feed an omitted one (lca_data for an
# omitted lca_train). The same for a part not configured (no attacks, no LCA).
def omit_from():
    """This invocation's --omit-from entries (rule names or files). Snakemake sets them after reading the Snakefile
    and does not pass them to the jobs it spawns: only input and params functions of rule all and of local rules
    (evaluated while the main process builds the DAG) can use them."""
    settings = workflow.dag_settings
    return set(settings.omit_from) if settings is not None else set()


def study_stems():
    """(tables, figures) of this configuration's parts, in the paper's order."""
    tables = ["table1_toy"]
    if ATTACK_RECIPES:
        tables.append("table2_asr")
    tables += ["table3_runtime", "table4_accuracy"]
    if LCA_METHODS:
        tables += report_parts.LCA_TABLES
    tables += ["paired_vs_bert", "paired_examples_vs_bert"]
    if ATTACK_RECIPES:
        tables += [t for t in report_parts.ATTACK_TABLES if t != "table2_asr"]
    figures = [
        "figure1_toy",
        *(["tradeoff"] if ATTACK_RECIPES else []),
        *expand(
            "budget_{dataset}_{attack}", dataset=TRAIN_DATASETS, attack=ATTACK_RECIPES
        ),
    ]
    return tables, figures


def absent_stems():
    """The study's tables and figures this run does not make, each with why (rule summary's `absent`)."""
    absent = {}
    if not ATTACK_RECIPES:
        absent.update(
            dict.fromkeys(
                [*report_parts.ATTACK_TABLES, *report_parts.ATTACK_FIGURES],
                "not configured: `attacks.recipes` is empty",
            )
        )
    if not LCA_METHODS:
        absent.update(
            dict.fromkeys(
                report_parts.LCA_TABLES, "not configured: `lca.methods` is empty"
            )
        )
    tables, figures = study_stems()
    absent.update(
        report_parts.omitted(
            [*tables, *figures], omit_from(), attacks=bool(ATTACK_RECIPES)
        )
    )
    return absent


def table_stems():
    """The tables this run produces (each as csv, md and tex), in the paper's order."""
    absent = absent_stems()
    return [t for t in study_stems()[0] if t not in absent]


# Ledger rows (docs/fidelity.md) this configuration uses with values other than the reference code's: the params of
# rule fidelity, so its table is rewritten when they change.
FIDELITY_USES = [use._asdict() for use in fidelity.non_reference(config)]


def figure_stems():
    """The figures this run produces (each as png and pdf)."""
    absent = absent_stems()
    return [f for f in study_stems()[1] if f not in absent]


# Nothing to download: make sure no library waits on the hub.
if config["offline"] or not (
    res.needs_network(config)
    or attack_fetch_needed()
    or AUGMENT_FETCH
    or adversarial_input_fetch_needed()
):
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


def adversarial_input_resources(wildcards):
    """The attack resources an AT-IP method's recipe reads (res_<kind>: local path or fetch output); none otherwise."""
    return {
        f"res_{kind}": ATTACK_RESOURCES[kind][0]
        for kind in adversarial_input_kinds(wildcards.method)
    }


def augmented_inputs(wildcards):
    """The augmented rows a method's `augment` part adds to its training split (none for other methods)."""
    part = cfg.method_parts(config, wildcards.method).get("augment") or {}
    return {
        f"augment_{name}": f"results/augment/{wildcards.dataset}/{name}.parquet"
        for name in part.get("augmenters", [])
    }


def augmenter_model_inputs(wildcards):
    """The models augmenter {augmenter} reads: local folders, or the fetch rules' outputs."""
    return {
        f"model_{role}": path
        for role, (path, _) in AUGMENT_MODELS[wildcards.augmenter].items()
    }


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


def prediction_files(datasets=TRAIN_DATASETS, methods=METHODS, seeds=SEEDS):
    return expand(
        "results/eval/{dataset}/{method}/seed{seed}.predictions.npz",
        dataset=datasets,
        method=methods,
        seed=seeds,
    )


def attack_summaries(datasets=TRAIN_DATASETS, methods=METHODS, seeds=SEEDS):
    return expand(
        "results/attacks/{dataset}/{method}/seed{seed}/{attack}.json",
        dataset=datasets,
        method=methods,
        seed=seeds,
        attack=ATTACK_RECIPES,
    )


def run_attack_summaries(wildcards):
    """The gathered summaries of attack {attack} on dataset {dataset}: every method and seed."""
    return expand(
        "results/attacks/{dataset}/{method}/seed{seed}/{attack}.json",
        dataset=wildcards.dataset,
        method=METHODS,
        seed=SEEDS,
        attack=wildcards.attack,
    )


def validity_files():
    return expand(
        "results/attacks/{dataset}/{method}/seed{seed}/{attack}/validity.csv",
        dataset=TRAIN_DATASETS,
        method=METHODS,
        seed=SEEDS,
        attack=ATTACK_RECIPES,
    )


def validity_runs(wildcards):
    """{run's validity.csv: its record shards} for every method and seed of attack {attack} on {dataset}."""
    runs = {}
    for method in METHODS:
        for seed in SEEDS:
            run = f"results/attacks/{wildcards.dataset}/{method}/seed{seed}/{wildcards.attack}"
            runs[f"{run}/validity.csv"] = gather.attack(
                f"{run}/shard{{scatteritem}}.jsonl"
            )
    return runs


def validity_records(wildcards):
    return [shard for shards in validity_runs(wildcards).values() for shard in shards]


def final_outputs(wildcards=None):
    """Rule all's inputs: an input function, so that it sees --omit-from (see omit_from())."""
    return [
        *eval_files(),
        *(
            attack_summaries()
            if ATTACK_RECIPES
            and not report_parts.omits_any(report_parts.ATTACKS, omit_from())
            else []
        ),
        *expand(
            "results/tables/{stem}.{ext}", stem=table_stems(), ext=["csv", "md", "tex"]
        ),
        *(
            ["results/tables/table5_lca_all_tags.csv"]
            if "table5_lca" in table_stems()
            else []
        ),
        *expand(
            "results/figures/{stem}.{ext}", stem=figure_stems(), ext=["png", "pdf"]
        ),
        *expand("results/tables/fidelity.{ext}", ext=["csv", "md", "tex"]),
        "results/summary.md",
    ]
