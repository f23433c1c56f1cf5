"""Attack many examples at once in one process, each with TextAttack's own ``Attack.attack``, sharing model forwards.

TextAttack's search works on one example at a time, so the victim (and the sentence-encoder constraint) sees batches
of a few texts and a GPU stays mostly idle. :func:`attack_all` runs ``concurrency`` worker threads; each takes the next
example and runs the recipe's unchanged ``Attack.attack`` on its own copy of the attack (:func:`worker_attack`). Every
victim query and every sentence-encoder call of a worker goes to one :class:`~advtrain.attacks.broker.QueryBroker`,
which waits until half the workers wait on it (or a full forward's worth of texts is pending), then runs their texts
as a few large forwards and hands each worker its rows, while the other half go on searching. A worker that finishes
takes the next example.

What keeps each example's result the one-at-a-time run's:

- Own state per worker. A worker's attack is a fresh ``textattack.Attack`` around a copy of the goal function (query
  count, query budget, model cache) and of the search method (PSO keeps state), with its own transformation and
  constraint caches; the transformation, the constraints and every model are shared (they hold no per-example state,
  only caches of deterministic results).
- Own random streams. Each example is seeded with ``set_seed`` (Python's, NumPy's and torch's *global* generators,
  as TextAttack does), and PSO, A2T's dropout-on gradient and any recipe may draw from them. Only the worker holding
  the *baton* runs; a worker hands the baton on only while it waits for the broker, and then saves the generators'
  state, which it puts back when it holds the baton again (:mod:`advtrain.attacks.rng`). Each example therefore draws
  exactly the stream of a one-at-a-time run, whatever the interleaving. Python's GIL serialises this code anyway; the
  forwards, run by the broker's thread outside the baton, overlap with it.
- Exact query counts. Queries are counted by each worker's goal function before it asks the broker, as before; the
  broker only batches. The worker's goal function hands over all its uncached texts at once (no
  ``model_batch_size`` split), the broker cuts the union into forwards of at most ``batch_tokens`` padded tokens.
- Ties stay ties. The broker computes each distinct tokenisation once, so candidates that tokenise alike get the same
  logits, as they do in one batch of a one-at-a-time run. Texts are sorted by length before they are cut into
  forwards (little padding). A text's logits can still differ from a one-at-a-time run's in the last bits (CPU matrix
  kernels depend on the batch's shape); ``benchmarks/attack_broker.py`` measures how often that changes a record.
- Gradients (A2T's word ranking) run on one thread kept for them (:class:`_GradientBatcher`), on a train-mode twin
  of the model over the same weights (:mod:`advtrain.attacks.gradients`): the broker's forwards of the other
  workers' queries, in eval mode on the model itself, go on meanwhile. The gradients pending at once run as one
  batch, each example drawing its dropout masks from a generator forked from its own stream, over its own positions,
  so its draws are those of its gradient taken alone; the worker hands the baton on while it waits.

Memory: glibc gives each thread that allocates its own malloc arena (up to 8 per core) and keeps what a thread frees
in that arena for its next allocations. A gradient's activations (hundreds of MB at 512 positions) computed on each
of 32 workers' threads left each of their arenas holding a gradient's worth: the A2T training job grew to 12.5 GB on
2 cores (16 arenas). On one gradient thread (and the broker's one thread for forwards) the freed memory is reused
instead (``benchmarks/attack_memory.py``: 11.1 GB -> 2.0 GB, the same records).

A worker whose example raises records the error and goes on with the next example; :func:`attack_all` raises
:class:`AttackErrors` naming every failed example once all the others are done.
"""

from __future__ import annotations

import contextlib
import copy
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence

import numpy as np

from advtrain.attacks.broker import QueryBroker
from advtrain.attacks.services import Service, encoder_service, victim_service
from advtrain.attacks.victim import EnsembleVictim


class AttackErrors(RuntimeError):
    """Some examples raised; ``errors`` maps each one's key to (exception, traceback text)."""

    def __init__(self, errors: dict):
        self.errors = errors
        named = sorted(errors.items(), key=lambda item: str(item[0]))
        lines = [f"{key}: {type(exc).__name__}: {exc}" for key, (exc, _) in named]
        first = next(iter(errors.values()))[1]
        super().__init__(f"{len(errors)} example(s) raised while attacking (the others finished):\n  "
                         + "\n  ".join(lines) + f"\nfirst traceback:\n{first}")


# ------------------------------------------------------------------------------------------------ worker attacks
class _GradientRequest:
    __slots__ = ("text", "generator", "start", "result", "error", "done")

    def __init__(self, text: str, generator):
        self.text, self.generator = text, generator
        self.start = generator.get_state()  # to draw again from the same state if the batch must be split
        self.result = self.error = None
        self.done = threading.Event()


