"""The fidelity ledger's machine-readable half: for each row of ``docs/fidelity.md``, the config keys that switch it
and the reference code's value, so that a run can list the rows it used with values other than the reference's.

``docs/fidelity.md`` holds the prose (what the paper says, what the reference code does, why); this module holds,
once, what a program needs: the row's id, its config keys as the ledger writes them (``<AT-IP>`` stands for every
method with an ``adversarial_input`` part, ``<AT-DA>`` for ``augment``, ``<AT-EP>`` for ``adversarial_embedding``,
``<bt>`` for a back-translation augmenter) and a check that returns, for one config, each value the run uses that is
not the reference code's. A test checks that the document has a row for every id here, naming its keys.

"Reference" is the code the paper's authors most likely ran: TextAttack-A2T's scripts and TextAttack (≤ 0.3.8, the
releases of their time) for AT-DA, AT-IP and the attacks, NeuroX for LCA, mt-dnn for ALUM. A row without a check is
prose only: nothing in the config switches it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from advtrain import config as cfg

LEDGER = "docs/fidelity.md"


class Use(NamedTuple):
    """A value this run uses that is not the reference code's: where (a concrete config key), what, and the reference."""

    row: str
    key: str
    value: Any
    reference: Any


@dataclass(frozen=True)
class Row:
    id: str
    component: str
    keys: tuple[str, ...] = ()
    check: Callable[[dict], list[tuple[str, Any, Any]]] | None = None  # config -> [(key, value, reference)]

    def uses(self, config: dict) -> list[Use]:
        if self.check is None:
            return []
        return [Use(self.id, key, value, reference) for key, value, reference in self.check(config)]


# ------------------------------------------------------------------------------------------ what a run uses
def _methods_with(config: dict, part: str) -> list[str]:
    return [m for m in cfg.selected_methods(config) if cfg.method_parts(config, m).get(part)]


def _differ(key: str, value, reference) -> list[tuple[str, Any, Any]]:
    same = value == reference if not isinstance(reference, float) else (
        isinstance(value, int | float) and abs(value - reference) <= 1e-12 * max(1.0, abs(reference)))
    return [] if same else [(key, value, reference)]


def _attack_recipes(config: dict) -> dict[str, str]:
    """{recipe: where it is configured} for the attack stage's recipes and the AT-IP methods' recipes."""
    recipes = {r: "attacks.recipes" for r in ((config.get("attacks") or {}).get("recipes") or [])}
    for method in _methods_with(config, "adversarial_input"):
        recipe = cfg.method_parts(config, method)["adversarial_input"]["recipe"]
        recipes.setdefault(recipe, f"methods.{method}.adversarial_input.recipe")
    return recipes


def _augmenters_of_kind(config: dict, kind: str) -> list[str]:
    from advtrain.augment import augmenters

    used = {name for m in _methods_with(config, "augment")
            for name in cfg.method_parts(config, m)["augment"]["augmenters"]}
    return [name for name, spec in augmenters(config).items() if spec.get("kind") == kind and name in used]


#: The adversarial_embedding keys each AT-EP row covers (None: every key of the kind).
AT_EP_START = ("init", "init_std")
LDS_CLEAN_SIDE = ("ascent_target", "ascent_dropout", "detach_clean")
AT_EP_STEP = ("steps", "epsilon", "norm", "projection", "bound", "step_size", "grad_norm")


def _embedding_settings(kinds: tuple[str, ...], keys: tuple[str, ...] | None):
    """Each method of a kind in ``kinds`` against the ledger's values (``DEFAULTS[kind]``) on ``keys``."""
    def check(config):
        from advtrain.training.embedding_settings import DEFAULTS

        out = []
        for method in _methods_with(config, "adversarial_embedding"):
            part = cfg.method_parts(config, method)["adversarial_embedding"]
            kind = part.get("kind")
            if kind not in kinds:
                continue
            reference = DEFAULTS[kind]
            for key in keys or tuple(reference):
                value = reference[key] if part.get(key) is None else part[key]
                out += _differ(f"methods.{method}.adversarial_embedding.{key}", value, reference[key])
        return out
    return check


#: TextAttack-A2T's README command (and TextAttack's TrainingArgs for what it leaves out): the AT-IP training run.
AT_IP_TRAIN = {"learning_rate": 5e-5, "warmup_steps": 100, "batch_size": 8, "max_length": 512}
#: TextAttack-A2T's train.py: TrainingArgs(num_clean_epochs=1, num_train_adv_examples=0.2, query_budget_train=200),
#: alpha (the adversarial examples' loss weight) TextAttack's default 1.
AT_IP_SCHEDULE = {"clean_epochs": 1, "fraction": 0.2, "query_budget": 200, "weight": 1.0}
#: TextAttack-A2T's augmenters.py: generate(do_sample=True, temperature=0.8) on FSMT wmt19 (config: num_beams 5;
#: transformers' default top_k 50).
BT_SAMPLING = {"do_sample": True, "num_beams": 5, "top_k": 50, "temperature": 0.8}
BT_MODELS = {"forward": "facebook/wmt19-en-de", "backward": "facebook/wmt19-de-en"}


