"""Job logs capture everything a script prints, including output of handlers bound before the redirect."""

import subprocess
import sys


def test_redirect_captures_prints_library_loggers_and_tracebacks(tmp_path):
    log = tmp_path / "logs" / "job.log"
    script = f"""
import logging, sys
handler_bound_early = logging.StreamHandler()  # holds the original stderr, as library loggers do
early = logging.getLogger("early"); early.addHandler(handler_bound_early)
from advtrain.logs import redirect_to
redirect_to({str(log)!r})
print("printed")
early.warning("from an early handler")
raise SystemExit("failure message")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stdout == "" and proc.stderr == ""
    text = log.read_text()
    for expected in ("printed", "from an early handler", "failure message"):
        assert expected in text