class _GradientBatcher:
    """The workers' gradients (A2T's word ranking), on one thread kept for them (so their activations are freed into
    and reused from one malloc arena, see the module docstring).

    A worker asks with :meth:`gradient` while holding the baton. If the victim's gradient twin is batchable
    (:class:`advtrain.attacks.gradients.GradientTwin`), the worker forks a generator from its own stream, hands the
    baton on (:meth:`QueryBroker.outside`) and waits; the thread takes every gradient pending when it is free and
    runs them as batches of at most ``batch_tokens`` padded tokens, each text drawing its dropout from its own
    generator; the worker's stream then continues from its generator's state, as if it had drawn alone. Otherwise
    the worker keeps the baton and its gradient runs alone from its global stream, as TextAttack's does."""

    def __init__(self, broker: QueryBroker, batch_tokens: int):
        from concurrent.futures import ThreadPoolExecutor

        self._broker, self._batch_tokens = broker, int(batch_tokens)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attack-gradients")
        self._lock = threading.Lock()
        self._pending: list[tuple] = []
        #: Texts per batched gradient (the benchmarks report them beside the forwards').
        self.batch_sizes: list[int] = []

    def gradient(self, wrapper, text: str):
        twin = wrapper.gradient_twin() if hasattr(wrapper, "gradient_twin") else None
        if twin is None or not twin.batchable:
            # The caller holds the baton and waits: torch's global generator is the caller's stream, whichever
            # thread draws from it.
            return self._pool.submit(wrapper.get_grad, text).result()
        request = _GradientRequest(text, twin.fork())
        with self._broker.outside():
            with self._lock:
                self._pending.append((wrapper, request))
            self._pool.submit(self._drain)
            request.done.wait()
        twin.join(request.generator)
        if request.error is not None:
            raise request.error
        return request.result

    def _drain(self) -> None:
        from advtrain.attacks.broker import chunks

        with self._lock:
            pending, self._pending = self._pending, []
        by_wrapper: dict[int, tuple] = {}
        for wrapper, request in pending:
            by_wrapper.setdefault(id(wrapper), (wrapper, []))[1].append(request)
        for wrapper, requests in by_wrapper.values():
            try:
                lengths = wrapper.gradient_twin().lengths([r.text for r in requests])
                batches = [[requests[i] for i in chunk] for chunk in chunks(lengths, self._batch_tokens)]
            except BaseException:  # a text the tokenizer refuses: each alone, so that only it gets the error
                batches = [[request] for request in requests]
            for batch in batches:
                self._serve(wrapper, batch)

    def _serve(self, wrapper, requests: list[_GradientRequest]) -> None:
        try:
            results = wrapper.get_grads([r.text for r in requests], [r.generator for r in requests])
            self.batch_sizes.append(len(requests))
        except BaseException as exc:
            if len(requests) == 1:
                requests[0].error = exc
            else:
                # Each alone from its own start, so that only a text that fails gets the error.
                for request in requests:
                    request.generator.set_state(request.start)
                    self._serve(wrapper, [request])
                return
        else:
            for request, result in zip(requests, results, strict=True):
                request.result = result
        for request in requests:
            request.done.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class _BrokeredVictim:
    """What a worker's goal function calls as its model: queries go to the broker, the rest to the real wrapper."""

    def __init__(self, wrapper, broker: QueryBroker, service: Service, gradients: _GradientBatcher | None = None):
        self._wrapper, self._broker, self._service, self._gradients = wrapper, broker, service, gradients

    def __call__(self, text_input_list):
        return self._broker.query(self._service, text_input_list)

    def get_grad(self, text_input):
        # The worker's random stream drives the dropout TextAttack leaves on (_GradientBatcher). The broker's
        # forwards of the other workers' queries go on meanwhile: the gradient runs on the wrapper's train-mode
        # twin of the model (advtrain.attacks.gradients), which shares the weights and only reads them.
        if self._gradients is None:
            return self._wrapper.get_grad(text_input)
        return self._gradients.gradient(self._wrapper, text_input)

    def __getattr__(self, name):
        return getattr(self._wrapper, name)


def _sentence_encoder_class():
    from textattack.constraints.semantics.sentence_encoders import SentenceEncoder

    return SentenceEncoder


def worker_attack(attack, broker: QueryBroker, services: dict, gradients: _GradientBatcher | None = None):
    """A copy of ``attack`` with its own goal function, search method and caches, whose model queries and
    sentence-encoder calls go to ``broker``; ``services`` maps id(model or constraint) to its :class:`Service`.
    Gradients run on ``gradients`` (None: on the worker's thread)."""
    import lru

    goal = copy.copy(attack.goal_function)
    if goal.use_cache:
        goal._call_model_cache = lru.LRU(goal._call_model_cache.get_size())
    model = attack.goal_function.model
    brokered = _BrokeredVictim(_forward_runner(model), broker, services[id(model)], gradients)
    # A smoothing victim expands each text into its noisy copies before the broker, so the copies of every
    # pending text share its forwards.
    goal.model = model.over(brokered) if isinstance(model, EnsembleVictim) else brokered
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


def _forward_runner(model):
    """The wrapper whose forwards the broker runs: a smoothing victim's inner wrapper (the copies are its texts)."""
    return model.inner if isinstance(model, EnsembleVictim) else model


def _services(attack) -> dict:
    model = attack.goal_function.model
    services = {id(model): victim_service(_forward_runner(model))}
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
        services, gradient_batches = {}, []
    else:
        services = _services(attack)
        queue = list(reversed(jobs))  # pop() takes them in order; only the baton holder pops
        with (QueryBroker(batch_tokens) as broker,
              contextlib.closing(_GradientBatcher(broker, batch_tokens)) as gradients):
            gradient_batches = gradients.batch_sizes
            copies = [worker_attack(attack, broker, services, gradients) for _ in range(workers)]
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
        if gradient_batches:  # texts per batched gradient (A2T's word ranking under the broker)
            stats["gradients"] = {"batches": len(gradient_batches), "texts": int(sum(gradient_batches)),
                                  **batch_size_quantiles(gradient_batches)}
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
