"""The one configuration pass the workflow runs before any job (workflow/rules/common.smk, after the schema's
validation): every check the schema cannot express and every configured local file, run in one go, so that a run
stops once with all the problems its configuration has, each a line naming its key or file.

The checks themselves stay beside what they check: :func:`advtrain.config.check_references`,
:func:`advtrain.augment.check_config`, :func:`advtrain.lca.settings.check`,
:func:`advtrain.training.input_schedule.check_schedule`, and the resource checks of :mod:`advtrain.sources`,
:mod:`advtrain.models` and :mod:`advtrain.attacks.resources`.
"""

from __future__ import annotations

from advtrain import augment, models, resource_needs
from advtrain import config as cfg
from advtrain import sources as res
from advtrain.attacks import protocols
from advtrain.attacks import resources as attack_res
from advtrain.lca import settings as lca_settings
from advtrain.training import input_schedule


def check(config: dict) -> None:
    """Raise one :class:`advtrain.config.ConfigError` listing every problem :func:`problems` finds."""
    found = problems(config)
    if found:
        raise cfg.ConfigError("\n".join(found))


def problems(config: dict) -> list[str]:
    """Every problem of a schema-valid config, in the order the workflow reads it (the config's own checks, then the
    local files each part reads); a message reported by two parts (a resource shared by attacks and AT-IP) once."""
    found = []

    def run(check_, *args):
        try:
            check_(*args)
        except (cfg.ConfigError, res.ResourceError) as e:
            found.append(str(e))

    run(cfg.check_references, config)
    run(protocols.check_config, config)  # attacks.protocol against attacks.query_budget
    # The parts below read the selection: names the references check reported as unknown are left out.
    methods = [m for m in cfg.selected_methods(config) if m in config["methods"]]
    datasets = [d for d in [*cfg.training_datasets(config), *cfg.ood_datasets(config)] if d in config["datasets"]]

    model_dir, model_is_local = res.model_location(config)
    if model_is_local:
        run(_check_model_folder, model_dir, {m: cfg.method_parts(config, m) for m in methods})
    for dataset in datasets:
        run(res.require_dataset_files, config, [dataset])

    # Every configured local attack resource, with the files its loader reads: an empty nltk_data folder stops the
    # run here, not in the first attack shard once every model has trained.
    local = {kind: path for kind in attack_res.RESOURCE_KEYS
             for path, is_local in [attack_res.resource_location(config, kind)] if is_local}
    if config["attacks"]["recipes"]:
        for kind, path in local.items():
            run(attack_res.check_local, kind, path)

    # AT-IP: the epoch schedule, and the local resources its recipe reads (same keys and errors as the attacks').
    resources = {kind: (path, True) for kind, path in local.items()}
    for method in methods:
        part = cfg.method_parts(config, method).get("adversarial_input")
        if part:
            run(input_schedule.check_schedule, part, cfg.train_settings(config, method)["epochs"],
                f"methods.{method}.adversarial_input")
        for kind in resource_needs.adversarial_input_kinds(config, method, resources):  # and SAFER's table
            if kind in local:
                run(attack_res.check_local, kind, local[kind])

    # AT-DA: the augmenters the methods name, and the local models of those the selected methods use (a model that
    # is the pretrained model's folder was checked as `model.path`).
    run(augment.check_config, config)
    locations = augment.model_locations(config)
    for name in augment.used_augmenters(config, methods):
        for role, (path, is_local) in locations[name].items():
            if is_local and not (model_is_local and path == model_dir):
                run(res.require_local, path, f"{augment.model_key(name, role)}.path")

    # LCA: its methods and files, and a corpus it can read.
    run(lca_settings.check, config)
    for key, path in lca_settings.local_paths(config).items():
        run(res.require_local, path, key, f"Set `{key}` to an existing path.")
    data = lca_settings.data_settings(config)
    if lca_settings.methods(config) and data["source"] != "local" and not data.get("nltk_data") and config["offline"]:
        found.append("lca.data.nltk_data: `offline` is set, so NLTK's corpus cannot be fetched; point "
                     f"lca.data.nltk_data to an NLTK data folder with corpora/{data['source']}.")
    return list(dict.fromkeys(found))


def _check_model_folder(folder: str, methods: dict) -> None:
    """A local pretrained model: a complete folder, which a decoder-only model (GPT-2, Llama) without anything to pad
    with, or under a method that perturbs an encoder's embedding layer, fails here rather than in its first job."""
    res.require_model_folder(folder, "model.path")
    models.check_model_folder(folder, "model.path", methods)
