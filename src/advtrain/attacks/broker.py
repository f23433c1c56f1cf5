"""The query broker: one thread that runs the model queries of many attack workers as a few large forwards.

Workers (threads of :func:`advtrain.attacks.concurrent.attack_all`) run one at a time: only the worker holding the
*baton* runs. A worker that queries a model (a :class:`~advtrain.attacks.services.Service`) hands its texts to the
:class:`QueryBroker` and the baton on, after saving the global random generators' state
(:mod:`advtrain.attacks.rng`), which it puts back when its rows are ready and it holds the baton again. The broker
waits until half the live workers wait on it (:data:`FILL`; or a full forward's worth of texts is pending), then runs
their texts as a few large forwards and hands each worker its rows, while the other half go on searching.

The broker computes each distinct tokenisation once, so candidates that tokenise alike get the same logits, as they
do in one batch of a one-at-a-time run. Texts are sorted by length before they are cut into forwards of at most
``batch_tokens`` padded tokens (:func:`chunks`; little padding). A forward that fails is retried request by request,
so only the request that fails gets the error.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Sequence

from advtrain.attacks.rng import rng_state, set_rng_state
from advtrain.attacks.services import CHARS_PER_TOKEN, Service

#: The broker runs the pending queries once this share of the live workers waits on it (or a full forward's worth):
#: the forwards of one half of the workers then run while the other half searches (Python, one worker at a time),
#: on a second core or beside the GPU, instead of every forward waiting for the slowest search step.
FILL = 0.5


def chunks(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Positions sorted by length, cut so that each chunk's rows x longest row stays within ``budget`` tokens."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out, current = [], []
    for i in order:
        if current and (len(current) + 1) * lengths[i] > budget:
            out.append(current)
            current = []
        current.append(i)
    if current:
        out.append(current)
    return out


class _Request:
    __slots__ = ("service", "texts", "chars", "rows", "error", "done")

    def __init__(self, service: Service, texts: list[str]):
        self.service, self.texts = service, texts
        self.chars = sum(len(t) for t in texts)
        self.rows = self.error = None
        self.done = False


# ------------------------------------------------------------------------------------------------ the broker
class QueryBroker:
    """Gathers the pending requests of all workers into shared forwards (see the module docstring).

    Workers call :meth:`query` while holding the baton (:meth:`acquire`); the broker's thread serves the pending
    requests when :data:`FILL` of the live workers wait on it, or when ``batch_tokens`` worth of texts are pending.
    """

    def __init__(self, batch_tokens: int = 8192):
        if batch_tokens < 1:
            raise ValueError(f"batch_tokens must be at least 1; got {batch_tokens}")
        self.batch_tokens = int(batch_tokens)
        self._cond = threading.Condition()
        self._baton = threading.Lock()
        self._pending: list[_Request] = []
        self._live = 0
        self._stop = False
        self._thread: threading.Thread | None = None

    # -- lifecycle
    def __enter__(self):
        self._thread = threading.Thread(target=self._serve_forever, name="query-broker", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join()

    def expect(self, workers: int) -> None:
        """Count ``workers`` as live before they start, so the first forwards wait for all of them."""
        with self._cond:
            self._live += workers

    def worker_done(self) -> None:
        with self._cond:
            self._live -= 1
            self._cond.notify_all()

    # -- worker side
    def acquire(self) -> None:
        self._baton.acquire()

    def release(self) -> None:
        self._baton.release()

    def query(self, service: Service, texts: Sequence[str]):
        """Rows of ``service`` for ``texts``, computed with the other workers' pending texts. Call with the baton."""
        request = _Request(service, [str(t) for t in texts])
        if not request.texts:
            import torch

            return torch.empty(0)
        with self._handed_on():
            with self._cond:
                self._pending.append(request)
                self._cond.notify_all()
                while not request.done:
                    self._cond.wait()
        if request.error is not None:
            raise request.error
        return request.rows

    @contextlib.contextmanager
    def outside(self):
        """Hand the baton on while the caller waits for something other than the broker (A2T's batched gradients,
        :mod:`advtrain.attacks.concurrent`); meanwhile the caller does not count as a worker the broker waits for."""
        with self._cond:
            self._live -= 1
            self._cond.notify_all()
        try:
            with self._handed_on():
                yield
        finally:
            with self._cond:
                self._live += 1

    @contextlib.contextmanager
    def _handed_on(self):
        # The generators' state is the worker's own stream: saved while the others draw, put back after.
        state = rng_state()
        self._baton.release()
        try:
            yield
        finally:
            self._baton.acquire()
            set_rng_state(state)

    # -- broker side
    def _ready(self) -> bool:
        if not self._pending:
            return False
        if len(self._pending) >= self._live * FILL:  # (half) the live workers wait on the broker
            return True
        return sum(r.chars for r in self._pending) // CHARS_PER_TOKEN >= self.batch_tokens

    def _serve_forever(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not self._ready():
                    self._cond.wait()
                if self._stop and not self._pending:
                    return
                batch, self._pending = self._pending, []
            by_service = defaultdict(list)
            for request in batch:
                by_service[request.service].append(request)
            for service, requests in by_service.items():
                try:
                    self._serve(service, requests)
                except BaseException:
                    # Serve each request alone, so that only the one that fails (a bad text, a batch too large for
                    # the device) gets the error; the broker itself keeps serving.
                    for request in requests:
                        try:
                            self._serve(service, [request])
                        except BaseException as exc:
                            request.error = exc
            with self._cond:
                for request in batch:
                    request.done = True
                self._cond.notify_all()

    def _serve(self, service: Service, requests: list[_Request]) -> None:
        import torch

        start = time.perf_counter()
        rows = batched_rows(service, [t for r in requests for t in r.texts], self.batch_tokens)
        at = 0
        for request in requests:
            request.rows = torch.stack(rows[at: at + len(request.texts)])
            at += len(request.texts)
        service.requests += len(requests)
        service.seconds += time.perf_counter() - start


def batched_rows(service: Service, texts: Sequence[str], batch_tokens: int) -> list:
    """``service``'s row for each of ``texts``, as the broker computes its pending texts: each distinct tokenisation
    once, sorted by length and cut into forwards of at most ``batch_tokens`` padded tokens (:func:`chunks`)."""
    keyed = service.keys(texts)
    row_of: dict = {}
    distinct, lengths = [], []
    for text, (key, length) in zip(texts, keyed, strict=True):
        if key not in row_of:
            row_of[key] = len(distinct)
            distinct.append(text)
            lengths.append(length)
    rows: list = [None] * len(distinct)
    for chunk in chunks(lengths, batch_tokens):
        out = service.forward([distinct[i] for i in chunk])
        if len(out) != len(chunk):
            raise RuntimeError(f"{service.name}: {len(out)} rows for {len(chunk)} texts")
        for i, row in zip(chunk, out, strict=True):
            rows[i] = row
        service.batch_sizes.append(len(chunk))
    return [rows[row_of[key]] for key, _ in keyed]