def _at_ip_train(config):
    out = []
    for method in _methods_with(config, "adversarial_input"):
        settings = cfg.train_settings(config, method)
        if not settings.get("warmup_steps"):  # the warm-up is then a share of the steps
            settings["warmup_steps"] = f"warmup_ratio {settings.get('warmup_ratio', 0)}"
        for key, reference in AT_IP_TRAIN.items():
            out += _differ(f"methods.{method}.train.{key}", settings.get(key), reference)
    return out


def _at_ip_schedule(config):
    from advtrain.training.input_schedule import resolve

    out = []
    for method in _methods_with(config, "adversarial_input"):
        settings = resolve(cfg.method_parts(config, method)["adversarial_input"])
        for key, reference in AT_IP_SCHEDULE.items():
            out += _differ(f"methods.{method}.adversarial_input.{key}", settings[key], reference)
    return out


#: TextAttack's Trainer (0.3.8): transformers' AdamW at its default eps, loss.backward() then optimizer.step() with no
#: clipping (max_grad_norm 0). The reference of the AT-IP methods and of the AT-DA ones (A2T's train.py --augmented-data).
TEXTATTACK_CLIPPING = {"max_grad_norm": 0}
TEXTATTACK_OPTIMIZER = {"optimizer": "adamw_hf", "adam_epsilon": 1e-6}
#: mt-dnn's train.py (commit 682b9fb) as ALUM's authors ran it: Adamax (module/bert_optim.py; its eps default 1e-6, the
#: flag --adam_eps is RAdam's), --learning_rate 5e-5, --batch_size 8, --max_seq_len 512, --global_grad_clipping 1.0,
#: --warmup 0.1 with --warmup_schedule warmup_linear, --epochs 5; weight decay 0.01 from mt_dnn/model.py's groups.
MTDNN_TRAIN = {"optimizer": "adamax_mtdnn", "learning_rate": 5e-5, "batch_size": 8, "max_length": 512,
               "weight_decay": 0.01, "adam_epsilon": 1e-6, "max_grad_norm": 1.0, "lr_schedule": "mtdnn",
               "warmup_ratio": 0.1, "warmup_steps": 0, "epochs": 5}
#: Hugging Face's TrainingArguments defaults: what a method without these keys runs.
HF_OPTIMIZER = {"optimizer": "adamw_torch", "adam_epsilon": 1e-8, "max_grad_norm": 1.0, "lr_schedule": "linear",
                "warmup_steps": 0, "weight_decay": 0.0}


def _train_against(methods: Callable[[dict], list[str]], reference: dict):
    """Each of ``methods(config)`` against ``reference`` on its resolved train settings."""
    def check(config):
        out = []
        for method in methods(config):
            settings = {**HF_OPTIMIZER, **cfg.train_settings(config, method)}
            for key, value in reference.items():
                out += _differ(f"methods.{method}.train.{key}", settings.get(key), value)
        return out
    return check


def _textattack_methods(config: dict) -> list[str]:
    """AT-IP and AT-DA: the methods TextAttack's Trainer trains in the reference (A2T's train.py)."""
    return list(dict.fromkeys(_methods_with(config, "adversarial_input") + _methods_with(config, "augment")))


def _alum_methods(config: dict) -> list[str]:
    return [m for m in _methods_with(config, "adversarial_embedding")
            if cfg.method_parts(config, m)["adversarial_embedding"].get("kind") == "alum"]


#: TextDefender's training settings for its trainers (base.py:39-46, args.py:67-83, main.py:507-518 and 700): torch's
#: AdamW at 2e-5, eps 1e-8, weight decay 1e-6 (not on biases and LayerNorm), clipping at 1.0, batch 32, 128 tokens,
#: 10 epochs, cosine annealing over the steps without warm-up.
TEXTDEFENDER_TRAIN = {"optimizer": "adamw_torch", "learning_rate": 2e-5, "batch_size": 32, "max_length": 128,
                      "epochs": 10, "weight_decay": 1e-6, "adam_epsilon": 1e-8, "max_grad_norm": 1.0,
                      "lr_schedule": "cosine", "warmup_ratio": 0.0, "warmup_steps": 0}


def _textdefender_kind_methods(config: dict) -> list[str]:
    return [m for m in _methods_with(config, "adversarial_embedding")
            if cfg.method_parts(config, m)["adversarial_embedding"].get("kind") in ("tavat", "infobert")]


def _group(names: list[str]) -> str:
    return names[0] if len(names) == 1 else "{" + ", ".join(names) + "}"


def _fixed_for_at_ip(value: str, reference: str):
    """A departure no key switches, in effect whenever an AT-IP method runs."""
    def check(config):
        methods = _methods_with(config, "adversarial_input")
        return [(f"methods.{_group(methods)}.adversarial_input", value, reference)] if methods else []
    return check


def _at_da_fraction(config):
    from advtrain.augment import PART_DEFAULTS

    return [use for m in _methods_with(config, "augment")
            for use in _differ(f"methods.{m}.augment.fraction",
                               cfg.method_parts(config, m)["augment"].get("fraction", PART_DEFAULTS["fraction"]),
                               0.2)]


#: TextAttack-A2T's README: 5,000 of IMDB's 25,000 training reviews, sampled at random, are its validation split.
IMDB_TRAIN_REVIEWS = 25000
IMDB_VALIDATION = 5000


