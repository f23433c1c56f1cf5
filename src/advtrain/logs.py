"""Per-job logs: a workflow script sends everything it prints (progress bars included) to its rule's log."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def redirect_to(path: str | Path) -> None:
    """Send stdout, stderr (and so tracebacks and tqdm bars) and ``logging`` to ``path``."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    stream = open(path, "w", buffering=1, encoding="utf-8")  # noqa: SIM115 - lives as long as the job
    sys.stdout = sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        force=True)
