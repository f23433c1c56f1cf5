"""The query broker's mechanics, without TextAttack: batching across workers, random streams, errors, chunking.

The broker on real recipes (records equal to one-at-a-time runs) is tested in tests/unit/test_attacks.py.
"""

from __future__ import annotations

import random
import threading

import numpy as np
import pytest
import torch

from advtrain.attacks import broker as broker_module
from advtrain.attacks.broker import QueryBroker, chunks
from advtrain.attacks.services import Service

pytestmark = pytest.mark.timeout(120)  # a stalled broker fails instead of hanging the suite


def length_service(log: list) -> Service:
    """Rows are each text's length; ``log`` gets the texts of every forward. A text "boom" fails its forward."""

    def keys(texts):
        return [(t, len(t)) for t in texts]

    def forward(texts):
        if "boom" in texts:
            raise ValueError("boom")
        log.append(list(texts))
        return torch.tensor([[float(len(t))] for t in texts])

    return Service("lengths", keys, forward)


def run_workers(n: int, body, batch_tokens: int = 10_000) -> dict:
    """``body(broker, i)`` on n worker threads holding the baton, as attack_all runs them; {i: result or exception}."""
    out = {}
    with QueryBroker(batch_tokens) as broker:
        broker.expect(n)

        def work(i):
            broker.acquire()
            try:
                out[i] = body(broker, i)
            except Exception as exc:
                out[i] = exc
            finally:
                broker.release()
                broker.worker_done()

        threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return out


@pytest.fixture
def wait_for_all(monkeypatch):
    """The broker runs only once every live worker waits (not half of them): forwards become deterministic."""
    monkeypatch.setattr(broker_module, "FILL", 1.0)


def test_pending_queries_of_all_workers_share_one_forward(wait_for_all):
    log: list = []
    service = length_service(log)

    def body(broker, i):
        return [broker.query(service, [f"w{i}-q{q}-" + "x" * k for k in range(5)]).squeeze(1).tolist()
                for q in range(3)]

    out = run_workers(4, body)
    for i in range(4):
        assert out[i] == [[float(len(f"w{i}-q{q}-") + k) for k in range(5)] for q in range(3)]
    assert [len(texts) for texts in log] == [20, 20, 20], "each round: the 5 texts of all 4 workers in one forward"
    assert service.requests == 12


def test_by_default_the_broker_runs_once_half_the_workers_wait():
    log: list = []
    service = length_service(log)
    out = run_workers(4, lambda broker, i: [broker.query(service, [f"w{i}-q{q}"]).item() for q in range(3)])
    assert out == {i: [float(len(f"w{i}-q0"))] * 3 for i in range(4)}
    assert broker_module.FILL == 0.5 and len(log[0]) >= 2, "the first forward waits for half of the 4 workers"
    assert sum(map(len, log)) == 12


def test_same_key_is_computed_once_and_long_batches_are_cut(wait_for_all):
    log: list = []
    service = length_service(log)
    out = run_workers(3, lambda broker, i: broker.query(service, ["same", "same", "x" * (10 + i)]).tolist(),
                      batch_tokens=24)
    assert out[0] == [[4.0], [4.0], [10.0]]
    assert sorted(t for texts in log for t in texts) == ["same", "x" * 10, "x" * 11, "x" * 12]
    assert all(len(texts) * max(map(len, texts)) <= 24 for texts in log)


def test_each_worker_draws_its_own_random_stream():
    """Workers seed the global generators and draw from them between queries, interleaved by the broker; each must
    draw exactly what it draws alone (PSO and A2T's dropout draw from these generators)."""
    service = length_service([])

    def draws(broker, i):
        random.seed(i)
        np.random.seed(i)
        torch.manual_seed(i)
        seen = []
        for q in range(4):
            seen.append((random.random(), float(np.random.rand()), float(torch.rand(1))))
            if broker is not None:
                broker.query(service, [f"{i}" * (q + 1)])
        return seen

    alone = {i: draws(None, i) for i in range(4)}
    together = run_workers(4, draws)
    assert together == alone
    assert len({tuple(v) for v in alone.values()}) == 4, "different seeds, different streams"


def test_a_failing_query_fails_only_its_worker():
    service = length_service([])

    def body(broker, i):
        return broker.query(service, ["boom" if i == 1 else "ok"]).tolist()

    out = run_workers(3, body)
    assert isinstance(out[1], ValueError)
    assert out[0] == out[2] == [[2.0]]


def test_workers_that_finish_early_do_not_hold_up_the_others():
    service = length_service([])

    def body(broker, i):
        return [broker.query(service, ["a" * i]).item() for _ in range(i)]  # worker 0 never queries

    assert run_workers(4, body) == {i: [float(i)] * i for i in range(4)}


def test_chunks_are_sorted_by_length_and_within_the_budget():
    lengths = [5, 30, 7, 7, 100, 6, 12]
    parts = chunks(lengths, budget=30)
    assert sorted(i for part in parts for i in part) == list(range(len(lengths)))
    assert [lengths[i] for part in parts for i in part] == sorted(lengths)
    for part in parts:
        assert len(part) == 1 or len(part) * max(lengths[i] for i in part) <= 30
    assert [4] in parts, "a text longer than the budget goes alone"