def _imdb_validation(config):
    """IMDB's carved validation split in rows (a fraction of the 25,000 counts by the rows it takes). A source with
    its own validation split (A2T's val.tsv, say) is not checked: its rows are whatever the file holds."""
    if "IMDB" not in cfg.training_datasets(config) or "IMDB" not in config["datasets"]:
        return []
    ds = config["datasets"]["IMDB"]
    kind, source = cfg.effective_source(ds)
    if "validation" in source["splits" if kind == "hf" else "files"]:
        return []
    value = (ds.get("carve") or {}).get("validation")
    rows = None if value is None else round(value * IMDB_TRAIN_REVIEWS) if value < 1 else int(value)
    if rows == IMDB_VALIDATION:
        return []
    return [("datasets.IMDB.carve.validation", value, IMDB_VALIDATION)]


def _empty_texts(config):
    """Datasets of the run whose rows without text are left out: the reference code kept every row it loaded."""
    used = set(cfg.training_datasets(config)) | set(cfg.ood_datasets(config))
    return [(f"datasets.{name}.empty_texts", "drop", "error") for name in sorted(used)
            if name in config["datasets"] and config["datasets"][name].get("empty_texts", "error") == "drop"]


def _bt_sampling(config):
    from advtrain.augment import BACKTRANSLATION_DEFAULTS

    out = []
    for name in _augmenters_of_kind(config, "backtranslation"):
        settings = {**BACKTRANSLATION_DEFAULTS, **config["augmentation"]["augmenters"][name]}
        for key, reference in BT_SAMPLING.items():
            out += _differ(f"augmentation.augmenters.{name}.{key}", settings[key], reference)
    return out


def _bt_models(config):
    return [use for name in _augmenters_of_kind(config, "backtranslation") for role, reference in BT_MODELS.items()
            for use in _differ(f"augmentation.augmenters.{name}.{role}.name",
                               config["augmentation"]["augmenters"][name][role]["name"], reference)]


def _fixed_for_augmenter(kind: str, value: str, reference: str):
    def check(config):
        names = _augmenters_of_kind(config, kind)
        return [(f"augmentation.augmenters.{_group(names)}", value, reference)] if names else []
    return check


def _lca_value(key: str, default, reference):
    def check(config):
        lca = config.get("lca") or {}
        if not lca.get("methods"):
            return []
        node = lca
        for part in key.split(".")[1:]:
            node = (node or {}).get(part) if isinstance(node, dict) else None
        return _differ(key, default if node is None else node, reference)
    return check


#: NeuroX 1.0.9: train_logistic_regression_probe's batches of 32 in the data's order (utils.batch_generator), no
#: normalisation; its tutorial's lambda_l1 = lambda_l2 = 0.001.
LCA_PROBE = {"l1": 1e-3, "l2": 1e-3, "batch_size": 32, "shuffle": False, "zscore": False}


def _lca_probe(config):
    from advtrain.lca.settings import PROBE_DEFAULTS

    lca = config.get("lca") or {}
    if not lca.get("methods"):
        return []
    probe = {**PROBE_DEFAULTS, **(lca.get("probe") or {})}
    return [use for key, ref in LCA_PROBE.items() for use in _differ(f"lca.probe.{key}", probe[key], ref)]


#: The choices the paper leaves open for LCA (no reference code: the ledger's values): words per neuron (Table 5's
#: totals reach 18 from 5 neurons, so at least 4), tagger epochs, and NLTK's treebank sample split 90/10 with seed 42.
LCA_CHOICES = {"words_per_neuron": 5, "train.epochs": 3, "data.source": "treebank", "data.test_fraction": 0.1,
               "data.split_seed": 42}


def _lca_choices(config):
    from advtrain.lca import settings as lca_settings

    methods = lca_settings.methods(config)
    if not methods:
        return []
    lca, data = lca_settings.lca_block(config), lca_settings.data_settings(config)
    out = _differ("lca.words_per_neuron", lca.get("words_per_neuron", 5), LCA_CHOICES["words_per_neuron"])
    epochs = {m: lca_settings.tagger_spec(config, m)["train"]["epochs"] for m in methods}
    if set(epochs.values()) != {LCA_CHOICES["train.epochs"]}:  # one value, or each method's where they differ
        value = next(iter(epochs.values())) if len(set(epochs.values())) == 1 else epochs
        out.append(("lca.train.epochs", value, LCA_CHOICES["train.epochs"]))
    defaults = {"data.source": "treebank", "data.test_fraction": 0.1, "data.split_seed": 42}
    keys = ("data.source",) if data.get("source", "treebank") != "treebank" else tuple(defaults)
    for key in keys:  # the split settings matter for the treebank only (CoNLL-2000 has its own)
        out += _differ(f"lca.{key}", data.get(key.split(".")[1], defaults[key]), LCA_CHOICES[key])
    limits = {split: n for split, n in (data.get("max_sentences") or {}).items() if n}
    if limits:
        out.append(("lca.data.max_sentences", limits, "every sentence"))
    return out


def _use_substitute(config):
    resources = (config.get("attacks") or {}).get("resources") or {}
    if resources.get("use"):
        return []
    from advtrain.attacks.recipes import REGISTRY

    recipes = [r for r in _attack_recipes(config) if r in REGISTRY and "use" in REGISTRY[r].resources]
    return [("attacks.resources.use", f"unset: the sentence_encoder stands in for USE (for {', '.join(recipes)})",
             "USE (TF-Hub)")] if recipes else []


