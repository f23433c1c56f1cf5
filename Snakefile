# Reproduction of "Impact of Adversarial Training on Robustness and Generalizability of Language Models"
# (Altinisik et al.). Run: snakemake --cores all --use-conda   (see README.md)
from snakemake.utils import min_version

min_version("9.0")


# Our reader first: it names the file and line of a tab or a duplicate key, and stops a layered config file that
# redefines a method as another kind (workflow/rules/config_files.smk).
include: "workflow/rules/config_files.smk"


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/inputs.smk"
include: "workflow/rules/outputs.smk"
include: "workflow/rules/resources.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/augment.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/attack.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/robustness.smk"
include: "workflow/rules/toy.smk"
include: "workflow/rules/lca.smk"


rule all:
    default_target: True
    input:
        get_final_outputs,


onerror:
    # A failed job can leave empty folders behind (Snakemake makes a benchmark's folder before the job, the trainer
    # its checkpoint folder before the first checkpoint): remove them, so results/ holds only what jobs made.
    for _root in (Path("results/benchmarks"), Path("results/checkpoints")):
        for _folder in sorted(
            _root.glob("**/"), key=lambda p: len(p.parts), reverse=True
        ):
            if _folder.is_dir() and not any(_folder.iterdir()):
                _folder.rmdir()


onsuccess:
    summary = Path("results/summary.md")
    if summary.exists():
        print(
            f"Tables and figures: {summary.resolve()}  (HTML: snakemake --report report.html)"
        )
