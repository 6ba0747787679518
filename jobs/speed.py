"""``python -m trajectories bench --speed``: the engine's speed, measured side by side in one run.

Benchmark code, not the engine: it lives with the jobs (``jobs/jobspeed.py`` measures the job system itself).

Workloads (one_optimum, Adam lr 1e-3, float32, the reference pipeline, warm kernels unless stated):

* interactive: SAM-GS x the 7 paper starts x 20 000 steps;
* paper figure: every method x the 7 paper starts x 20 000 steps, with the ratio to a sequential eager
  loop shaped like the published toy code (one method, one start at a time: autograd per task, the
  method's aggregation, ``torch.optim.Adam``) and to this engine's own eager batched backend; both
  references are timed on a subsample in the same run and scaled by their run-steps;
* basin map: every method x 64 x 64 starts x 20 000 steps (``--quick`` uses 32 x 32), and the same again
  with the C kernel held to one block of runs per SIMD loop, for the ratio that interleaving blocks gains
  (``trajectories.engine.c_ilp``);
* Explore's 50 x 50 grid view (``--quick``: 32 x 32) as the page runs it, as it is, with one block of runs per
  SIMD loop, and with the values every run shares computed per run (``engine.uniform_leaves``), rounds
  alternated;
* first use in a fresh process: the Explore page's default view in a new Python process, with an empty
  kernel cache (cold) and with the cache just filled (warm);
* scaling: wall time against the number of runs (SAM-GS, 2 000 steps), written to a PNG plot;
* GPU (when CUDA is present): the Triton kernel against ``torch.compile`` of the same step, in the same run:
  SAM-GS x 7 starts and x 10^6 runs, every method x 7 starts and x 256 x 256 starts (20 000 steps each), and
  a scaling table from 1 to 10^7 runs (SAM-GS, 2 000 steps); ratios, not just times.

Each figure is the median of ``--repeats`` runs. Nothing here is a test: the numbers go to the README.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from unittest import mock

import numpy as np
import torch

import landscapes
import optimizers
from optimizers.base import Context, clip1

from trajectories import engine
from trajectories.config import Config
from trajectories.engine import simulate

cpu = functools.partial(simulate, device="cpu")     # the CPU rows stay on the CPU on a machine with a GPU
EXPLORE_DEFAULT = ["samgs", "nashmtl", "cagrad", "pcgrad", "mgda", "alignedmtl", "famo", "ls"]


def _median(fn, repeats):
    times = []
    out = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def sequential_step_time(methods, steps=300, start=(-8.0, 5.0)) -> float:
    """Seconds per (method, start, step) of a loop shaped like the published toy trainer."""
    land = landscapes.get("one_optimum")
    total, n = 0.0, 0
    for key in methods:
        m = optimizers.get(key)
        hp = {k: torch.tensor([float(v)]) for k, v in m.defaults().items()}
        theta = torch.tensor(start, requires_grad=True)
        state = m.init(1, 2, 2, m.defaults(), dtype=torch.float32, device="cpu")
        opt = torch.optim.Adam([theta], lr=1e-3)
        post = m.post("reference")
        key_t = torch.zeros(1, dtype=torch.int64)
        floor = land.loss_floor(torch.ones(1, 2), torch.ones(1))
        t0 = time.perf_counter()
        for it in range(steps):
            opt.zero_grad()
            L = land.values(theta[None], torch.ones(1))[0]
            grads = [torch.autograd.grad(L[k], theta, retain_graph=True)[0] for k in range(2)]
            G = torch.stack(grads)[None]
            with torch.no_grad():
                d, state, _ = m.step(G, L.detach()[None], state, hp, Context("reference", torch.tensor([it + 1.0]),
                                                                            key_t, floor))
                if post.times_k:
                    d = d * 2
                if post.clip:
                    d = clip1(d)
            theta.grad = d[0]
            opt.step()
        total += time.perf_counter() - t0
        n += steps
    return total / n


@contextlib.contextmanager
def one_block():
    """The C kernel held to one block of runs per SIMD loop (``engine.c_ilp``; and not the interleaved kernel a
    larger group built, ``engine.ILP_READY_RUNS``), for a side-by-side row."""
    with mock.patch.object(engine, "c_ilp", lambda runs, dtype: 1), \
            mock.patch.object(engine, "ILP_READY_RUNS", 10 ** 9):
        yield


def per_run():
    """Nothing computed once for a block: the values every run shares computed per run (``engine.uniform_leaves``)."""
    return mock.patch.object(engine, "uniform_leaves", lambda state, params: ())


def explore_grid(methods, n, repeats) -> dict[str, float]:
    """Explore's n x n grid view as the page runs it (views/explore_model._run: one engine call per method, two
    methods at a time, records every 1 000 steps): as it is, with the C kernel held to one block of runs per SIMD
    loop (``engine.c_ilp``), and with nothing computed once for the block (``engine.uniform_leaves``); rounds
    alternated after a warm-up round of each; the medians by variant."""
    from concurrent.futures import ThreadPoolExecutor
    cfg = Config.make("one_optimum", methods, f"grid:{n}", 20000, record_every=1000, device="cpu")
    variants = {"as it is": contextlib.nullcontext, "one block": one_block, "per run": per_run}
    times = {v: [] for v in variants}
    for r in range(repeats + 1):
        for v, change in variants.items():
            with change():
                t = time.perf_counter()
                with ThreadPoolExecutor(2) as pool:
                    list(pool.map(lambda m: engine.run(cfg.for_method(m) if r else
                                                       dataclasses.replace(cfg.for_method(m), steps=10)), methods))
                if r:
                    times[v].append(time.perf_counter() - t)
    return {v: statistics.median(ts) for v, ts in times.items()}


def _fresh_process(cache: str, methods) -> float:
    code = ("import time; t0 = time.perf_counter(); import trajectories; "
            f"trajectories.simulate('one_optimum', {methods!r}, 'paper', 20000, record_every=10, device='cpu'); "
            "print(time.perf_counter() - t0)")
    env = dict(os.environ, GRADSCAPE_CACHE=cache)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trajectories bench --speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="a 32 x 32 basin map and grid, and a shorter scaling table")
    p.add_argument("--skip-fresh", action="store_true", help="skip the fresh-process (cold/warm start) rows")
    p.add_argument("--plot", default="artifacts/speed-scaling.png", help="where the scaling plot goes")
    p.add_argument("--json", action="store_true", help="print the rows as JSON as well")
    a = p.parse_args(argv)
    methods = optimizers.names()
    rows = []

    def row(name, seconds, run_steps, target, note=""):
        rows.append({"workload": name, "seconds": seconds, "run_steps": run_steps,
                     "run_steps_per_s": run_steps / seconds if seconds else float("nan"), "target": target,
                     "note": note})
        print(f"{name:46s} {seconds:9.3f} s  {run_steps / seconds / 1e6:9.2f} M run-steps/s  (target {target}) {note}",
              flush=True)

    print(f"machine: {os.cpu_count()} CPU cores, torch {torch.__version__}, methods: {len(methods)}", flush=True)
    # warm every kernel first (compilation is measured separately, in a fresh process)
    cpu("one_optimum", methods, "paper", 10, record_every=10)
    cpu("one_optimum", methods, "paper", 10, record_every=1000, record=("positions",))
    cpu("one_optimum", methods, "grid:32", 10, record_every=1000, record=("positions",))    # the interleaved ones
    default = [m for m in EXPLORE_DEFAULT if m in methods]
    cpu("one_optimum", default, "grid:32", 10, record_every=1000)

    t, _ = _median(lambda: cpu("one_optimum", ["samgs"], "paper", 20000, record_every=10), a.repeats)
    row("interactive: SAM-GS x 7 starts x 20k", t, 7 * 20000, "<= 0.3 s")

    t_fig, _ = _median(lambda: cpu("one_optimum", methods, "paper", 20000, record_every=10), a.repeats)
    work = len(methods) * 7 * 20000
    seq = sequential_step_time(methods, steps=200)
    t_eager, _ = _median(lambda: cpu("one_optimum", methods, "paper", 200, record_every=10, backend="torch"), 1)
    eager_per = t_eager / 200
    row(f"paper figure: {len(methods)} methods x 7 x 20k", t_fig, work, "<= 3 s, >= 500x sequential",
        f"| {seq * work / t_fig:,.0f}x the sequential loop ({seq * 1e3:.2f} ms/step), "
        f"{eager_per * 20000 / t_fig:,.0f}x eager batched ({eager_per * 1e3:.1f} ms/step)")

    n = 32 if a.quick else 64            # 32 x 32: enough runs a method for the interleaved kernel
    t_basin, _ = _median(lambda: cpu("one_optimum", methods, f"grid:{n}", 20000, record_every=1000,
                                          record=("positions",)), 1 if not a.quick else a.repeats)
    row(f"basin map: {len(methods)} methods x {n}x{n} x 20k", t_basin, len(methods) * n * n * 20000, "<= 60 s (64x64)")
    with one_block():                    # side by side
        t_one, _ = _median(lambda: cpu("one_optimum", methods, f"grid:{n}", 20000, record_every=1000,
                                            record=("positions",)), 1 if not a.quick else a.repeats)
    row("  the same with one block per SIMD loop", t_one, len(methods) * n * n * 20000, "-",
        f"| {engine.ILP} interleaved blocks: {t_one / t_basin:.2f}x faster")

    n = 32 if a.quick else 50            # from engine.ILP_MIN_RUNS (1 000) runs a method, the kernel interleaves
    grid = explore_grid(default, n, a.repeats)
    work = len(default) * n * n * 20000
    row(f"Explore's {n}x{n} grid: {len(default)} methods x 20k", grid["as it is"], work, "<= 5 s (50x50, page incl.)",
        "| as the page runs it: one call per method, two at a time")
    row("  the same with one block per SIMD loop", grid["one block"], work, "-",
        f"| {engine.ILP} interleaved blocks: {grid['one block'] / grid['as it is']:.2f}x faster (rounds alternated)")
    row("  the same with shared values computed per run", grid["per run"], work, "-",
        f"| computed once a block: {grid['per run'] / grid['as it is']:.2f}x faster (rounds alternated)")

    if not a.skip_fresh:
        with tempfile.TemporaryDirectory() as cache:
            cold = _fresh_process(cache, default)
            warm = statistics.median(_fresh_process(cache, default) for _ in range(a.repeats))
        row(f"first use, cold cache ({len(default)} methods, incl. import)", cold, len(default) * 7 * 20000, "<= 60 s")
        row(f"first use, warm cache ({len(default)} methods, incl. import)", warm, len(default) * 7 * 20000, "<= 10 s")

    sizes = [1, 10, 100, 1000, 10000] + ([] if a.quick else [100000])
    print("\nscaling (SAM-GS, 2 000 steps):  runs   seconds   ns per run-step", flush=True)
    scaling = []
    for B in sizes:
        pts = np.random.default_rng(0).uniform(-10, 10, (B, 2))
        t, _ = _median(lambda: cpu("one_optimum", ["samgs"], pts, 2000, record_every=2000,
                                        record=("positions",)), a.repeats)
        scaling.append((B, t))
        print(f"{'':32s}{B:7d} {t:9.3f} {t / (B * 2000) * 1e9:12.1f}", flush=True)
    _plot(scaling, a.plot)

    if torch.cuda.is_available():
        rows += gpu_section(methods, a.repeats, a.quick)
    else:
        print("\nGPU: no CUDA device here; the GPU section (backend='triton' against backend='compile' on "
              "device='cuda') runs where torch.cuda.is_available()")
    bytes_per_run = engine.estimate_bytes(Config.make("one_optimum", ["samgs"], "paper", 20000, record_every=10)) / 7
    print(f"\nmemory: a run recorded every 10 steps for 20 000 steps costs about {bytes_per_run / 1024:.0f} KiB; "
          f"the guard refuses jobs over {engine.BYTES_LIMIT / 2 ** 30:.1f} GiB (GRADSCAPE_MAX_BYTES)")
    if a.json:
        print(json.dumps({"rows": rows, "scaling": scaling}, indent=2))
    return 0


GPU_TARGETS = {"samgs-7": "<= 50 ms", "samgs-1e6": "<= 0.5 s", "all-7": "<= 0.3 s", "all-256": "<= 3 s"}


def gpu_section(methods, repeats, quick=False) -> list[dict]:
    """Triton against ``torch.compile`` of the same step, in the same run, on the first CUDA device.

    Paths are recorded every 1 000 steps (finals plus decimated paths, as a large job keeps them). The
    memory guard is raised for the section (a 10^7-run batch needs ~10 GB with the guard's margins)."""
    print(f"\nGPU: {torch.cuda.get_device_name(0)}  (Triton kernel vs torch.compile of the same step; "
          f"medians of {repeats}, warm kernels)", flush=True)
    engine.BYTES_LIMIT = max(engine.BYTES_LIMIT, 64 * 2 ** 30)
    out = []

    def timed(backend, meths, starts, steps, reps):
        kw = dict(device="cuda", backend=backend, record_every=1000, record=("positions",))
        simulate("one_optimum", meths, starts, min(steps, 10), **kw)               # build and compile first
        t, res = _median(lambda: (simulate("one_optimum", meths, starts, steps, **kw), torch.cuda.synchronize())[0],
                         reps)
        assert set(res.timings["backends"].values()) == {backend}, res.timings
        return t

    def compare(name, meths, starts, n_runs, steps, target, compile_reps=1):
        t = timed("triton", meths, starts, steps, repeats)
        try:
            tc = timed("compile", meths, starts, steps, compile_reps)
            ratio = f"{tc / t:,.1f}x faster than torch.compile ({tc:.3f} s)"
        except Exception as e:       # torch.compile may run out of memory where the kernel does not
            tc, ratio = float("nan"), f"torch.compile failed: {type(e).__name__}"
        work = len(meths) * n_runs * steps
        print(f"  {name:44s} {t:9.4f} s  {work / t / 1e9:8.2f} G run-steps/s  (target {target})  {ratio}", flush=True)
        out.append({"workload": "GPU " + name, "seconds": t, "compile_seconds": tc, "run_steps": work,
                    "run_steps_per_s": work / t, "target": target, "note": ratio})

    rng_pts = np.random.default_rng(0)
    compare("SAM-GS x 7 starts x 20k", ["samgs"], "paper", 7, 20000, GPU_TARGETS["samgs-7"])
    big = 100_000 if quick else 1_000_000
    compare(f"SAM-GS x {big:,} runs x 20k", ["samgs"], rng_pts.uniform(-10, 10, (big, 2)), big, 20000,
            GPU_TARGETS["samgs-1e6"])
    compare(f"{len(methods)} methods x 7 x 20k", methods, "paper", 7, 20000, GPU_TARGETS["all-7"])
    n = 64 if quick else 256
    compare(f"{len(methods)} methods x {n}x{n} x 20k", methods, f"grid:{n}", n * n, 20000, GPU_TARGETS["all-256"])
    print("  scaling (SAM-GS, 2 000 steps):      runs   triton s   compile s   ratio", flush=True)
    for B in [1, 10, 100, 1000, 10_000, 100_000, 1_000_000] + ([] if quick else [10_000_000]):
        pts = rng_pts.uniform(-10, 10, (B, 2))
        t = timed("triton", ["samgs"], pts, 2000, repeats)
        try:
            tc = timed("compile", ["samgs"], pts, 2000, 1)
        except Exception:
            tc = float("nan")
        print(f"{'':38s}{B:10,d} {t:10.4f} {tc:11.4f} {tc / t:7.1f}x", flush=True)
        out.append({"workload": f"GPU scaling SAM-GS x {B} x 2k", "seconds": t, "compile_seconds": tc,
                    "run_steps": B * 2000, "run_steps_per_s": B * 2000 / t, "target": "", "note": ""})
    return out


def _plot(scaling, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    B, t = zip(*scaling)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.loglog(B, t, "o-", label="wall time")
    ax.loglog(B, [t[-1] * b / B[-1] for b in B], "--", color="grey", label="proportional to runs")
    ax.set_xlabel("runs (SAM-GS, 2 000 steps)")
    ax.set_ylabel("seconds")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=120)
    print(f"scaling plot: {path}")
