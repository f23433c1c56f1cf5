"""Progress of an attack run (an attack shard, an epoch's adversarial-example generation): counts and time left.

An attack run can go for many minutes between its first and last line. :class:`AttackProgress` counts the finished
examples (succeeded, failed, skipped, model queries) and reports them with the elapsed time and the time remaining
(at this run's rate so far):

- in the log: a plain line every :data:`LINE_SECONDS` seconds or every :data:`LINE_SHARE` of the examples, whichever
  comes first, and a last line at the end (the workflow's logs are files: a bar's carriage returns would bury them);
- on a terminal (stderr is a TTY): a tqdm bar with the same counts instead of the periodic lines.

It only observes: it is fed the results the run produces anyway (``attack_all``'s ``on_result``).
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

#: Seconds between two progress lines in a log.
LINE_SECONDS = 30.0
#: Share of the examples between two progress lines in a log (5%: at most ~20 lines).
LINE_SHARE = 0.05
KINDS = ("Successful", "Failed", "Skipped")


def duration(seconds: float) -> str:
    """``1h02m03s``, ``4m05s``, ``6s``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def result_kind(result) -> str:
    """TextAttack's ``SuccessfulAttackResult`` -> ``Successful`` (read by name: no TextAttack import here)."""
    name = type(result).__name__
    return name[: -len("AttackResult")] if name.endswith("AttackResult") else name


class AttackProgress:
    """Counts finished examples of ``total`` (``done`` of them finished before, e.g. read from a checkpoint).

    ``label`` starts every line (``[attack] shard 1 of 4``). ``bar``: a tqdm bar instead of the periodic lines
    (None: when ``stream`` is a terminal). ``stream`` (default: ``sys.stderr`` when writing) and ``clock`` are
    for tests.
    """

    def __init__(self, label: str, total: int, done: int = 0, *, bar: bool | None = None, stream=None,
                 line_seconds: float = LINE_SECONDS, line_share: float = LINE_SHARE,
                 clock: Callable[[], float] = time.monotonic):
        self.label, self.total, self.resumed = label, int(total), int(done)
        self.counts = dict.fromkeys(KINDS, 0)
        self.queries = 0
        self._stream, self._clock = stream, clock
        self._start = self._last_time = clock()
        self._line_seconds = line_seconds
        self._line_examples = max(1, math.ceil(line_share * max(self.total - self.resumed, 1)))
        self._last_done, self._wrote = self.done, False
        if bar is None:
            bar = self._out().isatty() if hasattr(self._out(), "isatty") else False
        self._bar = None
        if bar:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, initial=self.resumed, desc=label, unit="ex", file=self._out(),
                             dynamic_ncols=True)

    # -- counting
    @property
    def done(self) -> int:
        return self.resumed + sum(self.counts.values())

    def add(self, kind: str, queries: int = 0) -> None:
        """One more finished example: its result type (Successful, Failed, Skipped) and model queries."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.queries += int(queries)
        now = self._clock()
        if self._bar is not None:
            self._bar.set_postfix_str(self._counts_text(), refresh=False)
            self._bar.update(1)
        elif self.done - self._last_done >= self._line_examples or now - self._last_time >= self._line_seconds:
            self._write(self.line(now))
            self._last_done, self._last_time, self._wrote = self.done, now, True

    def on_result(self, key, result) -> None:
        """``attack_all``'s ``on_result``: counts a TextAttack ``AttackResult``."""
        self.add(result_kind(result), result.perturbed_result.num_queries)

    def close(self) -> None:
        """The last line, bar or not (unless the last periodic line already said it)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if not (self._wrote and self._last_done == self.done):
            self._write(self.line(self._clock()))
            self._wrote, self._last_done = True, self.done

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- reporting
    def _counts_text(self) -> str:
        return (f"succeeded {self.counts['Successful']}, failed {self.counts['Failed']}, "
                f"skipped {self.counts['Skipped']}, {self.queries:,} queries")

    def remaining(self, now: float) -> float | None:
        """Seconds left at this run's rate so far (None before its first example)."""
        fresh = self.done - self.resumed
        if not fresh:
            return None
        return (now - self._start) / fresh * (self.total - self.done)

    def line(self, now: float) -> str:
        left = self.remaining(now)
        resumed = f" ({self.resumed} from the checkpoint)" if self.resumed else ""
        return (f"{self.label}: {self.done}/{self.total} examples{resumed}, {self._counts_text()}; "
                f"elapsed {duration(now - self._start)}, remaining {'?' if left is None else duration(left)}")

    def _out(self):
        return self._stream if self._stream is not None else sys.stderr

    def _write(self, line: str) -> None:
        print(line, file=self._out(), flush=True)
