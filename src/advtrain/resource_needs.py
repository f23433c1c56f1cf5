"""Which attack resources the configured study reads, and whether anything is left to download: what the workflow's
input functions, fetch rules and offline switch follow (workflow/rules/common.smk and inputs.smk). Torch-free.

``resources`` is the workflow's ``{kind: (path, is_local)}`` of every attack resource kind (``ATTACK_RESOURCES``):
a configured local path, or where its fetch rule writes it.
"""

from __future__ import annotations

from advtrain import augment, smoothing
from advtrain import config as cfg
from advtrain import sources as res
from advtrain.attacks import protocols, required_resources
from advtrain.attacks.resources import KINDS

#: What attack_validity reads for every adversarial example: the sentence encoder, NLTK for the texts' words, and
#: the causal LM for the texts' perplexities (unless `attacks.fluency.enabled` is false: FLUENCY_RESOURCES).
VALIDITY_RESOURCES = ("nltk_data", "sentence_encoder", "causal_lm")
FLUENCY_RESOURCES = ("causal_lm",)


def fluency_enabled(config: dict) -> bool:
    """Whether attack_validity scores the texts' perplexities (`attacks.fluency.enabled`, default true)."""
    return bool(((config.get("attacks") or {}).get("fluency") or {}).get("enabled", True))


def configured(resources: dict) -> dict[str, str]:
    """{kind: path} of the kinds set to a local path (which stand-ins are set decides what a recipe reads)."""
    return {kind: path for kind, (path, local) in resources.items() if local}


def recipe_kinds(recipe: str, resources: dict, protocol: str = protocols.DEFAULT) -> list[str]:
    """The kinds attack recipe ``recipe``'s shards read under ``attacks.protocol`` (USE too when it is configured)."""
    local = configured(resources)
    kinds = protocols.required_resources(protocol, recipe, local)
    if local.get("use"):
        kinds = [*kinds, "use"]
    return list(dict.fromkeys(kinds))


def attack_kinds(recipes: list[str], resources: dict, fluency: bool = True,
                 protocol: str = protocols.DEFAULT) -> list[str]:
    """Every kind the attack stage reads: its recipes' (under ``attacks.protocol``), USE when configured, and
    attack_validity's (its causal LM only with ``fluency``)."""
    local = configured(resources)
    kinds = [kind for recipe in recipes for kind in protocols.required_resources(protocol, recipe, local)]
    if local.get("use"):
        kinds.append("use")
    if recipes:
        kinds += [kind for kind in VALIDITY_RESOURCES if fluency or kind not in FLUENCY_RESOURCES]
    return list(dict.fromkeys(kinds))


def adversarial_input_methods(config: dict) -> list[str]:
    """The selected methods with an `adversarial_input` part (AT-IP)."""
    return [m for m in cfg.selected_methods(config) if cfg.method_parts(config, m).get("adversarial_input")]


def adversarial_input_kinds(config: dict, method: str, resources: dict) -> list[str]:
    """The kinds ``method``'s training reads: its adversarial_input part's recipe's, and its smoothing part's
    (SAFER's perturbation sets, :func:`advtrain.smoothing.resource_kinds`); none for other methods."""
    parts = cfg.method_parts(config, method)
    kinds = smoothing.resource_kinds(parts.get("smoothing"), configured(resources))
    if parts.get("adversarial_input"):
        kinds = [*required_resources(parts["adversarial_input"]["recipe"], configured(resources)), *kinds]
    return list(dict.fromkeys(kinds))


def fetch_needed(kinds: list[str], resources: dict, model_dir: str) -> bool:
    """Whether some of ``kinds`` is fetched: not a local path, nor a kind shared with the model (the masked LM) that
    is the pretrained model's folder."""
    return any(not resources[kind][1] and not (KINDS[kind].shared_with_model and resources[kind][0] == model_dir)
               for kind in kinds)


def offline(config: dict, resources: dict) -> bool:
    """Whether no library may reach the hub: `offline` is set, or nothing is left to download (the model, a dataset,
    an attack or AT-IP resource, an augmenter's model)."""
    if config["offline"]:
        return True
    model_dir = res.model_location(config)[0]
    recipes = list(config["attacks"]["recipes"])
    at_ip = [kind for m in cfg.selected_methods(config)  # AT-IP's recipes and SAFER's table
             for kind in adversarial_input_kinds(config, m, resources)]
    return not (res.needs_network(config)
                or fetch_needed(attack_kinds(recipes, resources, fluency_enabled(config), protocols.of(config["attacks"])),
                                resources, model_dir)
                or augment.fetch_targets(config, cfg.selected_methods(config))
                or fetch_needed(at_ip, resources, model_dir))
