localrules:
    claims,
    fidelity,
    summary,


rule table4_accuracy:
    input:
        evals=get_eval_files(),
        predictions=get_prediction_files(),
        paper=str(paper.path("table4_accuracy")),
    output:
        csv=report(
            "results/tables/table4_accuracy.csv",
            caption="../report/table4_accuracy.rst",
            category="Tables",
        ),
        md="results/tables/table4_accuracy.md",
        tex="results/tables/table4_accuracy.tex",
    log:
        "logs/report/table4_accuracy.log",
    conda:
        "../../envs/report.yaml"
    params:
        methods=METHODS,
        datasets=TRAIN_DATASETS,
        ood=OOD_DATASETS,
        statistics=STATISTICS,
    script:
        "../scripts/table4_accuracy.py"


rule table2_asr:
    input:
        attacks=get_attack_summaries(),
        paper=str(paper.path("table2_asr")),
    output:
        csv=report(
            "results/tables/table2_asr.csv",
            caption="../report/table2_asr.rst",
            category="Tables",
        ),
        md="results/tables/table2_asr.md",
        tex="results/tables/table2_asr.tex",
    log:
        "logs/report/table2_asr.log",
    conda:
        "../../envs/report.yaml"
    params:
        methods=METHODS,
        attack_names=ATTACK_NAMES,
        statistics=STATISTICS,
    script:
        "../scripts/table2_asr.py"


rule table3_runtime:
    input:
        metrics=expand(
            "results/models/{dataset}/{method}/seed{seed}/metrics.json",
            dataset=TRAIN_DATASETS,
            method=METHODS,
            seed=SEEDS,
        ),
        benchmarks=expand(
            "results/benchmarks/train/{dataset}/{method}/seed{seed}.tsv",
            dataset=TRAIN_DATASETS,
            method=METHODS,
            seed=SEEDS,
        ),
        paper=str(paper.path("table3_runtime_minutes")),
    output:
        csv=report(
            "results/tables/table3_runtime.csv",
            caption="../report/table3_runtime.rst",
            category="Tables",
        ),
        md="results/tables/table3_runtime.md",
        tex="results/tables/table3_runtime.tex",
    log:
        "logs/report/table3_runtime.log",
    conda:
        "../../envs/report.yaml"
    params:
        methods=METHODS,
        contention_share=config["timing"]["contention_share"],
    script:
        "../scripts/table3_runtime.py"


rule paired_comparisons:
    input:
        evals=get_eval_files(),
        attacks=get_attack_summaries() if ATTACK_RECIPES else [],
    output:
        csv=report(
            "results/tables/paired_vs_bert.csv",
            caption="../report/paired_vs_bert.rst",
            category="Tables",
        ),
        md="results/tables/paired_vs_bert.md",
        tex="results/tables/paired_vs_bert.tex",
    log:
        "logs/report/paired_vs_bert.log",
    conda:
        "../../envs/report.yaml"
    params:
        methods=METHODS,
    script:
        "../scripts/paired_comparisons.py"


rule tradeoff_figure:
    input:
        table4="results/tables/table4_accuracy.csv",
        table2="results/tables/table2_asr.csv",
    output:
        png=report(
            "results/figures/tradeoff.png",
            caption="../report/tradeoff.rst",
            category="Figures",
        ),
        pdf="results/figures/tradeoff.pdf",
        points="results/figures/tradeoff_points.csv",
    log:
        "logs/report/tradeoff_figure.log",
    conda:
        "../../envs/report.yaml"
    params:
        datasets=TRAIN_DATASETS,
        ood=OOD_DATASETS[0] if OOD_DATASETS else "YELP",
    script:
        "../scripts/tradeoff_figure.py"


