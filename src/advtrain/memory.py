"""Peak memory of this process, for the benchmarks to print beside their times.

- :func:`peak_rss_mib`: the process's peak resident set since it started (``getrusage``'s ``ru_maxrss``);
- :class:`PeakMemory`: the peak over one block of code, of the resident set (sampled by a thread, since
  ``ru_maxrss`` never goes down and cannot tell two jobs of one process apart) and of GPU memory
  (``torch.cuda.max_memory_allocated``, reset at the start of the block).
"""

from __future__ import annotations

import os
import resource
import sys
import threading

#: Seconds between two samples of the resident set.
SAMPLE_SECONDS = 0.05


def peak_rss_mib() -> float:
    """This process's peak resident set so far, MiB (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def rss_mib() -> float | None:
    """This process's resident set now, MiB (None where neither /proc nor psutil tells)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 2**20


def _cuda():
    torch = sys.modules.get("torch")
    return torch if torch is not None and torch.cuda.is_available() else None


_gpu_peak_mib = 0.0  # the process's GPU peak across PeakMemory's resets


def _gpu_peak() -> float | None:
    global _gpu_peak_mib
    cuda = _cuda()
    if cuda is None:
        return None
    _gpu_peak_mib = max(_gpu_peak_mib, cuda.cuda.max_memory_allocated() / 2**20)
    return _gpu_peak_mib


class PeakMemory:
    """``with PeakMemory() as peak: ...``; then ``peak.rss_mib`` (sampled peak resident set over the block),
    ``peak.gpu_mib`` (peak GPU memory allocated by torch in the block; None without a GPU) and :meth:`text`."""

    def __init__(self, every: float = SAMPLE_SECONDS):
        self.every = every
        self.rss_mib: float | None = None
        self.gpu_mib: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        now = rss_mib()
        if now is not None:
            self.rss_mib = max(self.rss_mib or 0.0, now)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample()

    def __enter__(self):
        if _gpu_peak() is not None:
            _cuda().cuda.reset_peak_memory_stats()
        self._sample()
        self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()
        cuda = _cuda()
        if cuda is not None:
            self.gpu_mib = cuda.cuda.max_memory_allocated() / 2**20

    def figures(self) -> dict:
        return {"peak_rss_mib": None if self.rss_mib is None else round(self.rss_mib, 1),
                "peak_gpu_mib": None if self.gpu_mib is None else round(self.gpu_mib, 1)}

    def text(self) -> str:
        rss = "?" if self.rss_mib is None else f"{self.rss_mib:,.0f}"
        gpu = f", peak GPU {self.gpu_mib:,.0f} MiB" if self.gpu_mib is not None else ""
        return f"peak RSS {rss} MiB{gpu}"


def process_text() -> str:
    """The process's peak resident set (and GPU memory allocated by torch), for a benchmark's last line."""
    gpu = _gpu_peak()
    gpu = f", peak GPU {gpu:,.0f} MiB" if gpu is not None else ""
    return f"process peak RSS {peak_rss_mib():,.0f} MiB (ru_maxrss){gpu}"
