"""The paper's published numbers (clean copies of its tables), shipped with the package."""

from __future__ import annotations

from importlib import resources

import pandas as pd

TABLES = (
    "table2_asr",
    "table3_runtime_minutes",
    "table4_accuracy",
    "table5_lca",
    "table7_ablation",
)


def path(name: str):
    """Filesystem path of one of the paper's tables (see ``TABLES``)."""
    if name not in TABLES:
        raise KeyError(f"unknown paper table {name!r}; known: {', '.join(TABLES)}")
    return resources.files(__package__) / f"{name}.csv"


def load(name: str) -> pd.DataFrame:
    return pd.read_csv(path(name), keep_default_na=False, na_values=[""])
