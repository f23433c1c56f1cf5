# The 1-D toy study of section 3: a single neuron fitted to y = theta x + noise with OLS, PGD-AT and LDS
# (Table 1's closed forms against trained estimates, Figure 1's distributions over runs). CPU, seconds.


rule toy_study:
    output:
        runs="results/toy/runs.csv",
        table_csv=report(
            "results/tables/table1_toy.csv",
            caption="../report/table1_toy.rst",
            category="Toy study",
        ),
        table_md="results/tables/table1_toy.md",
        table_tex="results/tables/table1_toy.tex",
        figure_png=report(
            "results/figures/figure1_toy.png",
            caption="../report/figure1_toy.rst",
            category="Toy study",
        ),
        figure_pdf="results/figures/figure1_toy.pdf",
    log:
        "logs/toy/toy_study.log",
    conda:
        "../../envs/report.yaml"
    params:
        theta=config["toy"]["theta"],
        noise_sigmas=config["toy"]["noise_sigmas"],
        epochs=config["toy"]["epochs"],
        switch_epoch=config["toy"]["switch_epoch"],
        lr=config["toy"]["lr"],
        runs=config["toy"]["runs"],
        n_points=config["toy"]["n_points"],
        steps=config["toy"]["steps"],
        epsilon=config["toy"]["epsilon"],
        step_size=config["toy"]["step_size"],
        init_std=config["toy"]["init_std"],
        x_low=config["toy"]["x_low"],
        x_high=config["toy"]["x_high"],
        update_mode=config["toy"]["update_mode"],
        seed=config["toy"]["seed"],
    script:
        "../scripts/toy.py"
