# Downloads run on the submitting host: cluster compute nodes often have no internet.
localrules:
    fetch_model,
    fetch_dataset,


rule fetch_model:
    output:
        directory(f"{CACHE}/models/{{model}}"),
    log:
        "logs/resources/model_{model}.log",
    conda:
        "../../envs/data.yaml"
    params:
        name=res.hub_id(config["model"]["name"]),
    script:
        "../scripts/fetch_model.py"


# A dataset's folder is named by its hub id (e.g. resources/datasets/YELP/fancyzhx--yelp_polarity): another id is
# another folder. Only the configured splits' files are fetched.
rule fetch_dataset:
    output:
        directory(f"{CACHE}/datasets/{{dataset}}/{{repo}}"),
    log:
        "logs/resources/dataset_{dataset}_{repo}.log",
    wildcard_constraints:
        repo=r"[^/]+",
    conda:
        "../../envs/data.yaml"
    params:
        hf=get_hf_dataset,
    script:
        "../scripts/fetch_dataset.py"


# Attack resources: one localrules fetch job per resource that has no local path (attacks.resources.<kind>), from
# the source in `downloads.<kind>` (a change of URL or checksum fetches again). The stand-ins USE and word_neighbours
# are never fetched (they are used only when set to a local copy); the masked LM is fetch_model's folder when the
# pretrained model is google-bert/bert-base-uncased.
for _kind, (_path, _local) in ATTACK_RESOURCES.items():
    if _local or _path is None or _path == MODEL_DIR:
        continue

    rule:
        name:
            f"fetch_attack_{_kind}"
        output:
            _path if attack_res.KINDS[_kind].is_file else directory(_path),
        log:
            f"logs/resources/attack_{_kind}.log",
        localrule: True
        conda:
            "../../envs/attack.yaml"
        params:
            kind=_kind,
            source=attack_res.source_of(_kind, DOWNLOADS),
        script:
            "../scripts/fetch_attack_resource.py"


# Augmenter models (the SSMBA masked LM, the MarianMT pair): one localrules fetch job per hub model that has no
# local path (augmentation.augmenters.<name>.<model|forward|backward>.path); the SSMBA masked LM is fetch_model's
# folder when it is the pretrained model.
rule fetch_augment_model:
    output:
        directory(f"{CACHE}/augment/{{model}}"),
    log:
        "logs/resources/augment_{model}.log",
    wildcard_constraints:
        model=alternatives(AUGMENT_FETCH),
    localrule: True
    conda:
        "../../envs/augment.yaml"
    params:
        name=lambda w: AUGMENT_FETCH[w.model][0],
        key=lambda w: AUGMENT_FETCH[w.model][1],
    script:
        "../scripts/fetch_augment_model.py"
