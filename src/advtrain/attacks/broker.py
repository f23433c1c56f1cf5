"""Attack many examples at once in one process, each with TextAttack's own ``Attack.attack``, sharing model forwards.

TextAttack's search works on one example at a time, so the victim (and the sentence-encoder constraint) sees batches
of a few texts and a GPU stays mostly idle. :func:`attack_all` runs ``concurrency`` worker threads; each takes the next
example and runs the recipe's unchanged ``Attack.attack`` on its own copy of the attack. Every victim query and every
sentence-encoder call of a worker goes to one :class:`QueryBroker`, which waits until half the workers wait on it
(:data:`FILL`; or a full forward's worth of texts is pending), then runs their texts as a few large forwards and hands
each worker its rows, while the other half go on searching. A worker that finishes takes the next example.

What keeps each example's result the one-at-a-time run's:

- Own state per worker. A worker's attack is a fresh ``textattack.Attack`` around a copy of the goal function (query
  count, query budget, model cache) and of the search method (PSO keeps state), with its own transformation and
  constraint caches; the transformation, the constraints and every model are shared (they hold no per-example state,
  only caches of deterministic results).
- Own random streams. Each example is seeded with ``set_seed`` (Python's, NumPy's and torch's *global* generators,
  as TextAttack does), and PSO, A2T's dropout-on gradient and any recipe may draw from them. Only the worker holding
  the *baton* runs; a worker hands the baton on only while it waits for the broker, and then saves the generators'
  state, which it puts back when it holds the baton again. Each example therefore draws exactly the stream of a
  one-at-a-time run, whatever the interleaving. Python's GIL serialises this code anyway; the forwards, run by the
  broker's thread outside the baton, overlap with it.
- Exact query counts. Queries are counted by each worker's goal function before it asks the broker, as before; the
  broker only batches. The worker's goal function hands over all its uncached texts at once (no
  ``model_batch_size`` split), the broker cuts the union into forwards of at most ``batch_tokens`` padded tokens.
- Ties stay ties. The broker computes each distinct tokenisation once, so candidates that tokenise alike get the same
  logits, as they do in one batch of a one-at-a-time run. Texts are sorted by length before they are cut into
  forwards (little padding). A text's logits can still differ from a one-at-a-time run's in the last bits (CPU matrix
  kernels depend on the batch's shape); ``benchmarks/attack_broker.py`` measures how often that changes a record.
- Gradients (A2T's word ranking) run in the worker, under the broker's model lock, so no forward runs while the
  model is in train mode for them.

A worker whose example raises records the error and goes on with the next example; :func:`attack_all` raises
:class:`AttackErrors` naming every failed example once all the others are done.
"""

from __future__ import annotations

import copy
import random
import sys
import threading
import time
import traceback
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

#: Characters per token, to estimate from the pending texts when a full forward's worth waits.
CHARS_PER_TOKEN = 4
#: The broker runs the pending queries once this share of the live workers waits on it (or a full forward's worth):
#: the forwards of one half of the workers then run while the other half searches (Python, one worker at a time),
#: on a second core or beside the GPU, instead of every forward waiting for the slowest search step.
FILL = 0.5


class AttackErrors(RuntimeError):
    """Some examples raised; ``errors`` maps each one's key to (exception, traceback text)."""

    def __init__(self, errors: dict):
        self.errors = errors
        named = sorted(errors.items(), key=lambda item: str(item[0]))
        lines = [f"{key}: {type(exc).__name__}: {exc}" for key, (exc, _) in named]
        first = next(iter(errors.values()))[1]
        super().__init__(f"{len(errors)} example(s) raised while attacking (the others finished):\n  "
                         + "\n  ".join(lines) + f"\nfirst traceback:\n{first}")


# ------------------------------------------------------------------------------------------------ random streams
def rng_state():
    import torch

    cuda = torch.cuda.get_rng_state() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    return random.getstate(), np.random.get_state(), torch.get_rng_state(), cuda


def set_rng_state(state) -> None:
    import torch

    python, numpy, cpu, cuda = state
    random.setstate(python)
    np.random.set_state(numpy)
    torch.set_rng_state(cpu)
    if cuda is not None:
        torch.cuda.set_rng_state(cuda)


# ------------------------------------------------------------------------------------------------ services
class Service:
    """One model the broker batches for: ``keys`` maps texts to (dedup key, length in tokens); ``forward`` runs a
    chunk of distinct texts and returns one row per text."""

    def __init__(self, name: str, keys: Callable[[list[str]], list[tuple]], forward: Callable[[list[str]], object]):
        self.name, self.keys, self.forward = name, keys, forward
        self.batch_sizes: list[int] = []  # distinct texts per forward
        self.requests = 0
        self.seconds = 0.0


