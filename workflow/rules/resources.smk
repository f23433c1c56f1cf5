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
        name=config["model"]["name"],
    script:
        "../scripts/fetch_model.py"


rule fetch_dataset:
    output:
        directory(f"{CACHE}/datasets/{{dataset}}"),
    log:
        "logs/resources/dataset_{dataset}.log",
    conda:
        "../../envs/data.yaml"
    params:
        hf=hf_dataset_params,
    script:
        "../scripts/fetch_dataset.py"
