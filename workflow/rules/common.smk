# The configuration, read once: Snakemake's validation against the schema (which fills its defaults), then one
# pass of every other check (advtrain.config_check), then the constants the rule files read. Input functions are in
# inputs.smk, rule all's targets and the report's parts in outputs.smk.
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
from advtrain import config_check  # noqa: E402
from advtrain import config_layers  # noqa: E402
from advtrain import downloads  # noqa: E402
from advtrain import fidelity  # noqa: E402
from advtrain import paper  # noqa: E402
from advtrain import resource_needs  # noqa: E402
from advtrain import sources as res  # noqa: E402
from advtrain import summary as report_parts  # noqa: E402
from advtrain.attacks import protocols  # noqa: E402
from advtrain.attacks import shard_count  # noqa: E402
from advtrain.attacks import resources as attack_res  # noqa: E402
from advtrain.attacks.recipes import ATTACK_NAMES  # noqa: E402
from advtrain.lca import settings as lca_settings  # noqa: E402

SCHEMA = Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"

# ---------------------------------------------------------------------------- validation
# `--config` values typed as a config file would type them (Snakemake keeps nested ones strings: "null", "2").
update_config(config, config_layers.typed_cli_config(workflow.config_settings.config))
# Before any job: a bad value stops the run with the key that holds it.
try:
    validate(config, schema=str(SCHEMA))
except WorkflowError:
    explanation = cfg.explain_validation_errors(config, SCHEMA)
    # Without the base config (config_files.smk), say so instead of listing each key it would have set.
    if BASE_CONFIG and not Path(BASE_CONFIG).exists():
        explanation = config_layers.explain_without_base(
            explanation, BASE_CONFIG, CONFIG_FILES, Path(workflow.basedir, BASE_CONFIG)
        )
    raise WorkflowError(f"Invalid configuration:\n{explanation}") from None
# What the schema cannot express, and every configured local file: all the problems at once.
try:
    config_check.check(config)
except cfg.ConfigError as e:
    raise WorkflowError(f"Invalid configuration:\n{e}") from None

# ---------------------------------------------------------------------------- the study
CACHE = config["cache_dir"]
DOWNLOADS = downloads.settings(config)
# TextAttack's cache, with its post-install marker (advtrain.attacks.resources.prepare_textattack): importing it in
# a job then downloads nothing into the home folder.
os.environ.update(TA_CACHE_DIR=str(Path(CACHE, "textattack").resolve()))
TRAIN_DATASETS = cfg.training_datasets(config)
OOD_DATASETS = cfg.ood_datasets(config)
METHODS = cfg.selected_methods(config)
# RanMASK / SAFER (a `smoothing` part): certified at each radius (rule certify, table certified_accuracy).
SMOOTHING_METHODS = [m for m in METHODS if cfg.method_parts(config, m).get("smoothing")]
SEEDS = config["seeds"]
# The `gpu` resource counts GPU slots (profiles/default: GPUs x slots per GPU). Attack shards take one slot and may
# share a GPU; every other GPU job takes a whole GPU. advtrain.device.claim_job_gpu picks the GPU.
GPU_SLOTS = int(config["devices"]["attack_shards_per_gpu"])
MODEL_DIR, MODEL_IS_LOCAL = res.model_location(config)
# Bootstrap intervals and paired tests of the report (config `statistics`).
STATISTICS = config["statistics"]
# The hypotheses the claims table judges (config `claims`): relative to the working directory like every path of
# the config; the default, the paper's claims, ships with the workflow and is read from there when the working
# directory (-d) has none.
CLAIMS_FILE = config["claims"]
if CLAIMS_FILE == "config/claims.yaml" and not Path(CLAIMS_FILE).exists():
    CLAIMS_FILE = str(Path(workflow.basedir, CLAIMS_FILE))
try:
    res.require_local(
        CLAIMS_FILE, "claims", "Set `claims` to a claims file (see config/claims.yaml)."
    )
except res.ResourceError as e:
    raise WorkflowError(f"Invalid configuration:\n{e}") from None
# Ledger rows (docs/fidelity.md) this configuration uses with values other than the reference code's: the params of
# rule fidelity, so its table is rewritten when they change.
FIDELITY_USES = [use._asdict() for use in fidelity.non_reference(config)]

# ---------------------------------------------------------------------------- attacks
ATTACKS = config["attacks"]
ATTACK_RECIPES = list(ATTACKS["recipes"])
ATTACK_SHARDS = shard_count(ATTACKS)  # attacks.shards, at most attacks.num_examples
# {kind: (path, is_local)}: a configured local path, the pretrained model's folder or where its fetch rule writes it.
# Also read by AT-IP (a method's `adversarial_input` part): same keys, same fetch rules.
ATTACK_RESOURCES = attack_res.resource_paths(config)

# ---------------------------------------------------------------------------- augmentation (AT-DA)
AUGMENTATION = config["augmentation"]
AUGMENTERS = augment.augmenters(config)
AUGMENT_SHARDS = int(AUGMENTATION["shards"])
# {augmenter: {role: (folder, is_local)}}: a local path, the pretrained model's folder, or a fetch output.
AUGMENT_MODELS = augment.model_locations(config)
# {cache folder name: (hub name, config key)} of the models fetch_augment_model downloads.
AUGMENT_FETCH = augment.fetch_targets(config, METHODS)

# ---------------------------------------------------------------------------- LCA (POS tagging)
LCA = config["lca"]
LCA_DATA = lca_settings.data_settings(config)
LCA_METHODS = lca_settings.methods(config)
LCA_SEEDS = lca_settings.seeds(config)

# Nothing to download: make sure no library waits on the hub.
if resource_needs.offline(config, ATTACK_RESOURCES):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[var] = "1"


def alternatives(names):
    return "|".join(re.escape(n) for n in names) or "(?!)"


wildcard_constraints:
    dataset=alternatives(config["datasets"]),
    method=alternatives(config["methods"]),
    seed=r"\d+",
    attack=alternatives(ATTACK_RECIPES),
