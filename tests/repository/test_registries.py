"""The schema restates the registries' names (Snakemake validates with the static YAML): here they are kept equal.

Registries: recipes (advtrain.attacks.recipes.REGISTRY), attack resource kinds (advtrain.attacks.resources.KINDS),
method parts (advtrain.methods.PARTS), embedding kinds (advtrain.training.embedding_settings.KINDS) and augmenter
kinds (advtrain.augment.KINDS).
"""

from __future__ import annotations

import re

import pytest
import yaml
from conftest import REPO

from advtrain import augment, downloads
from advtrain.attacks import recipes
from advtrain.attacks import resources as attack_res
from advtrain.methods import PARTS, SETTINGS
from advtrain.training import embedding_settings

SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
DEFS = SCHEMA["$defs"]
ATTACKS = SCHEMA["properties"]["attacks"]["properties"]


def test_recipe_enums_are_the_registry():
    assert ATTACKS["recipes"]["items"]["enum"] == list(recipes.ATTACK_STAGE_RECIPES)
    assert DEFS["adversarial_input"]["properties"]["recipe"]["enum"] == list(recipes.TRAINING_RECIPES)
    assert PARTS["adversarial_input"].kinds() == recipes.TRAINING_RECIPES


def test_recipe_settings_are_schema_keys_with_the_same_default():
    for recipe in recipes.REGISTRY.values():
        for key, default in recipe.settings.items():
            assert ATTACKS[key]["default"] == default, (recipe.name, key)
            assert default in ATTACKS[key]["enum"], (recipe.name, key)


def test_recipe_records_are_consistent():
    for recipe in recipes.REGISTRY.values():
        assert set(recipe.resources) <= set(attack_res.KINDS), recipe.name
        # attack_validity checks every attack-stage recipe's adversarial examples against its bounds
        assert (recipe.bounds is not None) == recipe.attack_stage, recipe.name
        for alias in recipe.aliases:
            assert recipes.recipe_name(alias) == recipe.name
        assert recipe.attack_stage or recipe.training, f"{recipe.name} is usable nowhere"
    assert not set(recipes.ALIASES) & set(recipes.REGISTRY)
    assert len(set(recipes.ATTACK_NAMES.values())) == len(recipes.ATTACK_NAMES)


def test_display_names_are_imported_not_restated():
    from advtrain import tables

    assert tables.ATTACK_NAMES is recipes.ATTACK_NAMES
    common = (REPO / "workflow/rules/common.smk").read_text()
    assert "from advtrain.attacks.recipes import ATTACK_NAMES" in common
    for display in recipes.ATTACK_NAMES.values():
        assert f'"{display}"' not in common


def test_resource_kinds_are_the_schema_keys():
    assert list(ATTACKS["resources"]["properties"]) == list(attack_res.KINDS)
    settings = [k.downloads_key for k in attack_res.KINDS.values() if k.downloads_key]
    schema_downloads = SCHEMA["properties"]["downloads"]["properties"]
    assert set(schema_downloads) == {"retries", *settings}
    assert set(downloads.DEFAULTS) == {"retries", *settings}
    for key in settings:  # the schema's default source is the record's
        assert schema_downloads[key]["default"] == downloads.DEFAULTS[key]


@pytest.mark.parametrize("kind", list(attack_res.KINDS))
def test_resource_records(kind):
    record = attack_res.KINDS[kind]
    assert record.key == attack_res.resource_key(kind) == f"attacks.resources.{kind}"
    location = attack_res.default_location(kind, "cache")
    if record.location is None:  # a stand-in: never fetched by the workflow
        assert location is None
    else:
        assert location.startswith("cache/attacks/")
        # a file output is a file name (hownet's pickle, flair's model file), a folder output has no suffix
        assert bool(re.search(r"\.(pkl|bin)$", location)) == record.is_file


def test_masked_lm_location_is_the_workflows():
    config = {"cache_dir": "cache", "model": {"name": "org/other-model"}}
    paths = attack_res.resource_paths(config)
    assert paths["masked_lm"] == ("cache/attacks/masked_lm/google-bert--bert-base-uncased", False)
    # the pretrained model is the masked LM's source: its folder (fetch_model's output, or model.path)
    for name in ("google-bert/bert-base-uncased", "bert-base-uncased"):
        config = {"cache_dir": "cache", "model": {"name": name}}
        assert attack_res.resource_paths(config)["masked_lm"] == ("cache/models/google-bert--bert-base-uncased", False)
    config["model"]["path"] = "/local/bert"
    assert attack_res.resource_paths(config)["masked_lm"] == ("/local/bert", False)
    config["attacks"] = {"resources": {"masked_lm": "/local/mlm"}}
    assert attack_res.resource_paths(config)["masked_lm"] == ("/local/mlm", True)


def test_method_parts_are_the_schema_keys():
    method = DEFS["method"]["properties"]
    assert set(method) == {*SETTINGS, *PARTS}
    for name, part in PARTS.items():
        assert part.kind_key in DEFS[name]["properties"], name
        assert (part.build is None) == (part.trainer_arg is None), name


def test_embedding_kinds_are_the_schema_enum():
    assert DEFS["adversarial_embedding"]["properties"]["kind"]["enum"] == list(embedding_settings.KINDS)
    assert PARTS["adversarial_embedding"].kinds() == embedding_settings.KINDS


def test_augmenter_kinds_are_the_schema_enum():
    augmenter = SCHEMA["properties"]["augmentation"]["properties"]["augmenters"]["additionalProperties"]
    assert augmenter["properties"]["kind"]["enum"] == list(augment.KINDS)
    for kind, record in augment.KINDS.items():  # each kind's settings block names its models
        assert set(record.roles) <= set(DEFS[kind]["properties"]), kind
