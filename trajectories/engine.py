"""The lock-step engine: every method x every start x every setting advances together, one batch.

``simulate(landscape, methods, starts, steps, ...) -> Result``.

Runs are grouped by method (and by the values of its *static* hyperparameters); a group is one
batch of ``variants x starts`` runs with per-run hyperparameters, learning rate, task weights and RNG key.
One step of a group is a pure function (``_group_step``) of flat state and parameter tensors:

    L, G  = landscape.evaluate(theta, w, scale)
    d     = method.step(G, L, state, hp, ctx)          (native direction)
    d     = post-processing of the pipeline (x K, clip1)
    theta = outer optimiser step (Adam / SGD)
    a run whose theta turns non-finite or leaves |theta| < 1e6 is frozen where it was and flagged

The same function runs two ways, with the same results up to float rounding:

* ``backend="c"`` (the default on CPU): traced once into a fused C loop (``trajectories/kernel.py``)
  that keeps each run's state in registers for all steps; groups and run ranges run on threads;
* ``backend="torch"``: eager torch on any device (``"compile"`` wraps it in ``torch.compile``; on a GPU
  this is the fast path).
"""
from __future__ import annotations

import math
import os
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils import _pytree as pytree

import optimizers
from optimizers import outer as outer_mod
from optimizers import rng
from optimizers.base import Context, clip1, norms

from . import kernel as kernel_mod
from . import metrics
from .config import Config

TARGET_EPS = metrics.TARGET_EPS   # "reached an optimum": within this distance of a global minimiser (in theta)

DIVERGE_LIMIT = 1e6      # |theta| beyond this counts as diverged
CHUNK = 1000             # steps between progress reports / cancellation checks
# per-run state the Result is built from: position, alive, the step it turned NaN or blew up (dstep) and whether
# it was NaN (dnan), the first step within TARGET_EPS of a global minimiser (hit), the tail's box (lo, hi)
RUN_STATE = ("theta", "alive", "dstep", "dnan", "hit", "lo", "hi")
BYTES_LIMIT = int(float(os.environ.get("GRADSCAPE_MAX_BYTES", 6 * 2 ** 30)))


class Cancelled(RuntimeError):
    pass


@dataclass
class _Group:
    method: optimizers.Method
    static: tuple
    rows: list            # result rows (variant indices) in this group
    variants: list
    fallback: str = ""    # why the C kernel was not used (the group then ran in eager torch)


def _dtype(name: str) -> torch.dtype:
    return {"float32": torch.float32, "float64": torch.float64}[name]


def _records_wanted(cfg: Config, method) -> list[str]:
    names = ["theta"] if "positions" in cfg.record else []
    if "losses" in cfg.record:
        names.append("loss")
    if "diagnostics" in cfg.record:
        names += ["cos", "gms", "curv", "gnorm", "grad", "dir", "weights"]
        names += [a for a in method.aux if a != "weights"]
    return names


def diagnostics(G: torch.Tensor, d: torch.Tensor) -> dict:
    """The "tragic triad" of PCGrad (Yu et al. 2020) per step, averaged over task pairs for K > 2.

    cos = g_i.g_j / (|g_i||g_j|);  gms = 2|g_i||g_j| / (|g_i|^2 + |g_j|^2);
    curv = (1 - cos^2) |g_i - g_j|^2 / |g_i + g_j|^2   (methods-spec.md §3; NaN where undefined).
    """
    K = G.shape[1]
    n = norms(G)
    cs, gs, xs = [], [], []
    for i in range(K):
        for j in range(i + 1, K):
            dot = (G[:, i] * G[:, j]).sum(-1)
            c = dot / (n[:, i] * n[:, j])
            cs.append(c)
            gs.append(2 * n[:, i] * n[:, j] / (n[:, i] ** 2 + n[:, j] ** 2))
            diff, summ = G[:, i] - G[:, j], G[:, i] + G[:, j]
            xs.append((1 - c * c) * (diff * diff).sum(-1) / (summ * summ).sum(-1))
    mean = (lambda v: torch.stack(v, 1).mean(1))
    return {"cos": mean(cs), "gms": mean(gs), "curv": mean(xs), "gnorm": n, "grad": G, "dir": d}


