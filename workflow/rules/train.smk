rule train:
    input:
        unpack(get_augmented_rows),
        unpack(get_adversarial_input_resources),
        model=get_model,
        train="results/data/{dataset}/train.parquet",
        validation="results/data/{dataset}/validation.parquet",
    output:
        model=directory("results/models/{dataset}/{method}/seed{seed}/model"),
        metrics="results/models/{dataset}/{method}/seed{seed}/metrics.json",
    log:
        "logs/train/{dataset}/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train/{dataset}/{method}/seed{seed}.tsv"
    conda:
        "../../envs/train.yaml"
    threads: 2
    resources:
        gpu=GPU_SLOTS,
    params:
        spec=get_method_spec,
        # Outside the outputs, so a failed or killed job keeps its checkpoints and the rerun resumes.
        checkpoints=lambda w: f"results/checkpoints/{w.dataset}/{w.method}/seed{w.seed}",
    script:
        "../scripts/train.py"
