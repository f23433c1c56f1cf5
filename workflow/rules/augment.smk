# Offline augmentation for the AT-DA methods (SSMBA, back-translation): each (dataset, augmenter) augments the
# training split once, in `augmentation.shards` shards that run in parallel (scatter), then gathered into one
# file that the train jobs of the methods naming the augmenter read.


scattergather:
    augment=AUGMENT_SHARDS,


rule augment_shard:
    input:
        unpack(get_augmenter_models),
        train="results/data/{dataset}/train.parquet",
    output:
        rows="results/augment/{dataset}/{augmenter}/shard{scatteritem}.parquet",
        summary="results/augment/{dataset}/{augmenter}/shard{scatteritem}.json",
    log:
        "logs/augment/{dataset}/{augmenter}/shard{scatteritem}.log",
    wildcard_constraints:
        augmenter=alternatives(AUGMENTERS),
    conda:
        "../../envs/augment.yaml"
    threads: AUGMENTATION["threads"]
    resources:
        gpu=GPU_SLOTS,
    params:
        # The augmenter's whole entry: editing it reruns its shards (and the train jobs that read them).
        spec=lambda w: AUGMENTERS[w.augmenter],
    script:
        "../scripts/augment_shard.py"


rule gather_augment:
    input:
        rows=lambda w: gather.augment(
            "results/augment/{dataset}/{augmenter}/shard{scatteritem}.parquet", **w
        ),
        summaries=lambda w: gather.augment(
            "results/augment/{dataset}/{augmenter}/shard{scatteritem}.json", **w
        ),
    output:
        rows="results/augment/{dataset}/{augmenter}.parquet",
        summary="results/augment/{dataset}/{augmenter}.json",
    log:
        "logs/augment/{dataset}/{augmenter}.log",
    wildcard_constraints:
        augmenter=alternatives(AUGMENTERS),
    conda:
        "../../envs/augment.yaml"
    script:
        "../scripts/gather_augment.py"
