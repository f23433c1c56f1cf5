"""advtrain.memory: the peak memory the benchmarks print beside their times."""

from __future__ import annotations

import time

import numpy as np

from advtrain.memory import PeakMemory, peak_rss_mib, process_text, rss_mib


def test_peak_over_a_block_sees_memory_freed_before_its_end():
    before = rss_mib()
    with PeakMemory(every=0.01) as peak:
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        time.sleep(0.1)
        del block
    assert peak.rss_mib >= before + 48  # the sampled peak, though the block freed it
    assert peak_rss_mib() >= peak.rss_mib - 1  # ru_maxrss: the process's peak so far
    assert peak.figures()["peak_rss_mib"] == round(peak.rss_mib, 1)
    assert peak.text().startswith("peak RSS ") and "(ru_maxrss)" in process_text()