# The paper's claims (config `claims`, docs/claims.md) judged on this run's per-example records and on the paper's
# tables; the families come from `methods.<m>.family` (the paper's by default). A part of the study that --omit-from
# removes leaves its claims "not testable" (the table says why); only the main process knows the option (see
# omit_from()): a local job.
rule claims:
    input:
        claims=CLAIMS_FILE,
        evals=get_claims_evidence("evaluation", get_eval_files),
        predictions=get_claims_evidence("evaluation", get_prediction_files),
        attacks=get_claims_evidence("attacks", get_attack_summaries),
        lca=get_claims_evidence("lca", get_lca_analyses),
        paper=[
            str(paper.path(t))
            for t in ("table2_asr", "table4_accuracy", "table5_lca", "table7_ablation")
        ],
    output:
        csv=report(
            "results/tables/claims.csv",
            caption="../report/claims.rst",
            category="Claims",
        ),
        md="results/tables/claims.md",
        tex="results/tables/claims.tex",
    log:
        "logs/report/claims.log",
    conda:
        "../../envs/report.yaml"
    params:
        methods=METHODS,
        families={m: (config["methods"][m] or {}).get("family") for m in METHODS},
        omitted=lambda w: report_parts.omitted_evidence(omit_from()),
        statistics=STATISTICS,
    script:
        "../scripts/claims.py"


# The fidelity ledger's rows (docs/fidelity.md) this configuration runs with values other than the reference code's:
# computed from the config at start-up, written by a local job.
rule fidelity:
    output:
        csv=report(
            "results/tables/fidelity.csv",
            caption="../report/fidelity.rst",
            category="Fidelity",
        ),
        md="results/tables/fidelity.md",
        tex="results/tables/fidelity.tex",
    log:
        "logs/report/fidelity.log",
    conda:
        "../../envs/report.yaml"
    params:
        uses=FIDELITY_USES,
    script:
        "../scripts/fidelity.py"


# One page that lists every table and figure of this run and where it is, and which of the study's are absent and
# why (a part not configured, or --omit-from); `snakemake --report` renders the same tables and figures as HTML.
# Its inputs and `absent` follow --omit-from, which only the main process knows (see omit_from()): a local job.
rule summary:
    input:
        tables=lambda w: expand("results/tables/{stem}.md", stem=table_stems()),
        figures=lambda w: expand("results/figures/{stem}.png", stem=figure_stems()),
        fidelity="results/tables/fidelity.md",
        claims=lambda w: (
            ["results/tables/claims.csv"] if "claims" in table_stems() else []
        ),
    output:
        "results/summary.md",
    log:
        "logs/report/summary.log",
    conda:
        "../../envs/report.yaml"
    params:
        run={
            "methods": METHODS,
            "datasets": TRAIN_DATASETS,
            "out-of-distribution": OOD_DATASETS,
            "seeds": SEEDS,
            "attacks": ATTACK_RECIPES or "none",
            "LCA methods": LCA_METHODS or "none",
        },
        absent=lambda w: absent_stems(),
    script:
        "../scripts/summary.py"


rule certified_accuracy:
    input:
        certified=expand(
            "results/certify/{dataset}/{method}/seed{seed}.json",
            dataset=TRAIN_DATASETS,
            method=SMOOTHING_METHODS,
            seed=SEEDS,
        ),
        attacks=get_attack_summaries(methods=SMOOTHING_METHODS),
    output:
        csv="results/tables/certified_accuracy.csv",
        md="results/tables/certified_accuracy.md",
        tex="results/tables/certified_accuracy.tex",
    log:
        "logs/report/certified_accuracy.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/certified_accuracy.py"


# Attack results in TextDefender's format (clean accuracy, accuracy under attack, ASR, mean queries), made when
# `attacks.protocol` is not the paper's (see study_stems()), to set beside published TextDefender/AdvBench4Text tables.
rule textdefender_attacks:
    input:
        attacks=get_attack_summaries(),
    output:
        csv=report(
            "results/tables/textdefender_attacks.csv",
            caption="../report/textdefender_attacks.rst",
            category="Tables",
        ),
        md="results/tables/textdefender_attacks.md",
        tex="results/tables/textdefender_attacks.tex",
    log:
        "logs/report/textdefender_attacks.log",
    conda:
        "../../envs/report.yaml"
    params:
        methods=METHODS,
        attack_names=ATTACK_NAMES,
        protocol=ATTACK_PROTOCOL,
    script:
        "../scripts/textdefender_table.py"
