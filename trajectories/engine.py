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

The same function runs several ways, with the same results up to float rounding (``trajectories/device.py``
says which runs where; ``trajectories/runners.py`` holds one runner per backend):

* ``backend="c"`` (``"auto"`` on the CPU): traced once into a fused C loop (``trajectories/kernel/``) that keeps
  each run's state in registers for all steps; groups and run ranges run on threads;
* ``backend="triton"`` (``"auto"`` on CUDA): the same traced step as one Triton kernel per chunk of steps, a
  block of runs per program instance, state in registers;
* ``backend="compile"`` / ``"torch"``: ``torch.compile`` of the step, or eager torch, on any device: the named
  fallbacks (``Result.timings`` says which ran and why).
"""
from __future__ import annotations

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
from optimizers import contract
from optimizers import outer as outer_mod
from optimizers import rng
from optimizers.base import Context, clip1, norms

from . import device as device_mod
from . import kernel as kernel_mod
from . import metrics, runners
from .config import Config
from .kernel import build_triton
from .result import Result

TARGET_EPS = metrics.TARGET_EPS   # "reached an optimum": within this distance of a global minimiser (in theta)

DIVERGE_LIMIT = 1e6      # |theta| beyond this counts as diverged
CHUNK = 1000             # steps between progress reports / cancellation checks
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


_KERNELS: dict = {}      # built kernels by backend and key, for this process
_KLOCK = threading.Lock()
# what a kernel build (or a Triton kernel's first launch, which compiles it) may raise; the group then runs on
# the device's fallback backend. Triton's compiler errors share no base class short of Exception.
KERNEL_ERRORS = {"c": (kernel_mod.Unsupported, kernel_mod.CompilerMissing), "triton": (Exception,)}


def _kernel_key(cfg, land, method, static, record_names):
    # the step's module too: two plugin files may use one key (each file has a module name of its own)
    return (land.key, cfg.landscape_spec, method.key, method.step.__module__, static, land.n_tasks, cfg.pipeline,
            cfg.optimizer, cfg.dtype, tuple(record_names))


_NAMES = {"c": "the C kernel", "triton": "the Triton kernel", "compile": "torch.compile", "torch": "eager torch"}


def _fallback_reason(e: Exception, backend: str = "c", fallback: str = "torch") -> str:
    """Why a group runs on a fallback, in words a page can show: the kernel's refusal and what it means."""
    text = str(e).strip() if backend == "c" else f"{type(e).__name__}: {str(e).strip()[:2000]}"
    why = contract.explain(text)
    return f"{_NAMES[backend]} cannot take this step ({text}{'; ' + why if why else ''}), so it ran in {_NAMES[fallback]}"


def available_backends() -> list[str]:
    """The backends that can run here (``"triton"`` only with a CUDA device, or under the interpreter)."""
    out = ["torch", "compile"]
    if build_triton.unavailable() is None and (torch.cuda.is_available() or build_triton.interpreting()):
        out.insert(0, "triton")
    if kernel_mod.compiler():
        out.insert(0, "c")
    return out


