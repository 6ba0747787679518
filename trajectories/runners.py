"""Runners: one group of runs advanced by one backend, owning its buffers.

A group's step in flat form (:class:`Flat`) is the same for every backend; a runner holds the state,
parameters and record buffers in the form its backend needs and advances them by a chunk of steps:

* :class:`CRunner` — numpy buffers, the C kernel on ranges of runs from several threads;
* :class:`TritonRunner` — tensors on the device, one Triton launch per chunk for all runs;
* :class:`TorchRunner` — tensors on the device, the step called once per step (eager or ``torch.compile``).

The engine drives all runners alike: ``ranges`` → ``advance`` per range → ``settled`` → ``finish`` → ``collect``.
"""
from __future__ import annotations

import contextlib
import math
import threading

import numpy as np
import torch
from torch.utils import _pytree as pytree

from . import kernel as kernel_mod
from .kernel import trace as trace_mod

# per-run state the Result is built from: position, alive, the step it turned NaN or blew up (dstep) and whether
# it was NaN (dnan), the first step within TARGET_EPS of a global minimiser (hit), the tail's box (lo, hi)
RUN_STATE = ("theta", "alive", "dstep", "dnan", "hit", "lo", "hi")


class Flat:
    """A group's step over flat leaf lists: ``flat(*state, *params) -> (*state', *records)``."""

    def __init__(self, step, state, params):
        self.step = step
        self.state_spec = pytree.tree_structure(state)
        self.param_spec = pytree.tree_structure(params)
        self.n_state = len(pytree.tree_leaves(state))
        self.record_names = None

    def __call__(self, *leaves):
        state = pytree.tree_unflatten(list(leaves[:self.n_state]), self.state_spec)
        params = pytree.tree_unflatten(list(leaves[self.n_state:]), self.param_spec)
        new, rec = self.step(state, params)
        self.record_names = list(rec)
        return tuple(pytree.tree_leaves(new)) + tuple(rec.values())

    @staticmethod
    def layout(tree):
        return tuple((str(x.dtype), tuple(x.shape[1:])) for x in pytree.tree_leaves(tree)) + \
            (str(pytree.tree_structure(tree)),)

    def state_names(self):
        paths = pytree.tree_flatten_with_path(pytree.tree_unflatten(list(range(self.n_state)), self.state_spec))[0]
        return [".".join(str(getattr(k, "key", k)) for k in p) for p, _ in paths]


class Runner:
    backend = ""

    def __init__(self, grp, flat: Flat, state, params, n_rec, cfg):
        self.grp, self.flat, self.n_rec, self.cfg = grp, flat, n_rec, cfg
        self.B = state["theta"].shape[0]
        leaves, pleaves = pytree.tree_leaves(state), pytree.tree_leaves(params)
        # record layout from one eager evaluation on the first run (cheap, and independent of backend)
        with torch.no_grad():
            probe = flat(*[x[:1] for x in leaves], *[x[:1] for x in pleaves])
        self.record_names = flat.record_names
        self.rec_shapes = [tuple(r.shape[1:]) for r in probe[flat.n_state:]]
        self.rec_dtypes = [r.dtype for r in probe[flat.n_state:]]
        self.names = flat.state_names()
        self.state, self.params, self.records = self._buffers(leaves, pleaves)
        self.last_theta = self._copy(self.state[self.names.index("theta")])

    # -- what a backend provides ------------------------------------------------------------------
    def _buffers(self, leaves, pleaves):
        """Device tensors: state and parameters as given, records filled with NaN."""
        recs = [torch.full((self.B, self.n_rec) + s, float("nan") if d.is_floating_point else 0, dtype=d,
                           device=leaves[0].device) for s, d in zip(self.rec_shapes, self.rec_dtypes)]
        return [x.contiguous() for x in leaves], [x.contiguous() for x in pleaves], recs

    def ranges(self, n_threads):
        return [(0, self.B)]

    def advance(self, lo, hi, t0, n):
        raise NotImplementedError

    @staticmethod
    def _copy(x):
        return x.copy() if isinstance(x, np.ndarray) else x.clone()

    @staticmethod
    def _numpy(x):
        return x if isinstance(x, np.ndarray) else x.detach().cpu().numpy()

    # -- shared -----------------------------------------------------------------------------------
    def settled(self, tol=1e-3) -> bool:
        """Every live run moved less than ``tol`` since the last check (computed where the state lives)."""
        th = self.state[self.names.index("theta")]
        alive = self.state[self.names.index("alive")] > 0
        moved = abs(th - self.last_theta).max(-1)
        moved = moved if isinstance(moved, np.ndarray) else moved.values
        self.last_theta = self._copy(th)
        return bool((~alive | (moved < tol)).all())

    def finish(self, steps_run):
        """Record the final step (a throw-away extra step on a copy) or, after an early exit, carry the
        last recorded position and losses forward (the runs had stopped moving)."""
        rec, T = self.cfg.record_every, self.cfg.steps
        if steps_run == T and T % rec == 0:
            saved = [self._copy(x) for x in self.state]
            self.advance(0, self.B, T, 1)
            self.state = saved
        elif steps_run < T:
            last = (steps_run - 1) // rec
            for buf, name in zip(self.records, self.record_names):
                if name in ("theta", "loss"):
                    buf[:, last + 1:] = buf[:, last:last + 1]

    def collect(self, S):
        V = self.B // S
        out = {}
        for name, x in zip(self.names, self.state):
            if name in RUN_STATE:
                arr = self._numpy(x)
                out["state." + name] = arr.reshape((V, S) + arr.shape[1:])
        for name, buf in zip(self.record_names, self.records):
            arr = self._numpy(buf)
            out[name] = arr.reshape((V, S) + arr.shape[1:])
        return out