def _neighbour_table(config):
    resources = (config.get("attacks") or {}).get("resources") or {}
    if not resources.get("word_neighbours") or resources.get("word_embedding"):
        return []
    from advtrain.attacks.recipes import REGISTRY

    recipes = [r for r in _attack_recipes(config) if r in REGISTRY and "word_embedding" in REGISTRY[r].resources]
    return [("attacks.resources.word_neighbours", f"{resources['word_neighbours']} (for {', '.join(recipes)})",
             "counter-fitted embedding (paragramcf) with its cosine check")] if recipes else []


def _fluency_lm(config):
    """A causal LM other than OpenAttack's (its GPT2LM loads the hub's gpt2, now openai-community/gpt2)."""
    lm = ((config.get("attacks") or {}).get("resources") or {}).get("causal_lm")
    return [("attacks.resources.causal_lm", lm, "openai-community/gpt2 (OpenAttack's GPT2LM)")] if lm else []


def _fluency_length(config):
    """A cut below the LM's positions: OpenAttack cuts nothing (its GPT-2 fails past 1024 tokens)."""
    length = ((config.get("attacks") or {}).get("fluency") or {}).get("max_length")
    return [("attacks.fluency.max_length", length, "uncut (the LM's positions)")] if length is not None else []


def _attacks(check):
    def run(config):
        return check(config) if (config.get("attacks") or {}).get("recipes") else []
    return run


def _query_budget(config):
    return _differ("attacks.query_budget", config["attacks"].get("query_budget"), 10000)


def _pso_search(config):
    from advtrain.attacks.recipes import PSO_SEARCH_REFERENCE, REGISTRY

    attacks = config.get("attacks") or {}
    if not any(r in REGISTRY and "pso_search" in REGISTRY[r].settings for r in attacks.get("recipes") or []):
        return []  # no configured recipe reads it (PSO's record)
    return _differ("attacks.pso_search", attacks.get("pso_search", PSO_SEARCH_REFERENCE), PSO_SEARCH_REFERENCE)


def _attack_sample(config):
    return [("attacks.num_examples", f"{config['attacks'].get('num_examples', 1000)} test examples, the same for "
             "every model, misclassified ones included (skipped)",
             "1000 test examples every compared model classifies correctly")]


def _attack_length(config):
    return _differ("model.max_length", config["model"]["max_length"], 512)


def _precision(config):
    """Precisions other than fp32 (``auto`` is fp32 on every device): the training of each selected method and the
    augmenters it uses."""
    from advtrain.augment import augmenters

    uses = []
    for method in cfg.selected_methods(config):
        value = cfg.train_settings(config, method).get("precision", "auto")
        key = (f"methods.{method}.train.precision" if "precision" in (cfg.method_parts(config, method).get("train")
                                                                     or {}) else "model.precision")
        if value not in ("auto", "fp32") and (key, value, "fp32") not in uses:
            uses.append((key, value, "fp32"))
    used = {name for m in _methods_with(config, "augment") for name in cfg.method_parts(config, m)["augment"]["augmenters"]}
    for name, spec in augmenters(config).items():
        if name in used and spec.get("precision", "auto") not in ("auto", "fp32"):
            uses.append((f"augmentation.augmenters.{name}.precision", spec["precision"], "fp32"))
    return uses


def _decoder_padding(config):
    """A local decoder-only model (GPT-2, Llama): the paper and its reference code fine-tune BERT only."""
    import json
    from pathlib import Path

    from advtrain.models import is_decoder_only

    path = (config.get("model") or {}).get("path")
    try:
        model = json.loads((Path(path) / "config.json").read_text(encoding="utf-8")) if path else {}
    except (OSError, ValueError):
        return []
    if not isinstance(model, dict) or not is_decoder_only(model):
        return []
    return [("model.path", f"{path} ({model.get('model_type')}, decoder-only): padded on the right with its "
             "end-of-sequence token where it has no padding token; the classifier reads the last real token",
             "BERT-base-uncased (encoder): [PAD] padding, the classifier reads [CLS]")]


def _smoothing_settings(kind: str, keys: tuple[str, ...]):
    """Each method whose `smoothing` part is ``kind`` against the reference values (advtrain.smoothing.DEFAULTS)."""
    def check(config):
        from advtrain.smoothing import DEFAULTS

        out = []
        for method in _methods_with(config, "smoothing"):
            part = cfg.method_parts(config, method)["smoothing"]
            if part.get("kind") != kind:
                continue
            for key in keys:
                value = DEFAULTS[kind][key] if part.get(key) is None else part[key]
                out += _differ(f"methods.{method}.smoothing.{key}", value, DEFAULTS[kind][key])
        return out
    return check


def _fixed_for_smoothing(kinds: tuple[str, ...], value: str, reference: str):
    """A departure no key switches, in effect whenever a method with a `smoothing` part of one of ``kinds`` runs."""
    def check(config):
        methods = [m for m in _methods_with(config, "smoothing")
                   if cfg.method_parts(config, m)["smoothing"].get("kind") in kinds]
        return [(f"methods.{_group(methods)}.smoothing", value, reference)] if methods else []
    return check
