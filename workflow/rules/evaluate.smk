rule evaluate:
    input:
        unpack(get_ood_test_splits),
        model="results/models/{dataset}/{method}/seed{seed}/model",
        in_distribution="results/data/{dataset}/test.parquet",
    output:
        "results/eval/{dataset}/{method}/seed{seed}.json",
        # per-example predicted and true labels of every test split, for the paired tests and the intervals
        predictions="results/eval/{dataset}/{method}/seed{seed}.predictions.npz",
    log:
        "logs/evaluate/{dataset}/{method}/seed{seed}.log",
    conda:
        "../../envs/train.yaml"
    resources:
        gpu=GPU_SLOTS,
    params:
        settings=lambda w: cfg.train_settings(config, w.method),
        ood=OOD_DATASETS,
    script:
        "../scripts/evaluate.py"


rule certify:
    input:
        model="results/models/{dataset}/{method}/seed{seed}/model",
        test="results/data/{dataset}/test.parquet",
    output:
        "results/certify/{dataset}/{method}/seed{seed}.json",
    log:
        "logs/certify/{dataset}/{method}/seed{seed}.log",
    conda:
        "../../envs/train.yaml"
    resources:
        gpu=GPU_SLOTS,
    params:
        settings=lambda w: cfg.train_settings(config, w.method),
        num_examples=ATTACKS["num_examples"],
        seed=ATTACKS["seed"],
    script:
        "../scripts/certify.py"
