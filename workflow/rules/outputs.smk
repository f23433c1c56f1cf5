# What this run makes: rule all's targets and the tables and figures of the report (rule summary).
#
# `snakemake --omit-from RULE|FILE` removes the jobs of RULE (or of FILE) and all that follows from them. The report
# follows it: a table or figure made from an omitted rule leaves rule all's and the summary's inputs, so the summary
# is still written and says what is absent and why, and no job runs only to feed an omitted one (lca_data for an
# omitted lca_train). The same for a part not configured (no attacks, no LCA).


def omit_from():
    """This invocation's --omit-from entries (rule names or files). Snakemake sets them after reading the Snakefile
    and does not pass them to the jobs it spawns: only input and params functions of rule all and of local rules
    (evaluated while the main process builds the DAG) can use them."""
    settings = workflow.dag_settings
    return set(settings.omit_from) if settings is not None else set()


def study_stems():
    """(tables, figures) of this configuration's parts, in the paper's order."""
    tables = ["table1_toy"]
    if ATTACK_RECIPES:
        tables.append("table2_asr")
    tables += ["table3_runtime", "table4_accuracy"]
    if LCA_METHODS:
        tables += report_parts.LCA_TABLES
    tables += ["paired_vs_bert", "paired_examples_vs_bert"]
    if ATTACK_RECIPES:
        tables += [t for t in report_parts.ATTACK_TABLES if t != "table2_asr"]
    if ATTACK_RECIPES and ATTACK_PROTOCOL:  # TextDefender's format, under its protocol
        tables.append("textdefender_attacks")
    tables.append("claims")
    figures = [
        "figure1_toy",
        *(["tradeoff"] if ATTACK_RECIPES else []),
        *expand(
            "budget_{dataset}_{attack}", dataset=TRAIN_DATASETS, attack=ATTACK_RECIPES
        ),
    ]
    return tables, figures


def absent_stems():
    """The study's tables and figures this run does not make, each with why (rule summary's `absent`)."""
    absent = {}
    if not ATTACK_RECIPES:
        absent.update(
            dict.fromkeys(
                [*report_parts.ATTACK_TABLES, *report_parts.ATTACK_FIGURES],
                "not configured: `attacks.recipes` is empty",
            )
        )
    if not LCA_METHODS:
        absent.update(
            dict.fromkeys(
                report_parts.LCA_TABLES, "not configured: `lca.methods` is empty"
            )
        )
    tables, figures = study_stems()
    absent.update(
        report_parts.omitted(
            [*tables, *figures], omit_from(), attacks=bool(ATTACK_RECIPES)
        )
    )
    return absent


def table_stems():
    """The tables this run produces (each as csv, md and tex), in the paper's order."""
    absent = absent_stems()
    return [t for t in study_stems()[0] if t not in absent]


def figure_stems():
    """The figures this run produces (each as png and pdf)."""
    absent = absent_stems()
    return [f for f in study_stems()[1] if f not in absent]


def get_final_outputs(wildcards=None):
    """Rule all's inputs: an input function, so that it sees --omit-from (see omit_from())."""
    return [
        *get_eval_files(),
        *(
            get_attack_summaries()
            if ATTACK_RECIPES
            and not report_parts.omits_any(report_parts.ATTACKS, omit_from())
            else []
        ),
        *expand(
            "results/tables/{stem}.{ext}", stem=table_stems(), ext=["csv", "md", "tex"]
        ),
        *(
            ["results/tables/table5_lca_all_tags.csv"]
            if "table5_lca" in table_stems()
            else []
        ),
        *expand(
            "results/figures/{stem}.{ext}", stem=figure_stems(), ext=["png", "pdf"]
        ),
        *expand("results/tables/fidelity.{ext}", ext=["csv", "md", "tex"]),
        # RanMASK / SAFER: certified accuracy at each radius beside their empirical numbers
        *(
            expand("results/tables/certified_accuracy.{ext}", ext=["csv", "md", "tex"])
            if SMOOTHING_METHODS
            else []
        ),
        "results/summary.md",
    ]