#: Flooding-X's training script, qinliu9/Flooding-X train/run_flood.py (commit 6498878): --lr 2e-5 (l. 50),
#: --bsz 32 (l. 47; its IMDB and QNLI scripts 16), --epochs 10 (l. 49), --weight_decay 0.01 (l. 51), --adam_epsilon
#: 1e-8 (l. 52), --warmup_ratio 0.1 (l. 53), transformers' AdamW (l. 146-151), no clipping (l. 165-176), texts up
#: to 512 tokens (train/utils.py l. 22 MAX_SEQ_LEN, l. 122).
FLOODING_X_TRAIN = {"optimizer": "adamw_hf", "learning_rate": 2e-5, "batch_size": 32, "epochs": 10,
                    "weight_decay": 0.01, "adam_epsilon": 1e-8, "warmup_ratio": 0.1, "max_grad_norm": 0,
                    "max_length": 512}


def _flooding_methods(config: dict) -> list[str]:
    return _methods_with(config, "flooding")


def _flooding_select(config):
    """How each Flooding-X method gets b: the reference scripts fix it by hand (run_flood_*.sh; AdvBench4Text 0.1);
    the accordance criterion is the paper's, which no reference code implements."""
    out = []
    for method in _flooding_methods(config):
        part = cfg.method_parts(config, method)["flooding"]
        if part.get("select") == "accordance":
            out.append((f"methods.{method}.flooding.select", "accordance (chosen in the run, our reading of the paper)",
                        "fixed by hand per dataset (run_flood_*.sh: SST-2 0.1 / 0.2, IMDB 0.02, QNLI 0.036)"))
    return out


# ------------------------------------------------------------------------------------------ the rows

# Issue 28, item 3: TextDefender's attack protocol (advtrain.attacks.protocols).
def _protocol(config):
    protocol = (config.get("attacks") or {}).get("protocol", "paper")
    return [] if protocol == "paper" else [
        ("attacks.protocol", protocol, "paper: each recipe as TextAttack builds it, attacks.query_budget per example")]


def _textdefender(check):
    """``check(attacks)`` for a config that attacks under TextDefender's protocol; nothing otherwise."""
    def run(config):
        attacks = config.get("attacks") or {}
        return check(attacks) if attacks.get("recipes") and attacks.get("protocol") == "textdefender" else []
    return run


def _textdefender_sample(attacks):
    from advtrain.attacks.protocols import TEXTDEFENDER

    return [*_differ("attacks.num_examples", attacks.get("num_examples", 1000), TEXTDEFENDER["attack_numbers"]),
            *_differ("attacks.seed", attacks.get("seed", 765), TEXTDEFENDER["seed"])]


def _textdefender_recipes(attacks):
    from advtrain.attacks.protocols import TEXTDEFENDER_RECIPES

    others = [r for r in attacks["recipes"] if r not in TEXTDEFENDER_RECIPES]
    return [("attacks.recipes", f"{', '.join(others)}: the common constraints and budget only",
             f"TextDefender's recipes ({', '.join(TEXTDEFENDER_RECIPES)})")] if others else []


