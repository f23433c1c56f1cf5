# Linguistic Correlation Analysis (paper section 4, Tables 5-7): POS taggers fine-tuned with the methods in
# `lca.methods`, every layer's per-word activations, an elastic-net probe over all neurons, and the tables.


localrules:
    fetch_pos_corpus,


rule fetch_pos_corpus:
    output:
        directory(f"{CACHE}/lca/nltk_data"),
    log:
        "logs/resources/pos_corpus.log",
    conda:
        "../../envs/lca.yaml"
    params:
        corpus=LCA_DATA["source"],
        index=DOWNLOADS["nltk_index"],
    script:
        "../scripts/fetch_pos_corpus.py"


rule lca_data:
    input:
        unpack(get_lca_corpus),
    output:
        train="results/lca/data/train.jsonl",
        test="results/lca/data/test.jsonl",
        tags="results/lca/data/tags.txt",
        summary="results/lca/data/summary.json",
    log:
        "logs/lca/data.log",
    conda:
        "../../envs/lca.yaml"
    params:
        settings=LCA_DATA,
    script:
        "../scripts/lca_data.py"


rule lca_train:
    input:
        model=get_model,
        train="results/lca/data/train.jsonl",
        test="results/lca/data/test.jsonl",
        tags="results/lca/data/tags.txt",
    output:
        model=directory("results/lca/models/{method}/seed{seed}/model"),
        metrics="results/lca/models/{method}/seed{seed}/metrics.json",
    log:
        "logs/lca/train/{method}/seed{seed}.log",
    benchmark:
        "results/benchmarks/lca_train/{method}/seed{seed}.tsv"
    conda:
        "../../envs/lca.yaml"
    threads: 2
    resources:
        gpu=GPU_SLOTS,
    params:
        spec=lambda w: lca_settings.tagger_spec(config, w.method),
        # Outside the outputs, so a killed job resumes from its last epoch.
        checkpoints=lambda w: f"results/checkpoints/lca/{w.method}/seed{w.seed}",
    script:
        "../scripts/lca_train.py"


rule lca_activations:
    input:
        model="results/lca/models/{method}/seed{seed}/model",
        train="results/lca/data/train.jsonl",
        test="results/lca/data/test.jsonl",
        tags="results/lca/data/tags.txt",
    output:
        train="results/lca/activations/{method}/seed{seed}/train.npz",
        test="results/lca/activations/{method}/seed{seed}/test.npz",
    log:
        "logs/lca/activations/{method}/seed{seed}.log",
    conda:
        "../../envs/lca.yaml"
    resources:
        gpu=GPU_SLOTS,
    params:
        max_length=lambda w: lca_settings.tagger_spec(config, w.method)["train"][
            "max_length"
        ],
        # The forward runs in float32 (NeuroX's) whatever the tagger's precision.
        dtype=lca_settings.activations_dtype(config),
        pooling=LCA["pooling"],
        batch_size=LCA["batch_size"],
    script:
        "../scripts/lca_activations.py"


rule lca_probe:
    input:
        train="results/lca/activations/{method}/seed{seed}/train.npz",
        test="results/lca/activations/{method}/seed{seed}/test.npz",
        tags="results/lca/data/tags.txt",
    output:
        "results/lca/analysis/{method}/seed{seed}.json",
    log:
        "logs/lca/probe/{method}/seed{seed}.log",
    conda:
        "../../envs/lca.yaml"
    threads: 2
    params:
        settings=lca_settings.analysis_settings(config),
    script:
        "../scripts/lca_probe.py"


rule lca_tables:
    input:
        analyses=expand(
            "results/lca/analysis/{method}/seed{seed}.json",
            method=LCA_METHODS,
            seed=LCA_SEEDS,
        ),
    output:
        table5=report(
            "results/tables/table5_lca.csv",
            caption="../report/table5_lca.rst",
            category="LCA",
        ),
        table5_md="results/tables/table5_lca.md",
        table5_tex="results/tables/table5_lca.tex",
        table5_all="results/tables/table5_lca_all_tags.csv",
        table6=report(
            "results/tables/table6_lca_words.csv",
            caption="../report/table6_lca_words.rst",
            category="LCA",
        ),
        table6_md="results/tables/table6_lca_words.md",
        table6_tex="results/tables/table6_lca_words.tex",
        table7=report(
            "results/tables/table7_ablation.csv",
            caption="../report/table7_ablation.rst",
            category="LCA",
        ),
        table7_md="results/tables/table7_ablation.md",
        table7_tex="results/tables/table7_ablation.tex",
    log:
        "logs/lca/tables.log",
    conda:
        "../../envs/report.yaml"
    params:
        methods=LCA_METHODS,
    script:
        "../scripts/lca_tables.py"