class CRunner(Runner):
    backend = "c"

    def __init__(self, grp, flat, state, params, n_rec, cfg, kernel):
        self.kernel = kernel
        super().__init__(grp, flat, state, params, n_rec, cfg)

    def _buffers(self, leaves, pleaves):
        st = [np.ascontiguousarray(x.detach().cpu().numpy()) for x in leaves]
        pa = [np.ascontiguousarray(x.detach().cpu().numpy()) for x in pleaves]
        recs = [np.full((self.B, self.n_rec) + s, np.nan if d.is_floating_point else 0, dtype=kernel_mod.NP[d])
                for s, d in zip(self.rec_shapes, self.rec_dtypes)]
        return st, pa, recs

    def ranges(self, n_threads):
        parts = max(1, min(n_threads * 2, math.ceil(self.B / 512)))
        step = math.ceil(self.B / parts / self.kernel.width) * self.kernel.width
        return [(lo, min(self.B, lo + step)) for lo in range(0, self.B, step)]

    def advance(self, lo, hi, t0, n):
        arrays = (self.state, self.params, self.records)
        kept = getattr(self, "_tables", None)
        if kept is None or any(a is not b for a, b in zip(kept[0], arrays)):    # finish() swaps the state list
            kept = self._tables = (arrays, self.kernel.tables(*arrays))
        self.kernel.run(*arrays, t0, n, self.cfg.record_every, self.n_rec, lo, hi, tables=kept[1])


class TritonRunner(Runner):
    backend = "triton"
    _LOCK = threading.Lock()     # the interpreter patches triton.language while it runs: one launch at a time

    def __init__(self, grp, flat, state, params, n_rec, cfg, kernel):
        self.kernel = kernel
        super().__init__(grp, flat, state, params, n_rec, cfg)
        self.advance(0, self.B, 0, 0)      # builds the kernel now, so a compile error is a fallback, not a failure

    def advance(self, lo, hi, t0, n):
        with self._LOCK:
            self.kernel.run(self.state, self.params, self.records, t0, n, self.cfg.record_every, self.n_rec)


class TorchRunner(Runner):
    backend = "torch"
    # torch.compile traces a function with FX on its first call, and FX's "tracing now" flag is one global: a
    # compiled function called in another thread meanwhile refuses to run ("FX to symbolically trace a
    # dynamo-optimized function"). Compiled groups therefore call their functions one at a time, under the lock
    # the kernel's own tracing holds (a make_fx in another thread is the same conflict).
    _COMPILED = trace_mod.FX_LOCK

    def __init__(self, grp, flat, state, params, n_rec, cfg, compiled=False):
        super().__init__(grp, flat, state, params, n_rec, cfg)
        self.backend = "compile" if compiled else "torch"
        self.fn = torch.compile(flat, dynamic=False) if compiled else flat
        self.guard = self._COMPILED if compiled else contextlib.nullcontext()

    def advance(self, lo, hi, t0, n):
        rec = self.cfg.record_every
        with torch.no_grad():
            st = self.state
            for s in range(t0, t0 + n):
                with self.guard:
                    out = self.fn(*st, *self.params)
                if s % rec == 0 and s // rec < self.n_rec:
                    for buf, val in zip(self.records, out[self.flat.n_state:]):
                        buf[:, s // rec] = val
                st = list(out[:self.flat.n_state])
            self.state = st