ROWS: tuple[Row, ...] = (
    # Issue 22, item 1: every method's numbers must mean the same on every GPU.
    Row("precision", "Numeric precision (training, evaluation, augmentation)",
        ("model.precision", "methods.<m>.train.precision", "augmentation.augmenters.<a>.precision"), _precision),
    # Items 1-3 of issue 16. PGD-AT and LDS have no reference code: their "reference" is the paper's value where it
    # gives one (S, eps) and the ledger's default elsewhere; ALUM's is mt-dnn's code.
    Row("pgd-start", "AT-EP random start (PGD-AT, LDS)",
        tuple(f"methods.<AT-EP>.adversarial_embedding.{k}" for k in AT_EP_START),
        _embedding_settings(("pgd", "lds"), AT_EP_START)),
    Row("lds-clean-side", "LDS: the clean distribution of the ascent and of the final KL",
        tuple(f"methods.<AT-EP>.adversarial_embedding.{k}" for k in LDS_CLEAN_SIDE),
        _embedding_settings(("lds",), LDS_CLEAN_SIDE)),
    Row("alum-mtdnn", "ALUM against mt-dnn's code", ("methods.<ALUM>.adversarial_embedding.*",),
        _embedding_settings(("alum",), None)),
    # Issue 22, item 7.
    Row("alum-optimizer", "ALUM's optimiser and schedule against mt-dnn's train.py",
        tuple(f"methods.<ALUM>.train.{k}" for k in MTDNN_TRAIN), _train_against(_alum_methods, MTDNN_TRAIN)),
    Row("pgd-step", "AT-EP ascent: steps, bound, step (mu) and its normalisation",
        tuple(f"methods.<AT-EP>.adversarial_embedding.{k}" for k in AT_EP_STEP),
        _embedding_settings(("pgd", "lds"), AT_EP_STEP)),
    # Item 4.
    Row("at-ip-train", "AT-IP fine-tuning settings",
        tuple(f"methods.<AT-IP>.train.{k}" for k in AT_IP_TRAIN), _at_ip_train),
    Row("at-ip-schedule", "AT-IP schedule (clean epochs, share attacked, query budget, alpha)",
        tuple(f"methods.<AT-IP>.adversarial_input.{k}" for k in AT_IP_SCHEDULE), _at_ip_schedule),
    # Issue 22, items 3 and 4.
    Row("grad-clipping", "Gradient clipping before each step",
        ("model.max_grad_norm", "methods.<AT-IP>.train.max_grad_norm", "methods.<AT-DA>.train.max_grad_norm"),
        _train_against(_textattack_methods, TEXTATTACK_CLIPPING)),
    Row("adam-epsilon", "AdamW: its epsilon and its form",
        ("model.adam_epsilon", "model.optimizer", "methods.<AT-IP>.train.adam_epsilon",
         "methods.<AT-IP>.train.optimizer", "methods.<AT-DA>.train.adam_epsilon", "methods.<AT-DA>.train.optimizer"),
        _train_against(_textattack_methods, TEXTATTACK_OPTIMIZER)),
    Row("at-ip-fixed-share", "AT-IP: which examples are attacked", ("methods.<AT-IP>.adversarial_input.fraction",),
        _fixed_for_at_ip("a seeded sample of ceil(fraction * N) examples is attacked",
                         "shuffled examples are attacked until fraction * N succeed")),
    Row("at-ip-batches", "AT-IP: where the adversarial examples are trained on", (),
        _fixed_for_at_ip("in the batches of their originals; the clean run's steps and schedule",
                         "extra shuffled batches; steps and schedule count them")),
    # Issue 22: A2T's evaluate.py reads checkpoint-epoch-4, saved before load_best_model_at_end: the last epoch, ours.
    Row("at-ip-best-epoch", "AT-IP: which epoch's weights are kept", ()),
    Row("a2t-word-window", "A2T recipe: words ranked per example", ("methods.<AT-IP>.train.max_length",)),
    Row("bert-attack-candidates", "BERT-Attack: candidates per word (AT-IP and the attack stage)", ()),
    Row("pso-search", "PSO search: mutation ratio and elites' copies (TextAttack 0.3.8 or 0.3.11)",
        ("attacks.pso_search",), _pso_search),
    # Item 5.
    Row("at-da-fraction", "AT-DA: share of the augmented rows added", ("methods.<AT-DA>.augment.fraction",),
        _at_da_fraction),
    Row("at-da-train", "AT-DA and baseline fine-tuning settings", ("model.*", "methods.<AT-DA>.train.*")),
    # Issue 22, item 5.
    Row("imdb-validation", "IMDB's validation split (carved from its training reviews)",
        ("datasets.IMDB.carve.validation", "datasets.IMDB.split_seed"), _imdb_validation),
    # Item 6.
    Row("backtranslation-sampling", "Back-translation sampling",
        tuple(f"augmentation.augmenters.<bt>.{k}" for k in BT_SAMPLING), _bt_sampling),
    Row("backtranslation-model", "Back-translation models",
        ("augmentation.augmenters.<bt>.forward.name", "augmentation.augmenters.<bt>.backward.name"), _bt_models),
    Row("backtranslation-units", "Back-translation: what one translation covers",
        ("augmentation.augmenters.<bt>.max_length",),
        _fixed_for_augmenter("backtranslation", "sentences packed into chunks of at most max_length tokens",
                             "one sentence at a time, truncated at 128 tokens")),
    Row("ssmba-reviews", "SSMBA: long reviews and retries", (),
        _fixed_for_augmenter("ssmba", "reviews over 512 tokens reconstructed window by window; each retry noises "
                             "the original", "A2T's copy truncates at 512 tokens")),
    # Items 7 and 8.
    Row("lca-ordering", "LCA neuron ordering (Table 7's top neurons)", ("lca.search_stride",),
        _lca_value("lca.search_stride", 100, 100)),
    Row("lca-pooling", "LCA: a word's vector from its sub-tokens", ("lca.pooling",),
        _lca_value("lca.pooling", "last", "last")),
    Row("lca-probe", "LCA probe training", tuple(f"lca.probe.{k}" for k in LCA_PROBE), _lca_probe),
    # Issue 22, item 6 (and item 1's LCA half).
    Row("lca-activations", "LCA: activations' precision (forward and storage)", ("lca.activations_dtype",),
        _lca_value("lca.activations_dtype", "float32", "float32")),
    Row("lca-choices", "LCA: what the paper leaves open (words per neuron, tagger epochs, corpus)",
        tuple(f"lca.{k}" for k in LCA_CHOICES) + ("lca.data.max_sentences",), _lca_choices),
    # Item 9 and the attack stage.
    Row("asr-denominator", "ASR's denominator (Table 2)", ()),
    Row("attack-sample", "Attacked examples", ("attacks.num_examples",), _attacks(_attack_sample)),
    Row("query-budget", "Attack query budget", ("attacks.query_budget",), _attacks(_query_budget)),
    Row("attack-length", "Tokens an attacked model reads", ("model.max_length",), _attacks(_attack_length)),
    Row("use-substitute", "Universal Sentence Encoder (TextFooler, BAE, BERT-Attack, TextBugger)", ("attacks.resources.use",),
        _use_substitute),
    Row("neighbour-table", "Counter-fitted embedding (TextFooler, A2T, TextBugger)", ("attacks.resources.word_neighbours",),
        _neighbour_table),
    # Statistics (issue 18): beyond the paper, which reports means only.
    Row("paired-tests", "Significance of each method against BERT",
        ("statistics.confidence", "statistics.bootstrap_resamples", "statistics.seed")),
    Row("robust-outcome", "The per-example outcome paired across methods", ()),
    Row("budget-curves", "ASR as a function of the query budget", ("attacks.query_budget",)),
    Row("validity-checks", "Validity of the adversarial examples", ("attacks.resources.sentence_encoder",)),
    # Issue 25: the paper's conclusions as tested hypotheses. No reference code states them in a testable form.
    Row("claims-tests", "How a claim is judged on a run",
        ("claims", "methods.<m>.family", "statistics.confidence", "statistics.bootstrap_resamples",
         "statistics.seed")),
    # Attack mechanics (issues 17 and 19): same search, other bookkeeping.
    Row("a2t-word-alignment", "A2T / A2T_MLM: words aligned to the model's tokens for the gradient ranking", ()),
    Row("victim-padding", "Victim model queries and A2T's gradient: padding", ()),
    Row("decoder-padding", "Decoder-only classifiers (GPT-2, Llama): padding and the token classified",
        ("model.path",), _decoder_padding),
    Row("attack-concurrency", "Examples attacked at once and their batched queries",
        ("attacks.concurrency", "attacks.batch_tokens", "methods.<AT-IP>.adversarial_input.concurrency",
         "methods.<AT-IP>.adversarial_input.batch_tokens")),
    Row("attack-checkpoints", "Attack checkpoints", ("attacks.checkpoint_interval",)),
    # Data and downloads (issues 15 and 17).
    Row("hub-downloads", "Hub ids, weight format, dataset splits fetched",
        ("model.name", "datasets.<name>.source.hf.name", "datasets.<name>.source.hf.splits")),
    Row("flair-revision", "flair's UPOS tagger (PSO)", ("downloads.flair_pos.revision",)),
    Row("nltk-data", "NLTK data (stopwords, POS tagger)", ("downloads.nltk_index", "attacks.resources.nltk_data")),
    Row("mr-encoding", "MR's text encoding (local rt-polarity files)", ("datasets.<name>.source.local.encoding",)),
    Row("empty-texts", "Rows without text (empty, null, NaN/NA in a csv/tsv)", ("datasets.<name>.empty_texts",),
        _empty_texts),
    # Issue 27, item 3: Flooding-X (Liu et al. 2022).
    Row("flooding-x", "Flooding-X: the flooded loss and how its level b is set",
        ("methods.<FL>.flooding.select", "methods.<FL>.flooding.level"), _flooding_select),
    Row("flooding-accordance", "Flooding-X: gradient accordance and the level it picks",
        ("methods.<FL>.flooding.threshold", "methods.<FL>.flooding.window")),
    Row("flooding-x-train", "Flooding-X's fine-tuning settings against run_flood.py",
        tuple(f"methods.<FL>.train.{k}" for k in FLOODING_X_TRAIN),
        _train_against(_flooding_methods, FLOODING_X_TRAIN)),
    # The toy study.
    Row("toy-perturbation", "Toy study: eps, mu, sigma, points per run",
        ("toy.epsilon", "toy.step_size", "toy.init_std", "toy.n_points")),
    # Issue 27, item 4: randomised smoothing (advtrain.smoothing). <RanMASK>, <SAFER>: methods whose `smoothing`
    # part is of that kind.
    Row("ranmask", "RanMASK: training noise (masked words)", ("methods.<RanMASK>.smoothing.mask_rate",),
        _smoothing_settings("ranmask", ("mask_rate",))),
    Row("safer", "SAFER: training noise (random synonym substitution)",
        ("methods.<SAFER>.smoothing.similarity", "methods.<SAFER>.smoothing.perturbation_size"),
        _smoothing_settings("safer", ("similarity", "perturbation_size"))),
    Row("safer-perturbation-set", "SAFER: a word's perturbation set", ("attacks.resources.word_neighbours",),
        _fixed_for_smoothing(("safer",), "the word and its own counter-fitted neighbours",
                             "the nearest words of its connected component in the similarity graph")),
    Row("smoothing-ensemble", "RanMASK / SAFER prediction: the ensemble (evaluation and the attacks' victim)",
        ("methods.<RanMASK>.smoothing.ensemble_size", "methods.<RanMASK>.smoothing.aggregate",
         "methods.<SAFER>.smoothing.ensemble_size", "methods.<SAFER>.smoothing.aggregate"),
        lambda config: [*_smoothing_settings("ranmask", ("ensemble_size", "aggregate"))(config),
                        *_smoothing_settings("safer", ("ensemble_size", "aggregate"))(config)]),
    Row("smoothing-seeding", "RanMASK / SAFER: the random draws of the noisy copies",
        ("methods.<RanMASK>.smoothing.seed", "methods.<SAFER>.smoothing.seed"),
        _fixed_for_smoothing(("ranmask", "safer"), "each text's copies from a generator seeded by the text",
                             "NumPy's global generator, whatever text comes")),
    Row("ranmask-certify", "RanMASK certification: samples, level, radius",
        ("methods.<RanMASK>.smoothing.certify_samples", "methods.<RanMASK>.smoothing.alpha"),
        _smoothing_settings("ranmask", ("certify_samples", "alpha"))),
    Row("safer-certify", "SAFER certification: samples, Monte-Carlo error, radius",
        ("methods.<SAFER>.smoothing.certify_samples", "methods.<SAFER>.smoothing.mc_error"),
        _smoothing_settings("safer", ("certify_samples", "mc_error"))),
    # Issue 27, item 2: TextDefender's TAVAT and InfoBERT (advtrain.training.textdefender).
    Row("tavat", "TAVAT against TextDefender's trainer/tavat.py", ("methods.<TAVAT>.adversarial_embedding.*",),
        _embedding_settings(("tavat",), None)),
    Row("infobert", "InfoBERT against TextDefender's trainer/infobert.py",
        ("methods.<InfoBERT>.adversarial_embedding.*",), _embedding_settings(("infobert",), None)),
    Row("textdefender-accumulation", "TAVAT, InfoBERT: how the K perturbed forwards make the update", ()),
    Row("tavat-memory", "TAVAT: the token memory (its update, padding, checkpoints)", ()),
    Row("infobert-critic", "InfoBERT: the InfoNCE critic and the random draws", ()),
    Row("tavat-infobert-train", "TAVAT, InfoBERT: fine-tuning settings against TextDefender's",
        ("methods.<TAVAT>.train.*", "methods.<InfoBERT>.train.*"),
        _train_against(_textdefender_kind_methods, TEXTDEFENDER_TRAIN)),
    # Issue 27, item 1: FreeLB and FreeLB++ against TextDefender's trainer (its defaults are DEFAULTS["freelb"]).
    Row("freelb", "FreeLB against TextDefender's trainer", ("methods.<FreeLB>.adversarial_embedding.*",),
        _embedding_settings(("freelb",), None)),
    Row("freelb-plus", "FreeLB++: FreeLB with K = 10 and no norm bound",
        ("methods.<FreeLB-plus>.adversarial_embedding.*",), _embedding_settings(("freelb_plus",), None)),
    Row("freelb-train", "FreeLB / FreeLB++ fine-tuning settings", ("methods.<FreeLB>.train.*",)),
    Row("freelb-accumulation", "How FreeLB's accumulated gradient is made", ()),
    # Issue 28, item 2: the literature's other recipes, TextAttack's builds (tests/unit/test_recipe_parity.py).
    Row("textbugger-recipe", "TextBugger: TextAttack's TextBuggerLi2018 from local resources", ("attacks.recipes",)),
    Row("pwws-recipe", "PWWS: TextAttack's PWWSRen2019, WordNet from the local NLTK data",
        ("attacks.resources.nltk_data",)),
    Row("deepwordbug-recipe", "DeepWordBug: TextAttack's DeepWordBugGao2018", ("attacks.recipes",)),
    # Issue 28, item 4: the fluency of the adversarial examples (advtrain.attacks.fluency), as OpenAttack reports it.
    Row("fluency-perplexity", "Fluency of the adversarial examples: the LM, the tokenisation and the score",
        ("attacks.resources.causal_lm",), _attacks(_fluency_lm)),
    Row("fluency-batching", "Fluency: the length scored and the batching",
        ("attacks.fluency.max_length", "attacks.batch_tokens"), _attacks(_fluency_length)),
    # Issue 28, item 1: datasets with more than two classes (advtrain.data.class_count).
    Row("k-class-labels", "The number of classes and the label space an ood set must share",
        ("datasets.<name>.num_labels", "datasets.<name>.label_map", "run.ood_datasets")),
    Row("agnews-sst2-splits", "AG News and SST-2 (config/agnews.yaml, config/sst2.yaml): their splits",
        ("datasets.<name>.carve", "datasets.<name>.source.hf.splits")),
    # Issue 28, item 3: TextDefender's attack protocol (advtrain.attacks.protocols, config/textdefender.yaml).
    Row("textdefender-protocol", "TextDefender's attack protocol", ("attacks.protocol",), _attacks(_protocol)),
    Row("textdefender-sample", "TextDefender's protocol: the attacked examples", ("attacks.num_examples", "attacks.seed"),
        _textdefender(_textdefender_sample)),
    Row("textdefender-recipes", "TextDefender's protocol: recipes it does not build", ("attacks.recipes",),
        _textdefender(_textdefender_recipes)),
)


def row(row_id: str) -> Row:
    for r in ROWS:
        if r.id == row_id:
            return r
    raise KeyError(row_id)


def non_reference(config: dict) -> list[Use]:
    """Every value this run uses that is not the reference code's, row by row in the ledger's order."""
    return [use for r in ROWS for use in r.uses(config)]



CAPTION = ("Fidelity: the ledger rows (docs/fidelity.md) this run uses with values other than the reference code's, "
           "by config key")


def uses_frame(uses: list[dict]):
    """One row per non-reference value: ledger row, component, config key, this run's value, the reference's."""
    import pandas as pd

    components = {r.id: r.component for r in ROWS}
    return pd.DataFrame([{"ledger row": u["row"], "component": components.get(u["row"], ""), "config key": u["key"],
                          "this run": str(u["value"]), "reference": str(u["reference"])} for u in uses],
                        columns=["ledger row", "component", "config key", "this run", "reference"])


def write_uses(uses: list[dict], stem) -> list:
    """``{stem}.csv``, ``.md`` (with the caption) and ``.tex`` of :func:`uses_frame`."""
    from advtrain.tables import write_table

    return write_table(uses_frame(uses), stem, CAPTION)
