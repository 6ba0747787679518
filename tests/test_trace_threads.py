"""Kernel tracing from several threads at once (Explore computes two methods side by side): FX keeps its tracing
state in globals, so traces must take turns (trajectories/kernel/trace.FX_LOCK) or they fail each other."""
import threading

import torch

from trajectories.kernel.trace import Traced


def step_a(x, p):
    return (x - p * torch.tanh(x),)


def step_b(x, p):
    return (x + torch.linalg.norm(x, dim=-1, keepdim=True) * p,)


def test_two_threads_trace_at_once_without_spoiling_each_other():
    errors, barrier = [], threading.Barrier(2)

    def work(fn):
        for _ in range(6):
            barrier.wait()                      # both start tracing at the same moment
            try:
                Traced(fn, [torch.zeros(3, 2)], [torch.ones(3, 1)])
            except Exception as e:
                errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(f,)) for f in (step_a, step_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
