"""Per-job logs: a workflow script sends everything it prints (progress bars included) to its rule's log."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path


def redirect_to(path: str | Path) -> None:
    """Send stdout and stderr to ``path`` at the file-descriptor level.

    Handlers that libraries bound to the old streams at import time (transformers' logger, tqdm bars) and output
    from C extensions then land in the log too, not in Snakemake's own output.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        force=True)
