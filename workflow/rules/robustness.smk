# Robustness statistics from files the workflow already writes (no new attack runs): ASR against the query budget,
# attack effort, how much each attack changed the texts, and per-example paired tests against the baseline. Every
# rule here reads records or predictions, so it reruns only when they change.


# Per (dataset, attack): each adversarial example's size of change, sentence-encoder similarity, the recipe's
# bounds and the perplexity of its original and adversarial text under the causal LM, one file per run. One job
# per cell loads TextAttack, the encoder and the LM once for all its runs (no LM with attacks.fluency.enabled false).
rule attack_validity:
    input:
        unpack(get_validity_lm),
        records=get_validity_records,
        sentence_encoder=ATTACK_RESOURCES["sentence_encoder"][0],
        nltk_data=ATTACK_RESOURCES["nltk_data"][0],
    output:
        expand(
            "results/attacks/{{dataset}}/{method}/seed{seed}/{{attack}}/validity.csv",
            method=METHODS,
            seed=SEEDS,
        ),
    log:
        "logs/attack/validity/{dataset}_{attack}.log",
    conda:
        "../../envs/attack.yaml"
    resources:
        gpu=1,
    params:
        runs=get_validity_runs,
        fluency_max_length=ATTACKS["fluency"]["max_length"],
        batch_tokens=ATTACKS["batch_tokens"],
    script:
        "../scripts/attack_validity.py"


rule attack_budget:
    input:
        attacks=get_attack_summaries(),
    output:
        csv=report(
            "results/tables/attack_budget.csv",
            caption="../report/attack_budget.rst",
            category="Robustness",
        ),
        md="results/tables/attack_budget.md",
        tex="results/tables/attack_budget.tex",
        curves="results/tables/attack_budget_curves.csv",
    log:
        "logs/report/attack_budget.log",
    conda:
        "../../envs/report.yaml"
    params:
        methods=METHODS,
        attack_names=ATTACK_NAMES,
        statistics=STATISTICS,
    script:
        "../scripts/attack_budget.py"


rule budget_figure:
    input:
        attacks=get_cell_attack_summaries,
    output:
        png=report(
            "results/figures/budget_{dataset}_{attack}.png",
            caption="../report/budget_figure.rst",
            category="Robustness",
            subcategory="{dataset}",
        ),
        pdf="results/figures/budget_{dataset}_{attack}.pdf",
        curves="results/figures/budget_{dataset}_{attack}.csv",
    log:
        "logs/report/budget_{dataset}_{attack}.log",
    conda:
        "../../envs/report.yaml"
    params:
        attack_names=ATTACK_NAMES,
    script:
        "../scripts/budget_figure.py"


rule attack_effort:
    input:
        attacks=get_attack_summaries(),
    output:
        csv=report(
            "results/tables/attack_effort.csv",
            caption="../report/attack_effort.rst",
            category="Robustness",
        ),
        md="results/tables/attack_effort.md",
        tex="results/tables/attack_effort.tex",
    log:
        "logs/report/attack_effort.log",
    conda:
        "../../envs/report.yaml"
    params:
        methods=METHODS,
        attack_names=ATTACK_NAMES,
    script:
        "../scripts/attack_effort.py"


rule validity_tables:
    input:
        attacks=get_attack_summaries(),
        validity=get_validity_files(),
    output:
        csv=report(
            "results/tables/attack_validity.csv",
            caption="../report/attack_validity.rst",
            category="Robustness",
        ),
        md="results/tables/attack_validity.md",
        tex="results/tables/attack_validity.tex",
        examples=report(
            "results/tables/attack_examples.csv",
            caption="../report/attack_examples.rst",
            category="Robustness",
        ),
        examples_md="results/tables/attack_examples.md",
        examples_tex="results/tables/attack_examples.tex",
    log:
        "logs/report/validity_tables.log",
    conda:
        "../../envs/report.yaml"
    params:
        methods=METHODS,
        attack_names=ATTACK_NAMES,
        statistics=STATISTICS,
    script:
        "../scripts/validity_tables.py"


rule paired_examples:
    input:
        evals=get_eval_files(),
        predictions=get_prediction_files(),
        attacks=get_attack_summaries() if ATTACK_RECIPES else [],
    output:
        csv=report(
            "results/tables/paired_examples_vs_bert.csv",
            caption="../report/paired_examples_vs_bert.rst",
            category="Robustness",
        ),
        md="results/tables/paired_examples_vs_bert.md",
        tex="results/tables/paired_examples_vs_bert.tex",
    log:
        "logs/report/paired_examples_vs_bert.log",
    conda:
        "../../envs/report.yaml"
    params:
        methods=METHODS,
        datasets=TRAIN_DATASETS,
        attack_names=ATTACK_NAMES,
        statistics=STATISTICS,
    script:
        "../scripts/paired_examples.py"
