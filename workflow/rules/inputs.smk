# Input and params functions of the rules (named get_* as in the Snakemake workflow catalog): what each job reads,
# from the configuration read in common.smk.


def get_model(wildcards):
    """The pretrained model: the configured local folder, or the fetch rule's cache folder."""
    return MODEL_DIR


def get_dataset_source(wildcards):
    """What prepare_dataset reads: the hub copy's folder, or the configured local files."""
    location, _ = res.dataset_location(config, wildcards.dataset)
    if location is not None:
        return {"source": location}
    files = cfg.effective_source(config["datasets"][wildcards.dataset])[1]["files"]
    return {f"file_{key}": path for key, path in files.items()}


def get_dataset_settings(wildcards):
    return config["datasets"][wildcards.dataset]


def get_hf_dataset(wildcards):
    return config["datasets"][wildcards.dataset]["source"]["hf"]


def get_method_spec(wildcards):
    """A method's resolved settings and parts: train jobs rerun when they change."""
    return cfg.method_spec(config, wildcards.method)


def get_adversarial_input_resources(wildcards):
    """The attack resources an AT-IP method's recipe reads (res_<kind>: local path or fetch output); none otherwise."""
    kinds = resource_needs.adversarial_input_kinds(
        config, wildcards.method, ATTACK_RESOURCES
    )
    return {f"res_{kind}": ATTACK_RESOURCES[kind][0] for kind in kinds}


def get_augmented_rows(wildcards):
    """The augmented rows a method's `augment` part adds to its training split (none for other methods)."""
    part = cfg.method_parts(config, wildcards.method).get("augment") or {}
    return {
        f"augment_{name}": f"results/augment/{wildcards.dataset}/{name}.parquet"
        for name in part.get("augmenters", [])
    }


def get_augmenter_models(wildcards):
    """The models augmenter {augmenter} reads: local folders, or the fetch rules' outputs."""
    return {
        f"model_{role}": path
        for role, (path, _) in AUGMENT_MODELS[wildcards.augmenter].items()
    }


def get_ood_test_splits(wildcards):
    return {name: f"results/data/{name}/test.parquet" for name in OOD_DATASETS}


def get_attack_resources(wildcards):
    """The resources recipe {attack} reads: local paths, or the fetch rules' outputs."""
    kinds = resource_needs.recipe_kinds(
        wildcards.attack, ATTACK_RESOURCES, protocols.of(ATTACKS)
    )
    return {f"res_{kind}": ATTACK_RESOURCES[kind][0] for kind in kinds}


def get_eval_files(datasets=TRAIN_DATASETS, methods=METHODS, seeds=SEEDS):
    return expand(
        "results/eval/{dataset}/{method}/seed{seed}.json",
        dataset=datasets,
        method=methods,
        seed=seeds,
    )


def get_prediction_files(datasets=TRAIN_DATASETS, methods=METHODS, seeds=SEEDS):
    return expand(
        "results/eval/{dataset}/{method}/seed{seed}.predictions.npz",
        dataset=datasets,
        method=methods,
        seed=seeds,
    )


def get_attack_summaries(datasets=TRAIN_DATASETS, methods=METHODS, seeds=SEEDS):
    return expand(
        "results/attacks/{dataset}/{method}/seed{seed}/{attack}.json",
        dataset=datasets,
        method=methods,
        seed=seeds,
        attack=ATTACK_RECIPES,
    )


def get_cell_attack_summaries(wildcards):
    """The gathered summaries of attack {attack} on dataset {dataset}: every method and seed."""
    return expand(
        "results/attacks/{dataset}/{method}/seed{seed}/{attack}.json",
        dataset=wildcards.dataset,
        method=METHODS,
        seed=SEEDS,
        attack=wildcards.attack,
    )


def get_validity_files():
    return expand(
        "results/attacks/{dataset}/{method}/seed{seed}/{attack}/validity.csv",
        dataset=TRAIN_DATASETS,
        method=METHODS,
        seed=SEEDS,
        attack=ATTACK_RECIPES,
    )


def get_validity_runs(wildcards):
    """{run's validity.csv: its record shards} for every method and seed of attack {attack} on {dataset}."""
    runs = {}
    for method in METHODS:
        for seed in SEEDS:
            run = f"results/attacks/{wildcards.dataset}/{method}/seed{seed}/{wildcards.attack}"
            runs[f"{run}/validity.csv"] = gather.attack(
                f"{run}/shard{{scatteritem}}.jsonl"
            )
    return runs


def get_validity_lm(wildcards):
    """The causal LM of the perplexities in the validity checks; none when `attacks.fluency.enabled` is false."""
    if resource_needs.fluency_enabled(config):
        return {"causal_lm": ATTACK_RESOURCES["causal_lm"][0]}
    return {}


def get_validity_records(wildcards):
    return [
        shard for shards in get_validity_runs(wildcards).values() for shard in shards
    ]


def get_lca_analyses():
    return expand(
        "results/lca/analysis/{method}/seed{seed}.json",
        method=LCA_METHODS,
        seed=LCA_SEEDS,
    )


def get_claims_evidence(part, files):
    """Rule claims' input of one part of the study ("evaluation", "attacks", "lca"): an input function giving
    ``files()``, or none when the part is not configured or --omit-from removes it (see omit_from()).
    """
    configured = {"attacks": ATTACK_RECIPES, "lca": LCA_METHODS}.get(part, True)

    def evidence(wildcards):
        if not configured or part in report_parts.omitted_evidence(omit_from()):
            return []
        return files()

    return evidence


def get_lca_corpus(wildcards):
    """What lca_data reads: local POS files, a configured NLTK folder, or the fetch rule's folder."""
    if LCA_DATA["source"] == "local":
        return {f"file_{k}": v for k, v in (LCA_DATA.get("files") or {}).items()}
    return {"nltk_data": LCA_DATA.get("nltk_data") or f"{CACHE}/lca/nltk_data"}
