# The attack stage: each (dataset, method, seed, attack) attacks the same fixed sample of the test split, split
# into `attacks.shards` shards that run in parallel (scatter), then gathered into one summary.

from advtrain.attacks.recipes import recipe_settings

# `attacks.protocol` (advtrain.attacks.protocols): a protocol other than the paper's adds its sample rule, budget per
# example and constraints to the shards' settings (changing it reruns them; the paper's settings are unchanged) and
# prints them at start-up, the dry run included.
ATTACK_PROTOCOL = protocols.describe(ATTACKS)
if ATTACK_PROTOCOL and ATTACK_RECIPES and workflow.is_main_process:
    print(
        f"attacks.protocol: {ATTACK_PROTOCOL['protocol']}\n"
        + "".join(
            f"  {key.replace('_', ' ')}: {value}\n"
            for key, value in ATTACK_PROTOCOL.items()
            if key != "protocol"
        ),
        end="",
        file=sys.stderr,
    )


scattergather:
    attack=ATTACK_SHARDS,


rule attack_shard:
    input:
        unpack(get_attack_resources),
        model="results/models/{dataset}/{method}/seed{seed}/model",
        test="results/data/{dataset}/test.parquet",
    output:
        records="results/attacks/{dataset}/{method}/seed{seed}/{attack}/shard{scatteritem}.jsonl",
        summary="results/attacks/{dataset}/{method}/seed{seed}/{attack}/shard{scatteritem}.json",
    log:
        "logs/attack/{dataset}/{method}/seed{seed}/{attack}/shard{scatteritem}.log",
    conda:
        "../../envs/attack.yaml"
    threads: ATTACKS["threads"]
    resources:
        gpu=1,
    params:
        settings=lambda w: {
            **{
                k: ATTACKS[k]
                for k in (
                    "num_examples",
                    "query_budget",
                    "model_batch_size",
                    "seed",
                    "checkpoint_interval",
                )
            },
            **ATTACK_PROTOCOL,
        },
        # Settings one recipe reads, as params of its shards only: changing them reruns that recipe's attacks.
        recipe_settings=lambda w: recipe_settings(w.attack, ATTACKS),
        max_length=config["model"]["max_length"],
        # Outside the outputs, so a failed or killed shard keeps its checkpoints and the rerun resumes.
        checkpoints=lambda w: f"results/checkpoints/attacks/{w.dataset}/{w.method}/seed{w.seed}/{w.attack}/shard{w.scatteritem}",
    script:
        "../scripts/attack_shard.py"


rule gather_attack:
    input:
        records=lambda w: gather.attack(
            "results/attacks/{dataset}/{method}/seed{seed}/{attack}/shard{scatteritem}.jsonl",
            **w,
        ),
        summaries=lambda w: gather.attack(
            "results/attacks/{dataset}/{method}/seed{seed}/{attack}/shard{scatteritem}.json",
            **w,
        ),
        # Its rows: a split smaller than attacks.num_examples caps the sample (the summary says so).
        test_summary="results/data/{dataset}/test.json",
    output:
        "results/attacks/{dataset}/{method}/seed{seed}/{attack}.json",
    log:
        "logs/attack/{dataset}/{method}/seed{seed}/{attack}.log",
    conda:
        "../../envs/attack.yaml"
    params:
        requested=ATTACKS["num_examples"],
    script:
        "../scripts/gather_attack.py"
