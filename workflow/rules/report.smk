rule table4_accuracy:
    input:
        evals=eval_files(),
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
        ood=OOD_DATASETS,
    script:
        "../scripts/table4_accuracy.py"


rule table2_asr:
    input:
        attacks=attack_summaries(),
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
    script:
        "../scripts/table2_asr.py"
