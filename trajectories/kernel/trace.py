"""Tracing: a pure step ``fn(*state, *params) -> (*state', *records)`` becomes an ATen graph.

``make_fx`` with torch's core-ATen decompositions runs ``fn`` once on a batch of :data:`BATCH` runs. The
batch size is a prime that no task or parameter axis will equal, so the lowering can tell the run axis
(axis 0 of size BATCH) from the small axes it scalarises. A step that cannot be traced, or whose state
changes dtype or shape, raises :class:`Unsupported`; the engine then runs it eagerly in torch.
"""
from __future__ import annotations

import threading

import torch

from .ir import FLOATS

BATCH = 7919
# FX keeps its tracing state in globals: two make_fx calls at once (the page computes two methods side by side)
# corrupt each other ("CURRENT_PATCHER is None"), and a torch.compile'd function refuses to run while another
# thread traces. Everything that traces holds this lock (trajectories/runners.py's compiled calls too).
FX_LOCK = threading.RLock()


class Unsupported(RuntimeError):
    """The traced step uses something the kernel generator does not handle (the engine falls back to torch)."""


class Traced:
    def __init__(self, fn, state: list[torch.Tensor], params: list[torch.Tensor]):
        from torch._decomp import core_aten_decompositions      # imports torch._dynamo: ~6 s, so only here
        from torch.fx.experimental.proxy_tensor import make_fx

        ex = [_example(t) for t in list(state) + list(params)]
        try:
            with FX_LOCK:
                gm = make_fx(fn, decomposition_table=core_aten_decompositions(), tracing_mode="real")(*ex)
        except Exception as e:   # a step that cannot be traced at all
            raise Unsupported(f"tracing failed: {e}") from e
        gm.graph.eliminate_dead_code()
        self.graph = gm
        self.n_state, self.n_params = len(state), len(params)
        self.in_dtypes = [t.dtype for t in list(state) + list(params)]
        self.in_shapes = [tuple(t.shape[1:]) for t in list(state) + list(params)]
        outs = list(next(n for n in gm.graph.nodes if n.op == "output").args[0])
        vals = [o.meta["val"] if isinstance(o, torch.fx.Node) else None for o in outs]
        self.out_dtypes = [v.dtype for v in vals]
        self.out_shapes = [tuple(v.shape[1:]) for v in vals]
        self.n_records = len(outs) - self.n_state
        for i in range(self.n_state):
            if self.out_dtypes[i] != self.in_dtypes[i] or self.out_shapes[i] != self.in_shapes[i]:
                raise Unsupported(f"state leaf {i} changes from {self.in_dtypes[i]}{list(self.in_shapes[i])} "
                                  f"to {self.out_dtypes[i]}{list(self.out_shapes[i])}")


def _example(t: torch.Tensor) -> torch.Tensor:
    shape = (BATCH,) + tuple(t.shape[1:])
    if t.dtype in FLOATS:
        return torch.rand(shape, dtype=t.dtype) + 0.5
    return torch.ones(shape, dtype=t.dtype)