def victim_service(wrapper) -> Service:
    """The victim: texts with the same token ids are one row; a chunk goes through ``wrapper`` (pad to longest).

    The broker's thread tokenises with its own copy of the tokenizer: a fast tokenizer called from two threads at
    once fails ("Already borrowed"), and the workers use the wrapper's (A2T's gradient, TextAttack's word alignment).
    """
    tokenizer = getattr(wrapper, "tokenizer", None)
    if tokenizer is not None:
        wrapper = copy.copy(wrapper)  # the model (and the forward counter) stay shared
        wrapper.tokenizer = tokenizer = copy.deepcopy(tokenizer)

    def keys(texts):
        if tokenizer is None or not callable(tokenizer):
            return [(t, len(t) // CHARS_PER_TOKEN + 2) for t in texts]
        ids = tokenizer(texts, add_special_tokens=True, truncation=True,
                        max_length=tokenizer.model_max_length)["input_ids"]
        return [(tuple(i), len(i)) for i in ids]

    def forward(texts):
        import torch

        out = wrapper(texts)
        return out.detach().cpu() if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))

    return Service("victim", keys, forward)


def encoder_service(constraint) -> Service:
    """A sentence-encoder constraint's encoder: a sentence-transformers model runs each chunk as one ``encode``
    batch; any other encoder (USE) gets the chunk through the constraint's own ``encode``."""
    model = getattr(constraint, "model", None)
    encode = constraint.encode
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and hasattr(model, "max_seq_length"):
        def keys(texts):
            ids = tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
            return [(t, len(i)) for t, i in zip(texts, ids, strict=True)]

        def forward(texts):
            import torch

            return torch.as_tensor(model.encode(texts, batch_size=len(texts), show_progress_bar=False))
    else:
        def keys(texts):
            return [(t, len(t.split()) + 2) for t in texts]

        def forward(texts):
            import torch

            out = encode(texts)
            return out.detach().cpu() if isinstance(out, torch.Tensor) else torch.as_tensor(np.asarray(out))

    return Service(f"encoder:{type(constraint).__name__}", keys, forward)


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
        self.model_lock = threading.RLock()
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
        state = rng_state()
        self._baton.release()
        try:
            with self._cond:
                self._pending.append(request)
                self._cond.notify_all()
                while not request.done:
                    self._cond.wait()
        finally:
            self._baton.acquire()
            set_rng_state(state)
        if request.error is not None:
            raise request.error
        return request.rows

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
        texts = [t for r in requests for t in r.texts]
        keyed = service.keys(texts)
        row_of: dict = {}
        distinct, lengths = [], []
        for text, (key, length) in zip(texts, keyed, strict=True):
            if key not in row_of:
                row_of[key] = len(distinct)
                distinct.append(text)
                lengths.append(length)
        rows: list = [None] * len(distinct)
        for chunk in chunks(lengths, self.batch_tokens):
            with self.model_lock:
                out = service.forward([distinct[i] for i in chunk])
            if len(out) != len(chunk):
                raise RuntimeError(f"{service.name}: {len(out)} rows for {len(chunk)} texts")
            for i, row in zip(chunk, out, strict=True):
                rows[i] = row
            service.batch_sizes.append(len(chunk))
        at = 0
        for request in requests:
            keys = keyed[at: at + len(request.texts)]
            at += len(request.texts)
            request.rows = torch.stack([rows[row_of[key]] for key, _ in keys])
        service.requests += len(requests)
        service.seconds += time.perf_counter() - start


# ------------------------------------------------------------------------------------------------ worker attacks
class _BrokeredVictim:
    """What a worker's goal function calls as its model: queries go to the broker, the rest to the real wrapper."""

    def __init__(self, wrapper, broker: QueryBroker, service: Service):
        self._wrapper, self._broker, self._service = wrapper, broker, service

    def __call__(self, text_input_list):
        return self._broker.query(self._service, text_input_list)

    def get_grad(self, text_input):
        # In the worker (its random stream drives the dropout TextAttack leaves on); no forward meanwhile.
        with self._broker.model_lock:
            return self._wrapper.get_grad(text_input)

    def __getattr__(self, name):
        return getattr(self._wrapper, name)


def _sentence_encoder_class():
    from textattack.constraints.semantics.sentence_encoders import SentenceEncoder

    return SentenceEncoder


def worker_attack(attack, broker: QueryBroker, services: dict):
    """A copy of ``attack`` with its own goal function, search method and caches, whose model queries and
    sentence-encoder calls go to ``broker``; ``services`` maps id(model or constraint) to its :class:`Service`."""
    import lru

    goal = copy.copy(attack.goal_function)
    if goal.use_cache:
        goal._call_model_cache = lru.LRU(goal._call_model_cache.get_size())
    goal.model = _BrokeredVictim(attack.goal_function.model, broker, services[id(attack.goal_function.model)])
    goal.batch_size = sys.maxsize  # one request per call: the broker does the batching
    encoder = _sentence_encoder_class()
    constraints = []
    for constraint in attack.pre_transformation_constraints + attack.constraints:
        if isinstance(constraint, encoder):
            service = services[id(constraint)]
            constraint = copy.copy(constraint)
            constraint.encode = lambda texts, service=service: broker.query(service, texts)
        constraints.append(constraint)
    # The recipe's class (BAE's is a subclass); its __init__ (textattack.Attack's) binds the search method's copy.
    return type(attack)(goal, constraints, attack.transformation, copy.copy(attack.search_method),
                        attack.transformation_cache_size, attack.constraint_cache_size)


