"""``python -m trajectories bench --jobs-speed``: the job system measured, local worker against Ray, side by side.

Every row is the median of ``--repeats`` runs, with the load average before and after (this machine may be
shared: a row measured under load says so). Jobs are recorded in a temporary store and run in this process,
as the CLI runs them (this process is the Ray driver).

* the sweep: SAM-GS over a γ x β₁ grid (``--cells`` x ``--cells``) x a 32 x 32 grid of starts x 20 000 steps,
  on the local worker and on a local Ray instance (``cluster: local``, ``--cpus`` CPUs): wall time, throughput
  (run-steps per second, the job's whole wall time), and the same with Ray's start-up taken out;
* start-up: a one-chunk job of one run (Ray: a fresh local instance, the driver joining it, the workers'
  imports; local: the worker's kernel warm-up);
* overhead per chunk: (a job of ``--tiny`` one-run chunks − the one-chunk job) / (``--tiny`` − 1): scheduling,
  serialising, the store's write and index row, per chunk;
* the store's intake: ``Store.put_chunk`` of the sweep's own chunk files, back to back (chunks per second,
  bytes per chunk), which bounds how many chunks a cluster can return per second to one store;
* on paper: what ``--nodes`` machines of ``--cores`` cores would do with every method x a 1024 x 1024 map x
  20 000 steps, from the per-core throughput, the chunk size and the store's intake measured here.

Nothing here is a test: the numbers go to the README.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import optimizers

from . import worker
from .config import Chunk, JobConfig
from .store import Store

STEPS = 20_000


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _job(store: Store, cfg: dict) -> tuple[float, dict]:
    """Run ``cfg`` as a job in this process; (wall seconds, the job's record)."""
    job_id = worker.create(JobConfig.from_dict(cfg), store)
    t0 = time.perf_counter()
    status = worker.run_job(store, job_id, limit=10 ** 6)
    wall = time.perf_counter() - t0
    job = store.get(job_id)
    if status != "finished":
        raise RuntimeError(f"job {job_id} {status}: {job['message']}")
    return wall, job


def sweep_config(cells: int, cluster: str) -> dict:
    return {"name": f"jobs-speed-{cluster or 'local'}", "landscape": "one_optimum", "methods": ["samgs"],
            "starts": "grid:32", "steps": STEPS, "early_exit": False, "cluster": cluster,     # paths every 500 steps
            "sweep": {"samgs": {"gamma": f"lin(0.05, 0.5, {cells})", "beta1": f"lin(0.5, 0.95, {cells})"}},
            "chunk_runs": 4096}


def tiny_config(chunks: int, cluster: str) -> dict:
    return {"name": "jobs-speed-tiny", "landscape": "one_optimum", "methods": ["ls"],
            "starts": f"random:{chunks}:1", "steps": 10, "record_every": 10, "chunk_runs": 1, "cluster": cluster}


def measure(where: str, cluster: str, a, rows: list, root: Path):
    def timed(label, fn):
        walls, loads = [], [_load()]
        out = None
        for _ in range(a.repeats):
            out = fn()
            walls.append(out[0])
        loads.append(_load())
        t = statistics.median(walls)
        rows.append({"where": where, "what": label, "seconds": t, "runs": walls, "load": f"{loads[0]} -> {loads[1]}"})
        print(f"  {where:10s} {label:44s} {t:8.2f} s   (runs {', '.join(f'{w:.2f}' for w in walls)}; "
              f"load {loads[0]} -> {loads[1]})", flush=True)
        return t, out[1]

    store = Store(root / where.replace(" ", "-"))
    one, _ = timed("start-up: one chunk of one run", lambda: _job(store, tiny_config(1, cluster)))
    many, _ = timed(f"{a.tiny} one-run chunks", lambda: _job(store, tiny_config(a.tiny, cluster)))
    per_chunk = (many - one) / (a.tiny - 1)
    rows.append({"where": where, "what": "overhead per chunk", "seconds": per_chunk})
    print(f"  {where:10s} {'overhead per chunk':44s} {per_chunk * 1e3:8.1f} ms", flush=True)
    sweep = sweep_config(a.cells, cluster)
    cfg = JobConfig.from_dict(sweep)
    work = sum(c.run_steps for c in cfg.plan())
    t, job = timed(f"sweep: {a.cells}x{a.cells} cells x 32x32 starts x 20k ({len(cfg.plan())} chunks)",
                   lambda: _job(store, sweep))
    rows.append({"where": where, "what": "sweep throughput", "run_steps_per_s": work / t,
                 "after_startup": work / max(t - one, 1e-9)})
    print(f"  {where:10s} {'sweep throughput':44s} {work / t / 1e6:8.1f} M run-steps/s "
          f"({work / max(t - one, 1e-9) / 1e6:.1f} M without the start-up)", flush=True)
    return store, job


def store_intake(store: Store, job: dict, repeats: int) -> tuple[float, float, float]:
    """(chunks per second, mean bytes per chunk, bytes per run): ``put_chunk`` of the sweep's own chunk files,
    back to back, into a new job of the same store."""
    chunks = store.chunks(job["id"])
    files = [(c, store.path(job["id"], c["file"]).read_bytes(),
              store.path(job["id"], c["file"]).with_suffix(".json").read_text()) for c in chunks]
    rates = []
    for _ in range(repeats):
        target = store.create(job["config"], name="intake", chunks_total=len(files))
        t0 = time.perf_counter()
        for c, data, meta in files:
            chunk = Chunk(c["idx"], c["method"], c["seed"], c["lo"], c["hi"], 1, 1)
            store.put_chunk(target, chunk, data, meta=meta, wall_s=c["wall_s"], steps_run=c["steps_run"])
        rates.append(len(files) / (time.perf_counter() - t0))
    plan = {c.idx: c for c in JobConfig.from_dict(job["config"]).plan()}
    total = sum(len(d) + len(m) for _, d, m in files)
    return statistics.median(rates), total / len(files), total / sum(plan[c["idx"]].runs for c, _, _ in files)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trajectories bench --jobs-speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cells", type=int, default=6, help="the sweep's γ x β₁ grid is CELLS x CELLS (default 6)")
    p.add_argument("--tiny", type=int, default=40, help="one-run chunks of the overhead job (default 40)")
    p.add_argument("--cpus", type=int, default=os.cpu_count() or 1, help="CPUs of the local Ray instance")
    p.add_argument("--nodes", type=int, default=100, help="machines of the cluster on paper (default 100)")
    p.add_argument("--cores", type=int, default=32, help="cores per machine on paper (default 32)")
    p.add_argument("--skip-ray", action="store_true", help="the local worker only")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    os.environ["GRADSCAPE_RAY_CPUS"] = str(a.cpus)
    rows: list = []
    print(f"machine: {os.cpu_count()} cores; load average {_load()}; medians of {a.repeats}", flush=True)
    with tempfile.TemporaryDirectory(prefix="gradscape-jobs-speed-") as tmp:
        store, job = measure("local", "none", a, rows, Path(tmp))
        rate, nbytes, per_run = store_intake(store, job, a.repeats)
        if not a.skip_ray:
            measure(f"ray {a.cpus} cpu", "local", a, rows, Path(tmp))
    print(f"\nstore intake (put_chunk: file written, fsynced, renamed, index row): {rate:.0f} chunks/s at "
          f"{nbytes / 1e3:.0f} kB per chunk ({per_run:.0f} bytes per run, paths every 500 steps)", flush=True)
    local = next(r for r in rows if r["where"] == "local" and r["what"] == "sweep throughput")
    per_core = local["after_startup"] / (os.cpu_count() or 1)
    ray_start = next((r["seconds"] for r in rows if r["where"].startswith("ray") and r["what"].startswith("start")),
                     float("nan"))
    rows.append({"where": "store", "what": "intake", "chunks_per_s": rate, "bytes_per_chunk": nbytes,
                 "bytes_per_run": per_run})
    paper(per_core, rate, per_run, ray_start, a.nodes, a.cores, rows)
    if a.json:
        print(json.dumps(rows, indent=2))
    return 0


def paper(per_core: float, intake: float, bytes_per_run: float, start_s: float, nodes: int, cores: int,
          rows: list):
    """Every method x 1024 x 1024 starts x 20 000 steps, on ``nodes`` x ``cores``, from the measured rates."""
    methods = len(optimizers.names())
    runs = methods * 1024 * 1024
    work = runs * STEPS
    chunk_runs = 65_536                                  # the job default (jobs.config.DEFAULT_CHUNK_RUNS)
    chunks = methods * (1024 * 1024 // chunk_runs)
    slots = nodes * cores
    compute = work / (per_core * slots)
    waves = -(-chunks // slots)                          # a chunk is one core's work: ceil(chunks / slots)
    chunk_s = chunk_runs * STEPS / per_core
    per_chunk_bytes = bytes_per_run * chunk_runs
    arrival = min(chunks, slots) / chunk_s               # chunks per second the store must take at the peak
    print(f"\non paper: {methods} methods x 1024 x 1024 starts x {STEPS:,} steps = {work:.2e} run-steps in "
          f"{chunks} chunks of {chunk_runs:,} runs ({per_chunk_bytes / 1e6:.1f} MB each, "
          f"{chunks * per_chunk_bytes / 1e9:.1f} GB in all)")
    print(f"  one core here: {per_core / 1e6:.1f} M run-steps/s -> {work / per_core / 3600:.1f} core-hours; "
          f"{nodes} machines x {cores} cores = {slots} slots")
    print(f"  with the default chunks: {waves} wave(s) of {chunk_s:.0f} s each (a chunk is one core's work, "
          f"and only {chunks} chunks for {slots} slots) -> about {waves * chunk_s / 60:.1f} min")
    fine = max(1, (1024 * 1024 * methods) // slots)      # chunk_runs that gives every slot one chunk
    print(f"  with chunk_runs = {fine:,} (one chunk per slot): about {compute:.0f} s of compute; the store then "
          f"takes {slots} chunks of {bytes_per_run * fine / 1e6:.2f} MB at once (~{slots / max(intake, 1e-9):.0f} s "
          f"at {intake:.0f} chunks/s)")
    print(f"  the store's intake is reached when chunks arrive faster than {intake:.0f}/s: at the default chunk "
          f"size they arrive at {arrival:.2f}/s")
    total = runs * bytes_per_run
    print(f"  every result crosses to the driver's machine: {total / 1e9:.1f} GB, {total * 8 / 1e9:.0f} s at 1 Gbit/s, "
          f"{total * 8 / 1e10:.0f} s at 10 Gbit/s; plus Ray's start-up ({start_s:.0f} s here, on a loaded 2-core machine)")
    rows.append({"where": "paper", "what": "1024x1024 map", "nodes": nodes, "cores": cores, "chunks": chunks,
                 "default_chunks_s": waves * chunk_s, "fine_chunks_s": compute + slots / max(intake, 1e-9)})