def simulate(landscape, methods, starts, steps, *, hparams=None, optimizer="adam", lr=1e-3, momentum=0.9,
             pipeline="reference", record_every=1, seed=0, device="auto", dtype="float32", task_weights=None,
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


def check_memory(cfg: Config, dev: torch.device | None = None):
    """Refuse above GRADSCAPE_MAX_BYTES (the records come back to host memory) and, on a GPU, above 90% of
    the device memory free now (state, parameters and records all live there while the run lasts)."""
    need = estimate_bytes(cfg)
    if need > BYTES_LIMIT:
        raise ValueError(f"memory: this run would need about {need / 2 ** 30:.1f} GiB "
                         f"(limit {BYTES_LIMIT / 2 ** 30:.1f} GiB); record less often (record_every), "
                         f"use fewer starts, methods or steps")
    if dev is not None and dev.type == "cuda":
        free, _total = torch.cuda.mem_get_info(dev)
        if need > 0.9 * free:
            raise ValueError(f"memory: this run would need about {need / 2 ** 30:.1f} GiB of GPU memory, "
                             f"{free / 2 ** 30:.1f} GiB is free on {cfg.device}; record less often "
                             f"(record_every), use fewer starts, methods or steps")


def _engine_modules(land, method) -> tuple:
    """The Python modules a group's traced step is made of: they key the kernel caches."""
    import sys
    lands = sorted(name for name in sys.modules if name == "landscapes" or name.startswith("landscapes."))
    return ("optimizers.base", "optimizers.rng", "optimizers.outer", __name__, type(land).__module__, *lands,
            method.step.__module__, method.init.__module__)


ILP_MIN_RUNS = 1000     # a group this large runs on a C kernel with interleaved blocks (kernel/c.py)
ILP = 3                 # how many: measured on a 50 x 50 grid of the default methods, 2 and 4 were slower
ILP_READY_RUNS = 64     # a group this large uses the interleaved kernel if it is built already (_ready_interleaved)


def c_ilp(runs: int, dtype: str) -> int:
    """Independent blocks of runs the C kernel interleaves for a group of ``runs``: ILP from ILP_MIN_RUNS runs
    up in float32 (a 50 x 50 grid of the default methods: ~15 % less time than one block), 1 below. Below, the
    gain does not pay for the build: gcc takes 2-3 times as long on the tripled body, and a page waits for it
    once per machine (a 12 x 12 grid right after the paper starts waited 39 s for its 8 new kernels, to save
    0.07 s a change), while the paper starts' 7 runs would mostly compute padding. A float64 vector holds four
    runs, so a block of 8 is two independent vectors already."""
    return ILP if runs >= ILP_MIN_RUNS and dtype == "float32" else 1


PER_RUN = ("theta", "key")  # leaves that belong to one run however the batch looks (a batch of one run too)


def uniform_leaves(state, params) -> tuple:
    """The input leaves (indices into state + params, as flattened) whose value is the same, bit for bit, in every
    run of the batch: the step counter, a variant's learning rate and knobs, Adam's powers of beta, ... The C
    kernel computes what depends on these alone once per block (kernel/c.py). A run's position and random key
    never count, so a batch of one run gets the kernel of a batch of many."""
    out = []
    flat = pytree.tree_flatten_with_path(state)[0] + pytree.tree_flatten_with_path(params)[0]
    for k, (path, x) in enumerate(flat):
        if getattr(path[0], "key", None) in PER_RUN or x.shape[0] == 0:
            continue
        a = np.ascontiguousarray(x.detach().cpu().numpy()).reshape(x.shape[0], -1).view(np.uint8)
        if (a == a[:1]).all():
            out.append(k)
    return tuple(out)


def _ready_interleaved(kkey, uni, flat, state, params, land, method):
    """The interleaved kernel of ``kkey`` if it is built already (kept by this process, or on this machine's disk:
    a group of ILP_MIN_RUNS runs or more built it), else None, and nothing is built. A batch of 64-999 runs gains
    from it too (8 methods x 144 runs x 20 000 steps: 0.395 -> 0.344 s in-process), but building it on the way
    would make a first 12 x 12 grid wait for gcc (39 s for the default methods); the bits are the same either way
    (tests/test_engine.py)."""
    with _KLOCK:
        kern = _KERNELS.get(kkey)
    if kern is None:
        kern = kernel_mod.Kernel.cached(kkey + (flat.layout(state), flat.layout(params)),
                                        modules=_engine_modules(land, method), ilp=ILP, uniform=uni)
    return kern


def _runner(grp, cfg, land, step, state, params, backend, dev, n_rec, rec_names, static):
    """The group's runner on ``backend``; a kernel that cannot be built falls back (``grp.fallback`` says why)."""
    flat = runners.Flat(step, state, params)
    if backend in ("c", "triton"):
        runs = len(grp.variants) * len(cfg.starts)
        ilp = c_ilp(runs, cfg.dtype) if backend == "c" else 1
        uni = uniform_leaves(state, params) if backend == "c" else ()
        kkey = (backend,) + _kernel_key(cfg, land, grp.method, static, rec_names) + \
            ((("uniform",) + uni,) if uni else ()) + ((ilp,) if ilp > 1 else ())
        try:
            with _KLOCK:
                kern = _KERNELS.get(kkey)
            if backend == "c" and ilp == 1 and runs >= ILP_READY_RUNS and cfg.dtype == "float32":
                ready = _ready_interleaved(kkey + (ILP,), uni, flat, state, params, land, grp.method)
                if ready is not None:
                    kkey, kern = kkey + (ILP,), ready
            if kern is None:
                build = kernel_mod.Kernel if backend == "c" else build_triton.TritonKernel
                kw = {"ilp": ilp, "uniform": uni} if backend == "c" else {}
                kern = build(flat, pytree.tree_leaves(state), pytree.tree_leaves(params),
                             key=kkey + (flat.layout(state), flat.layout(params)),
                             modules=_engine_modules(land, grp.method), **kw)
            runner = (runners.CRunner if backend == "c" else runners.TritonRunner)(
                grp, flat, state, params, n_rec, cfg, kern)
            with _KLOCK:
                _KERNELS[kkey] = kern
            return runner
        except KERNEL_ERRORS[backend] as e:
            fallback = device_mod.fallback(dev)
            grp.fallback = _fallback_reason(e, backend, fallback)
            backend = fallback
    return runners.TorchRunner(grp, flat, state, params, n_rec, cfg, compiled=backend == "compile")


def run(cfg: Config, *, landscape=None, backend="auto", threads=None, progress=None, cancel=None):
    t_start = time.perf_counter()
    dev = device_mod.resolve_device(cfg.device)
    backend, why = device_mod.choose_backend(backend, dev)
    check_memory(cfg, dev)
    land = landscape or cfg.land
    dt = _dtype(cfg.dtype)
    variants = cfg.variants()
    S = len(cfg.starts)
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
    group_runners = []
    for (_, static), grp in groups.items():
        rec_names = _records_wanted(cfg, grp.method)
        state, params = _inputs(cfg, land, grp, starts, dt, dev, outer)
        step = _group_step(land, grp.method, outer, cfg, dict(static), rec_names)
        group_runners.append(_runner(grp, cfg, land, step, state, params, backend, dev, n_rec, rec_names, static))
    # -- run ----------------------------------------------------------------------------------
    n_threads = threads or max(1, min(os.cpu_count() or 1, 8))
    steps_run = cfg.steps
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        t0 = 0
        while t0 < cfg.steps:
            n = min(CHUNK, cfg.steps - t0)
            tasks = [pool.submit(r.advance, lo, hi, t0, n) for r in group_runners for lo, hi in r.ranges(n_threads)]
            for f in tasks:
                f.result()
            t0 += n
            if progress:
                progress(t0 * len(variants) * S, total)
            if cancel and cancel():
                raise Cancelled("cancelled")
            if cfg.early_exit and t0 < cfg.steps and all(r.settled() for r in group_runners):
                steps_run = t0
                break
        for r in group_runners:
            r.finish(steps_run)
    outputs = [(r.grp, r.collect(S), r.backend) for r in group_runners]
    wall = time.perf_counter() - t_start
    notes = {"device": device_mod.describe(dev)}
    if why:
        notes["backend_fallback"] = why
    return _assemble(cfg, land, variants, outputs, steps_run=steps_run, wall_s=wall, notes=notes)


def _assemble(cfg, land, variants, group_outputs, *, steps_run, wall_s, notes=None) -> Result:
    """The Result of a run: the groups' outputs placed in their rows, each run classified (``metrics``)."""
    M, S, K = len(variants), len(cfg.starts), land.n_tasks
    n_rec = cfg.steps // cfg.record_every + 1
    record_steps = np.arange(n_rec) * cfg.record_every
    arrays = {}
    backends, fallbacks = {}, {}
    for grp, out, backend in group_outputs:
        backends[grp.method.key] = backend
        if grp.fallback:
            fallbacks[grp.method.key] = grp.fallback
        for k, v in out.items():
            if k not in arrays:
                fill = np.nan if np.issubdtype(v.dtype, np.floating) else -1
                arrays[k] = np.full((M,) + v.shape[1:], fill, dtype=v.dtype)
            arrays[k][grp.rows] = v
    final = arrays.pop("state.theta").astype(np.float64)
    diverged = arrays.pop("state.dstep").astype(np.int64)
    nan = arrays.pop("state.dnan") > 0
    hit = arrays.pop("state.hit").astype(np.int64)
    lo, hi = arrays.pop("state.lo"), arrays.pop("state.hi")
    arrays.pop("state.alive", None)
    positions = arrays.pop("theta", None)
    losses = arrays.pop("loss", None)
    final_losses = np.full((M, S, K), np.nan)
    for m, v in enumerate(variants):
        final_losses[m] = land.losses_np(final[m], v.task_weights, cfg.scale)
    weights = [v.task_weights for v in variants]
    nearest, near_d = metrics.nearest_optimum(land, final, weights, cfg.scale)
    dist = metrics.pareto_distance(land, final)
    # an early exit stops a chunk once every run has stopped moving: they count as settled
    settled = metrics.settled_in_tail(final, lo, hi) | (steps_run < cfg.steps)
    status, outcome, opt_idx = metrics.classify(final_pareto_distance=dist, nearest=nearest,
                                                nearest_distance=near_d, hit=hit, diverged_step=diverged,
                                                nan=nan, settled=settled)
    # reached on the very last step: the engine tests the position *before* each update
    opt_step = np.where((opt_idx >= 0) & (hit < 0), steps_run, hit)
    opt_step = np.where(opt_idx >= 0, opt_step, -1)
    pos64 = positions.astype(np.float64) if positions is not None else None
    status_step = np.where(metrics.died(status), diverged, -1)
    calm = status == "settled"
    status_step[calm] = metrics.settle_step(pos64, record_steps, final)[calm]
    if pos64 is not None:
        steps_to = metrics.first_true(metrics.within_pareto(land, pos64, metrics.PARETO_EPS), record_steps)
    else:
        steps_to = np.where(dist <= metrics.PARETO_EPS, cfg.steps, -1)
    stat = np.stack([metrics.stationarity(land, final[m], v.task_weights, cfg.scale)
                     for m, v in enumerate(variants)])
    timings = {"wall_s": wall_s, "steps_run": int(steps_run), "backends": backends,
               "run_steps": int(steps_run) * M * S}
    if fallbacks:   # groups the kernel could not take (a Python landscape, a plugin method): why
        timings["kernel_fallbacks"] = fallbacks
    timings.update(notes or {})     # "device" that ran; "backend_fallback": why "auto" took a fallback
    return Result(config=cfg.to_dict(), variants=[v.to_dict() for v in variants], starts=cfg.start_array,
                  record_steps=record_steps, positions=positions, losses=losses, final=final,
                  final_losses=final_losses, diverged_step=diverged, optimum_step=opt_step,
                  optimum_index=opt_idx, pareto_distance=dist, steps_to_pareto=steps_to, stationarity=stat,
                  status=status, status_step=status_step, outcome=outcome, aux=arrays, timings=timings)


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

