rule prepare_training_dataset:
    input:
        unpack(get_dataset_source),
    output:
        train="results/data/{dataset}/train.parquet",
        validation="results/data/{dataset}/validation.parquet",
        test="results/data/{dataset}/test.parquet",
        train_summary="results/data/{dataset}/train.json",
        validation_summary="results/data/{dataset}/validation.json",
        test_summary="results/data/{dataset}/test.json",
    log:
        "logs/data/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(cfg.training_datasets({**config, "run": {}})),
    conda:
        "../../envs/data.yaml"
    params:
        dataset=get_dataset_settings,
    script:
        "../scripts/prepare_dataset.py"


rule prepare_ood_dataset:
    input:
        unpack(get_dataset_source),
    output:
        test="results/data/{dataset}/test.parquet",
        test_summary="results/data/{dataset}/test.json",
    log:
        "logs/data/{dataset}.log",
    wildcard_constraints:
        dataset=alternatives(OOD_DATASETS),
    conda:
        "../../envs/data.yaml"
    params:
        dataset=get_dataset_settings,
    script:
        "../scripts/prepare_dataset.py"
