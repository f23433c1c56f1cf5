"""What a training job can tell about its own run time: CPU time, the machine's load, GPU time, contention.

A wall time alone depends on the neighbours: on a shared machine a job whose cores other work also uses takes
longer for the same computation (issue 26: PGD-AT at 10.9x BERT under a load of ~7 on 2 cores, 3.1x idle).
:class:`JobTiming` is a Trainer callback that measures, over the training loop (from ``on_train_begin`` to
``on_train_end``, adversarial generation included, the final evaluation not):

- ``cpu_seconds``: the process's user + system CPU time, with its children that have ended (the adversarial
  generation's worker pool is joined in ``on_train_end``, before this callback's: :func:`attach` adds it last);
- ``load_1min_mean`` / ``load_1min_max``: the machine's 1-minute load average, sampled every ``interval`` seconds
  (it counts the job's own threads and the whole machine's: context, not the rule);
- ``others_cpus``: cores kept busy by other processes on the CPUs the job may use (``/proc/stat``'s busy time of
  those CPUs minus the job's own CPU time, per wall second; where ``/proc/stat`` is unreadable, the mean load minus
  the job's own busy cores, over the machine's CPUs);
- ``contended_share``: the share of the CPU the job's threads needed that other work held:
  ``(others_cpus - cores the job left free) / threads``, clipped to [0, 1], with threads = min(torch threads,
  CPUs the job may use). Alone on its cores it is ~0; sharing 2 cores with a load of 7 it is ~0.7. Table 3 marks a
  time whose share exceeds ``timing.contention_share`` (``advtrain.tables.table3_runtime``);
- ``gpu_step_seconds``: on CUDA, the GPU time of the optimiser steps (CUDA events at each step's begin and end;
  the adversarial generation between epochs is not in it); ``None`` on a CPU.

A resumed job measures the part it ran. Nothing here changes what training computes.
"""

from __future__ import annotations

import os
import threading
import time

import torch
from transformers import TrainerCallback

#: /proc/stat's per-CPU columns: user nice system idle iowait irq softirq steal (guest time is inside user).
_IDLE_COLUMNS = (3, 4)  # idle, iowait: the CPU ran nothing
_COLUMNS = 8


def job_cpus() -> list[int]:
    """The CPUs this process may run on (a CPU set of SLURM or taskset narrows them)."""
    if hasattr(os, "sched_getaffinity"):
        return sorted(os.sched_getaffinity(0))
    return list(range(os.cpu_count() or 1))


def cpu_ticks(cpus: list[int], path: str = "/proc/stat") -> tuple[int, int] | None:
    """(busy, total) clock ticks of ``cpus`` since boot from ``/proc/stat``; None where it cannot be read."""
    wanted = {f"cpu{c}" for c in cpus}
    busy = total = 0
    try:
        with open(path, encoding="ascii") as stat:
            for line in stat:
                fields = line.split()
                if fields and fields[0] in wanted:
                    ticks = [int(v) for v in fields[1:_COLUMNS + 1]]
                    total += sum(ticks)
                    busy += sum(ticks) - sum(ticks[i] for i in _IDLE_COLUMNS)
                    wanted.discard(fields[0])
    except (OSError, ValueError):
        return None
    return None if wanted else (busy, total)


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have ended and been waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def contended_share(others_cpus: float, cpus: int, threads: int) -> float:
    """The share of the CPU the job's ``threads`` needed that other work held, on ``cpus`` cores in all.

    Other work first fills the cores the job leaves free (``cpus - threads``); beyond that it takes the job's.
    """
    need = max(1, min(threads, cpus))
    return min(1.0, max(0.0, (others_cpus - (cpus - need)) / need))


class LoadSampler:
    """The 1-minute load average, sampled now and every ``interval`` seconds on a daemon thread until ``stop``."""

    def __init__(self, interval: float):
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _sample(self) -> None:
        if hasattr(os, "getloadavg"):
            self.samples.append(os.getloadavg()[0])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> LoadSampler:
        self._sample()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


class JobTiming(TrainerCallback):
    """Measures the training loop's wall, CPU and GPU time and the machine's load (module docstring)."""

    def __init__(self, interval: float = 5.0):
        self.interval = interval
        self.record: dict | None = None
        self._events: list[tuple] = []
        self._gpu_seconds = 0.0
        self._gpu_steps = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._cpus = job_cpus()
        self._cuda = args.device.type == "cuda"
        self._ticks = cpu_ticks(self._cpus)
        self._cpu = own_cpu_seconds()
        self._sampler = LoadSampler(self.interval).start()
        self._start = time.perf_counter()

    def on_step_begin(self, args, state, control, **kwargs):
        if self._cuda:
            begin = torch.cuda.Event(enable_timing=True)
            begin.record()
            self._events.append((begin, torch.cuda.Event(enable_timing=True)))

    def on_step_end(self, args, state, control, **kwargs):
        if self._cuda and self._events:
            self._events[-1][1].record()
            if len(self._events) >= 256:  # resolve the older steps' events (long finished) to bound memory
                self._resolve_gpu_time()

    def _resolve_gpu_time(self) -> None:
        for begin, end in self._events:
            end.synchronize()
            self._gpu_seconds += begin.elapsed_time(end) / 1000.0
            self._gpu_steps += 1
        self._events.clear()

    def on_train_end(self, args, state, control, **kwargs):
        wall = time.perf_counter() - self._start
        cpu = own_cpu_seconds() - self._cpu
        self._sampler.stop()
        ticks = cpu_ticks(self._cpus)
        if self._cuda:
            self._resolve_gpu_time()
        threads = torch.get_num_threads()
        loads = self._sampler.samples
        own_cpus = cpu / wall if wall > 0 else 0.0
        load_mean = sum(loads) / len(loads) if loads else None
        if self._ticks is not None and ticks is not None and wall > 0:
            busy = (ticks[0] - self._ticks[0]) / os.sysconf("SC_CLK_TCK")
            others, cpus, source = max(0.0, busy / wall - own_cpus), len(self._cpus), "proc_stat"
        elif load_mean is not None:
            # The load average is the whole machine's: compare it with the machine's CPUs.
            others, cpus, source = max(0.0, load_mean - own_cpus), os.cpu_count() or 1, "loadavg"
        else:
            others, cpus, source = None, len(self._cpus), None
        self.record = {
            "wall_seconds": wall,
            "cpu_seconds": cpu,
            "cpus": len(self._cpus),
            "threads": threads,
            "own_cpus": own_cpus,
            "load_1min_mean": load_mean,
            "load_1min_max": max(loads) if loads else None,
            "load_samples": len(loads),
            "others_cpus": others,
            "contended_share": None if others is None else contended_share(others, cpus, threads),
            "contention_source": source,
            "gpu_step_seconds": self._gpu_seconds if self._cuda else None,
            "gpu_steps": self._gpu_steps if self._cuda else None,
        }


def attach(trainer, interval: float = 5.0) -> JobTiming:
    """Add a :class:`JobTiming` as the trainer's last callback, so that its ``on_train_end`` runs after the others'
    (the input adversary's joins its worker processes there, and their CPU time then counts)."""
    timing = JobTiming(interval)
    trainer.add_callback(timing)
    return timing