def effective_weights(G: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """The least-norm w with sum_k w_k g_k = d (D = 2): w = G (G^T G)^{-1} d, lightly regularised."""
    a = (G[..., 0] * G[..., 0]).sum(1)
    b = (G[..., 0] * G[..., 1]).sum(1)
    c = (G[..., 1] * G[..., 1]).sum(1)
    ridge = 1e-12 * (a + c) ** 2 + 1e-30
    det = a * c - b * b + ridge
    y0 = (c * d[:, 0] - b * d[:, 1]) / det
    y1 = (a * d[:, 1] - b * d[:, 0]) / det
    return G[..., 0] * y0[:, None] + G[..., 1] * y1[:, None]


def _group_step(land, method, outer, cfg: Config, static: dict, record_names: list):
    pipeline = cfg.pipeline
    post = method.post(pipeline)
    opts = dict(outer.options)

    def step(state, params):
        theta, t = state["theta"], state["t"]
        K = params["weights"].shape[1]
        L, G = land.evaluate(theta, params["weights"], params["scale"])
        ctx = Context(pipeline, t + 1, params["key"], params["floor"])
        hp = dict(params["hp"], **static)
        d, mstate, aux = method.step(G, L, state["method"], hp, ctx)
        if pipeline == "reference" and method.reference_vjp:
            d = land.vjp(theta, params["scale"], params["weights"] * aux["weights"])
        native = d
        if post.times_k:
            d = d * K
        if post.clip:
            d = clip1(d)
        new, ostate = outer.step(theta, d, state["outer"], params["lr"], params["momentum"], opts)
        alive = state["alive"] > 0
        number = (new == new).all(-1)
        finite = number & (new.abs() < DIVERGE_LIMIT).all(-1)
        ok = alive & finite
        gap = ((theta[:, None, :] - params["targets"]) ** 2).sum(-1).amin(-1)
        kept = torch.where(ok[:, None], new, theta)
        # the box the run's positions span over the last part of the run (steps >= params["tail"]): whether
        # it stalled is read from every step, not from the recorded ones
        tail = (t + 1 >= params["tail"])[:, None]
        out_state = {
            "theta": kept,
            "t": t + 1,
            "alive": ok.to(theta.dtype),
            "dstep": torch.where(alive & ~finite, t, state["dstep"]),
            "dnan": torch.where(alive & ~number, torch.ones_like(t), state["dnan"]),
            "hit": torch.where((state["hit"] < 0) & (gap < params["eps2"]), t, state["hit"]),
            "lo": torch.where(tail & (kept < state["lo"]), kept, state["lo"]),
            "hi": torch.where(tail & (kept > state["hi"]), kept, state["hi"]),
            "outer": ostate,
            "method": mstate,
        }
        rec = {"theta": theta, "loss": L}
        if "cos" in record_names:
            rec.update(diagnostics(G, d))
            rec["weights"] = aux["weights"] if "weights" in aux else effective_weights(G, native)
            for k in method.aux:
                if k != "weights":
                    rec[k] = aux[k]
        return out_state, {k: rec[k] for k in record_names}

    return step


class _Compiled:
    """A group's step in flat form, plus its kernel (C) or torch callable."""

    def __init__(self, step, state, params, backend, key=None, modules=()):
        self.step = step
        self.state_spec = pytree.tree_structure(state)
        self.param_spec = pytree.tree_structure(params)
        self.n_state = len(pytree.tree_leaves(state))
        self.backend = backend
        self.record_spec = None
        self.kernel = None
        self.torch_fn = self.flat
        if backend == "c":
            self.kernel = kernel_mod.Kernel(self.flat, pytree.tree_leaves(state), pytree.tree_leaves(params),
                                            key=key + (self._layout(state), self._layout(params)),
                                            modules=modules)
        elif backend == "compile":
            self.torch_fn = torch.compile(self.flat, dynamic=False)

    @staticmethod
    def _layout(tree):
        return tuple((str(x.dtype), tuple(x.shape[1:])) for x in pytree.tree_leaves(tree)) + (str(pytree.tree_structure(tree)),)

    def flat(self, *leaves):
        state = pytree.tree_unflatten(list(leaves[:self.n_state]), self.state_spec)
        params = pytree.tree_unflatten(list(leaves[self.n_state:]), self.param_spec)
        new, rec = self.step(state, params)
        self.record_names = list(rec)
        return tuple(pytree.tree_leaves(new)) + tuple(rec.values())


_KERNELS: dict = {}
_KLOCK = threading.Lock()


def _kernel_key(cfg, land, method, static, record_names):
    return (land.key, cfg.landscape_spec, method.key, static, land.n_tasks, cfg.pipeline, cfg.optimizer,
            cfg.dtype, tuple(record_names))


def available_backends() -> list[str]:
    out = ["torch", "compile"]
    if kernel_mod.compiler():
        out.insert(0, "c")
    return out


def simulate(landscape, methods, starts, steps, *, hparams=None, optimizer="adam", lr=1e-3, momentum=0.9,
             pipeline="reference", record_every=1, seed=0, device="cpu", dtype="float32", task_weights=None,
             scale=1.0, record=("positions", "losses", "diagnostics"), early_exit=False, backend="auto",
             threads=None, progress=None, cancel=None):
    """Run every method from every start (and every swept setting) in lock-step; returns a Result.

    ``starts``: a preset name, ``"x,y;x,y"``, ``grid:N``, ``random:N`` or an array [S, 2].
    ``hparams``: ``{method: {name: value or [values...]}}``; ``lr`` and ``task_weights`` may be lists too.
    ``record_every``: keep positions/losses/diagnostics at steps 0, k, 2k, ... (the final step included
    when divisible). ``progress(done, total)`` is called between chunks; ``cancel()`` returning True stops
    the run with :class:`Cancelled`.
    """
    if isinstance(dtype, torch.dtype):
        dtype = {torch.float32: "float32", torch.float64: "float64"}.get(dtype, str(dtype))
    cfg = Config.make(landscape, methods, starts, steps, hparams=hparams or {}, optimizer=optimizer, lr=lr,
                      momentum=momentum, pipeline=pipeline, record_every=record_every, seed=seed,
                      device=str(device), dtype=dtype, task_weights=task_weights, scale=scale,
                      record=tuple(record), early_exit=early_exit,
                      landscape_spec=getattr(landscape, "spec", None) if not isinstance(landscape, str) else None)
    return run(cfg, landscape=None if isinstance(landscape, str) else landscape, backend=backend,
               threads=threads, progress=progress, cancel=cancel)


def estimate_bytes(cfg: Config) -> int:
    """Memory a simulation needs (records dominate): refuse configs above GRADSCAPE_MAX_BYTES."""
    K = cfg.land.n_tasks
    n_rec = cfg.steps // cfg.record_every + 1
    per = 0
    if "positions" in cfg.record:
        per += 2
    if "losses" in cfg.record:
        per += K
    if "diagnostics" in cfg.record:
        per += 3 + K + 2 * K + 2 + K + 2
    item = 4 if cfg.dtype == "float32" else 8
    runs = len(cfg.variants()) * len(cfg.starts)
    return runs * (n_rec * per * item + 64 * K * item + 512)


def check_memory(cfg: Config):
    need = estimate_bytes(cfg)
    if need > BYTES_LIMIT:
        raise ValueError(f"memory: this run would need about {need / 2 ** 30:.1f} GiB "
                         f"(limit {BYTES_LIMIT / 2 ** 30:.1f} GiB); record less often (record_every), "
                         f"use fewer starts, methods or steps")


def run(cfg: Config, *, landscape=None, backend="auto", threads=None, progress=None, cancel=None):
    from .result import Result

    t_start = time.perf_counter()
    check_memory(cfg)
    land = landscape or cfg.land
    dt = _dtype(cfg.dtype)
    device = torch.device(cfg.device)
    if backend == "auto":
        backend = "c" if device.type == "cpu" and kernel_mod.compiler() else "torch"
    if backend == "c" and device.type != "cpu":
        raise ValueError("backend: the C kernel runs on the CPU only; use backend='torch' or 'compile'")
    variants = cfg.variants()
    S = len(cfg.starts)
    K = land.n_tasks
    starts = torch.tensor(cfg.start_array, dtype=dt)
    groups: dict = {}
    for i, v in enumerate(variants):
        m = optimizers.get(v.method)
        static = tuple(sorted((h.name, dict(v.hparams)[h.name]) for h in m.hparams if h.static))
        groups.setdefault((v.method, static), _Group(m, static, [], [])).rows.append(i)
        groups[(v.method, static)].variants.append(v)
    outer = outer_mod.get(cfg.optimizer)
    n_rec = cfg.steps // cfg.record_every + 1
    total = cfg.steps * len(variants) * S
    jobs = []
    for (key, static), grp in groups.items():
        rec_names = _records_wanted(cfg, grp.method)
        state, params = _inputs(cfg, land, grp, starts, dt, device, outer)
        step = _group_step(land, grp.method, outer, cfg, dict(static), rec_names)
        chosen = backend
        comp = None
        if chosen == "c":
            kkey = _kernel_key(cfg, land, grp.method, static, rec_names)
            with _KLOCK:
                comp = _KERNELS.get(kkey)
            if comp is None:
                try:
                    comp = _Compiled(step, state, params, "c", key=kkey,
                                     modules=(grp.method.step.__module__, grp.method.init.__module__))
                    with _KLOCK:
                        _KERNELS[kkey] = comp
                except (kernel_mod.Unsupported, kernel_mod.CompilerMissing) as e:
                    comp, chosen = None, "torch"
                    grp.fallback = str(e)
        if comp is None:
            comp = _Compiled(step, state, params, chosen)
        jobs.append((grp, comp, state, params, chosen))
    # -- run ----------------------------------------------------------------------------------
    n_threads = threads or max(1, min(os.cpu_count() or 1, 8))
    outputs = {}
    done = 0
    steps_run = cfg.steps
    runners = [_Runner(grp, comp, state, params, chosen, n_rec, cfg, device) for grp, comp, state, params, chosen in jobs]
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        t0 = 0
        while t0 < cfg.steps:
            n = min(CHUNK, cfg.steps - t0)
            tasks = [pool.submit(r.advance, lo, hi, t0, n) for r in runners for lo, hi in r.ranges(n_threads)]
            for f in tasks:
                f.result()
            t0 += n
            done = t0 * len(variants) * S
            if progress:
                progress(done, total)
            if cancel and cancel():
                raise Cancelled("cancelled")
            if cfg.early_exit and t0 < cfg.steps and all(r.settled() for r in runners):
                steps_run = t0
                break
        for r in runners:
            r.finish(steps_run)
    for r in runners:
        outputs[id(r.grp)] = r.collect(S)
    wall = time.perf_counter() - t_start
    return Result.assemble(cfg, land, variants, [(r.grp, outputs[id(r.grp)], r.backend) for r in runners],
                           steps_run=steps_run, wall_s=wall)


def _inputs(cfg, land, grp, starts, dt, device, outer):
    S = starts.shape[0]
    V = len(grp.variants)
    B = V * S
    K = land.n_tasks
    theta = starts.repeat(V, 1).to(device)
    rep = (lambda vals: torch.tensor(np.repeat(np.asarray(vals, dtype=float), S, axis=0), dtype=dt, device=device))
    weights = rep([v.task_weights for v in grp.variants])
    scale = torch.full((B,), float(cfg.scale), dtype=dt, device=device)
    hp_dyn = {h.name: rep([dict(v.hparams)[h.name] for v in grp.variants]) for h in grp.method.hparams
              if not h.static}
    keys = torch.cat([rng.run_keys(cfg.seed + 1000003 * i, S, stream=zlib.crc32(grp.method.key.encode()))
                      for i in range(V)]).to(device)
    targets = _targets(cfg, land, grp, dt, device, S)
    params = {
        "hp": hp_dyn,
        "lr": rep([v.lr for v in grp.variants]).to(torch.float64),    # a Python float in torch.optim
        "momentum": torch.full((B,), float(cfg.momentum), dtype=dt, device=device),
        "weights": weights,
        "scale": scale,
        "floor": land.loss_floor(weights, scale),
        "key": keys,
        "targets": targets,
        "eps2": torch.full((B,), TARGET_EPS ** 2, dtype=dt, device=device),
        "tail": torch.full((B,), float(metrics.tail_start(cfg.steps)), dtype=dt, device=device),
    }
    mstate = grp.method.init(B, K, 2, dict(dict(grp.variants[0].hparams)), dtype=dt, device=device)
    state = {
        "theta": theta,
        "t": torch.zeros(B, dtype=dt, device=device),
        "alive": torch.ones(B, dtype=dt, device=device),
        "dstep": torch.full((B,), -1.0, dtype=dt, device=device),
        "dnan": torch.zeros(B, dtype=dt, device=device),
        "hit": torch.full((B,), -1.0, dtype=dt, device=device),
        "lo": torch.full((B, 2), float("inf"), dtype=dt, device=device),
        "hi": torch.full((B, 2), float("-inf"), dtype=dt, device=device),
        "outer": outer.init(theta),
        "method": mstate,
    }
    return state, params


def _targets(cfg, land, grp, dt, device, S):
    """Global minimisers of the weighted sum per variant, padded to a common count: [B, m, 2]."""
    per = [land.optima(v.task_weights, cfg.scale) for v in grp.variants]
    # no isolated minimiser (a sum flat along the Pareto set): a target no run can come near
    per = [p if len(p) else np.full((1, 2), np.inf) for p in per]
    m = max(len(p) for p in per)
    rows = [np.concatenate([p, np.repeat(p[-1:], m - len(p), 0)]) for p in per]
    arr = np.repeat(np.stack(rows), S, axis=0)
    return torch.tensor(arr, dtype=dt, device=device)


class _Runner:
    """Advances one group with its backend; owns its buffers."""

    def __init__(self, grp, comp, state, params, backend, n_rec, cfg, device):
        self.grp, self.comp, self.backend, self.n_rec, self.cfg = grp, comp, backend, n_rec, cfg
        self.B = state["theta"].shape[0]
        self.device = device
        leaves = pytree.tree_leaves(state)
        pleaves = pytree.tree_leaves(params)
        # record layout from one eager evaluation on the first run (cheap, and independent of backend)
        with torch.no_grad():
            probe = comp.flat(*[x[:1] for x in leaves], *[x[:1] for x in pleaves])
        self.record_names = comp.record_names
        rec_leaves = probe[comp.n_state:]
        self.rec_shapes = [tuple(r.shape[1:]) for r in rec_leaves]
        self.rec_dtypes = [r.dtype for r in rec_leaves]
        if backend == "c":
            self.state = [np.ascontiguousarray(x.detach().cpu().numpy()) for x in leaves]
            self.params = [np.ascontiguousarray(x.detach().cpu().numpy()) for x in pleaves]
            self.records = [np.full((self.B, n_rec) + s, np.nan if d.is_floating_point else 0,
                                    dtype=kernel_mod._NP[d]) for s, d in zip(self.rec_shapes, self.rec_dtypes)]
        else:
            self.state = list(leaves)
            self.params = list(pleaves)
            self.records = [torch.full((self.B, n_rec) + s, float("nan"), dtype=d, device=device)
                            for s, d in zip(self.rec_shapes, self.rec_dtypes)]
        self.theta_idx = 0
        self.last_theta = self._theta().copy()

    def _theta(self):
        th = self.state[self.theta_idx]
        return th if isinstance(th, np.ndarray) else th.detach().cpu().numpy()

    def ranges(self, n_threads):
        if self.backend != "c":
            return [(0, self.B)]
        parts = max(1, min(n_threads * 2, math.ceil(self.B / 512)))
        step = math.ceil(self.B / parts / kernel_mod.WIDTH) * kernel_mod.WIDTH
        return [(lo, min(self.B, lo + step)) for lo in range(0, self.B, step)]

    def advance(self, lo, hi, t0, n):
        rec = self.cfg.record_every
        if self.backend == "c":
            self.comp.kernel.run(self.state, self.params, self.records, t0, n, rec, self.n_rec, lo, hi)
            return
        with torch.no_grad():
            st = self.state
            for s in range(t0, t0 + n):
                out = self.comp.torch_fn(*st, *self.params)
                if s % rec == 0:
                    row = s // rec
                    for buf, val in zip(self.records, out[self.comp.n_state:]):
                        buf[:, row] = val
                st = list(out[:self.comp.n_state])
            self.state = st

    def settled(self, tol=1e-3) -> bool:
        th = self._theta()
        moved = np.abs(th - self.last_theta).max(-1)
        self.last_theta = th.copy()
        alive = self._leaf("alive") > 0
        return bool(np.all(~alive | (moved < tol)))

    def _leaf(self, name):
        x = self.state[self._state_names().index(name)]
        return x if isinstance(x, np.ndarray) else x.detach().cpu().numpy()

    def finish(self, steps_run):
        """Record the final step (a throw-away extra step on a copy) or, after an early exit, carry the
        last recorded position and losses forward (the runs had stopped moving)."""
        rec, T = self.cfg.record_every, self.cfg.steps
        if steps_run == T and T % rec == 0:
            saved = [x.copy() if isinstance(x, np.ndarray) else x.clone() for x in self.state]
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
        names = self._state_names()
        for name, x in zip(names, self.state):
            if name in RUN_STATE:
                arr = x if isinstance(x, np.ndarray) else x.detach().cpu().numpy()
                out["state." + name] = arr.reshape((V, S) + arr.shape[1:])
        for name, buf in zip(self.record_names, self.records):
            arr = buf if isinstance(buf, np.ndarray) else buf.detach().cpu().numpy()
            out[name] = arr.reshape((V, S) + arr.shape[1:])
        return out

    def _state_names(self):
        paths = pytree.tree_flatten_with_path(pytree.tree_unflatten(list(range(self.comp.n_state)),
                                                                      self.comp.state_spec))[0]
        return [".".join(str(getattr(k, "key", k)) for k in p) for p, _ in paths]