def _services(attack) -> dict:
    services = {id(attack.goal_function.model): victim_service(attack.goal_function.model)}
    encoder = _sentence_encoder_class()
    for constraint in attack.constraints:
        if isinstance(constraint, encoder):
            services[id(constraint)] = encoder_service(constraint)
    return services


# ------------------------------------------------------------------------------------------------ running
def attack_one(attack, text: str, label: int, seed: int):
    """One example as TextAttack's ``Attacker`` runs it, with fresh caches and the example's own seed."""
    from textattack.shared import AttackedText
    from textattack.shared.utils import set_seed

    attack.clear_cache()
    set_seed(seed)
    return attack.attack(AttackedText(text), int(label))


def attack_all(attack, jobs: Sequence[tuple], seed_of: Callable[[str, int], int], *, concurrency: int = 1,
               batch_tokens: int = 8192, on_result: Callable | None = None, stats: dict | None = None) -> dict:
    """Attack every ``(key, text, label)`` of ``jobs`` with ``attack``; ``{key: AttackResult}``.

    ``concurrency`` 1 attacks one example after the other on this thread, exactly as TextAttack's ``Attacker`` (model
    queries in batches of the goal function's ``model_batch_size``). More runs that many workers through a
    :class:`QueryBroker` with ``batch_tokens`` padded tokens per forward. ``seed_of(text, label)`` seeds each example.
    ``on_result(key, result)`` is called as each example finishes (one call at a time, in finishing order).
    ``stats``, when given, receives the victim's and encoders' forwards (texts per forward) and the seconds.
    Examples that raise do not stop the others; :class:`AttackErrors` names them at the end.
    """
    import torch

    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1; got {concurrency}")
    if torch.cuda.is_available():
        attack.cuda_()  # as Attacker does
    jobs = list(jobs)
    results, errors = {}, {}
    start = time.perf_counter()
    counted = getattr(attack.goal_function.model, "batch_sizes", None)
    counted_before = len(counted) if counted is not None else 0

    def run(worker, key, text, label):
        try:
            result = attack_one(worker, text, label, seed_of(text, int(label)))
            results[key] = result
            if on_result is not None:
                on_result(key, result)
        except Exception as exc:
            errors[key] = (exc, traceback.format_exc())

    workers = min(concurrency, len(jobs))
    if workers <= 1:
        for key, text, label in jobs:
            run(attack, key, text, label)
        services = {}
    else:
        services = _services(attack)
        queue = list(reversed(jobs))  # pop() takes them in order; only the baton holder pops
        with QueryBroker(batch_tokens) as broker:
            copies = [worker_attack(attack, broker, services) for _ in range(workers)]
            broker.expect(workers)

            def work(mine):
                broker.acquire()
                try:
                    while queue:
                        run(mine, *queue.pop())
                except BaseException as exc:  # not an example's error (those are caught in run): stop this worker
                    errors[threading.current_thread().name] = (exc, traceback.format_exc())
                finally:
                    broker.release()
                    broker.worker_done()

            threads = [threading.Thread(target=work, args=(mine,), name=f"attack-worker-{i}", daemon=True)
                       for i, mine in enumerate(copies)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    for key, _, _ in jobs:
        if key not in results and key not in errors:
            errors[key] = (RuntimeError("not attacked: its worker stopped"), "")
    if stats is not None:
        sizes = counted[counted_before:] if counted is not None else None
        stats.update(_stats(sizes, services, workers, time.perf_counter() - start))
    if errors:
        raise AttackErrors(errors)
    return results


def _stats(victim_sizes, services: dict, workers: int, seconds: float) -> dict:
    """Texts per forward of the victim (counted by the wrapper, so the same in both modes) and of each encoder."""
    out = {"concurrency": max(workers, 1), "seconds": round(seconds, 3)}
    if victim_sizes is not None:
        out["victim"] = {"forwards": len(victim_sizes), "texts": int(sum(victim_sizes)),
                         **batch_size_quantiles(victim_sizes)}
    for service in services.values():
        entry = out.setdefault(service.name, {})
        entry.update({"requests": service.requests, "broker_seconds": round(service.seconds, 3)})
        if service.name != "victim" or victim_sizes is None:
            entry.update({"forwards": len(service.batch_sizes), "texts": int(sum(service.batch_sizes)),
                          **batch_size_quantiles(service.batch_sizes)})
    return out


def batch_size_quantiles(sizes: Sequence[int]) -> dict:
    if not len(sizes):
        return {"median_texts_per_forward": None, "p90_texts_per_forward": None}
    return {"median_texts_per_forward": float(np.median(sizes)),
            "p90_texts_per_forward": float(np.percentile(sizes, 90))}
