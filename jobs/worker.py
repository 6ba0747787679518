"""The job worker: one process per job, outside the page; it drives the job's chunks on a runner.

``python -m jobs.worker JOB_ID [--data DIR]`` runs a queued job of the store: it waits for a slot (at most
``GRADSCAPE_MAX_JOBS`` jobs run at once on this machine, default 1), runs the job's chunks on its runner, stores
each chunk as soon as it is done, and finally the merged per-run table. A heartbeat thread writes progress
(fraction, run-steps per second, time left) to the store and picks up a cancel request from the store.

Runners: the job's own threads (``jobs/local.py``, the default) or, when the job's config names a cluster,
Ray tasks (``jobs/ray_runner.py``); this process then is the Ray driver, and still the only writer of the job's
files and index rows.

``launch(config, store)`` records a job and starts its process (the page does this); ``run_job(store, job_id)``
is the same work in the calling process (the CLI does this, with a terminal progress bar).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from trajectories import engine

from . import local, ray_runner
from .config import JobConfig, resolve_cluster
from .progress import Heartbeat, Progress
from .results import JobResult
from .store import Store, atomic_write_text

QUEUE_POLL_S = 0.5
REPO_ROOT = Path(__file__).resolve().parents[1]
_CHILDREN: list = []     # Popen handles of spawned workers (polled so finished ones do not linger as zombies)


def max_running() -> int:
    try:
        return max(1, int(os.environ.get("GRADSCAPE_MAX_JOBS", "1")))
    except ValueError:
        return 1


def spawn(store: Store, job_id: str) -> subprocess.Popen:
    """Start ``python -m jobs.worker JOB_ID`` for a queued job; its output goes to worker.log."""
    reap_children()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["GRADSCAPE_DATA"] = str(store.root)
    log = open(store.path(job_id, "worker.log"), "ab")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "jobs.worker", job_id, "--data", str(store.root)],
                                cwd=str(REPO_ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except OSError as e:
        store.finish(job_id, "failed", f"could not start the worker process: {e}")
        raise
    finally:
        log.close()
    store.set_pid(job_id, proc.pid)
    _CHILDREN.append(proc)
    return proc


def reap_children():
    for p in list(_CHILDREN):
        if p.poll() is not None:
            _CHILDREN.remove(p)


def create(cfg: JobConfig, store: Store, *, name: str | None = None) -> str:
    """Record ``cfg`` as a queued job (no worker started); its cluster is decided now (``resolve_cluster``)."""
    cfg = resolve_cluster(cfg)
    chunks = cfg.plan()
    d = cfg.to_dict()
    if name:
        d["name"] = name
    return store.create(d, name=d["name"] or cfg.title, chunks_total=len(chunks),
                        total_steps=sum(c.run_steps for c in chunks))


def launch(config, store: Store | None = None, *, name: str | None = None) -> str:
    """Validate ``config`` (a dict or JobConfig), record it as a queued job and start its worker process.
    Returns the job id. Raises ValueError (a one-line message) when the config is refused."""
    store = store or Store()
    cfg = config if isinstance(config, JobConfig) else JobConfig.from_dict(config)
    job_id = create(cfg, store, name=name)
    spawn(store, job_id)
    return job_id


def run_job(store: Store, job_id: str, *, on_progress=None, limit: int | None = None, threads=None) -> str:
    """Run a queued job of ``store`` in this process; returns its final status.

    ``limit``: how many jobs may run at once (default ``GRADSCAPE_MAX_JOBS``); ``on_progress(fraction,
    rate, eta_s, chunks_done)`` is called on every heartbeat (the CLI's progress bar)."""
    job = store.get(job_id)
    if job is None:
        raise KeyError(f"no job {job_id!r} in {store.root}")
    limit = max_running() if limit is None else limit
    while True:
        status = store.claim(job_id, limit)
        if status != "queued":
            break
        time.sleep(QUEUE_POLL_S)
    if status != "running":
        return status
    t_start = time.perf_counter()
    hb = None
    try:
        cfg = JobConfig.from_dict(job["config"])
        chunks = cfg.plan()
        done = {c["idx"] for c in store.chunks(job_id)}
        total = sum(c.run_steps for c in chunks)
        progress = Progress(total, sum(c.run_steps for c in chunks if c.idx in done))
        store.update(job_id, chunks_total=len(chunks), total_steps=float(total))
        pts = cfg.start_points()
        hb = Heartbeat(store, job_id, progress, on_progress)
        hb.beat()
        hb.start()
        todo = [c for c in chunks if c.idx not in done]

        def note_ran(ran: dict):     # what the job view shows: the device and backends (ran.json)
            atomic_write_text(store.path(job_id, "ran.json"), json.dumps(ran))

        if cfg.cluster:
            ray_runner.run_chunks(store, job_id, cfg, todo, pts, progress, hb, note_ran=note_ran)
        else:
            ran, alone = local.warm(cfg, todo, pts, hb)
            if todo:
                note_ran(ran)
            local.run_chunks(store, job_id, cfg, todo, pts, progress, hb, threads=threads, alone=alone)
        merged = JobResult.from_chunks(job_id, cfg, store.chunks(job_id), store.job_dir(job_id), complete=True)
        if merged.notes:
            raise RuntimeError("; ".join(merged.notes))
        merged.save(store.path(job_id, "runs.npz"))
        hb.stop()
        hb.beat()
        store.finish(job_id, "finished", wall_s=time.perf_counter() - t_start)
        return "finished"
    except engine.Cancelled:
        n = len(store.chunks(job_id))
        store.finish(job_id, "cancelled", f"cancelled; {n} of {job['chunks_total'] or '?'} chunks were complete",
                     wall_s=time.perf_counter() - t_start)
        return "cancelled"
    except BaseException as e:
        msg = _one_line(e)
        if not isinstance(e, ValueError):     # a ValueError is its own one-line explanation (a refused input)
            traceback.print_exc()
        store.finish(job_id, "failed", msg, wall_s=time.perf_counter() - t_start)
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return "failed"
    finally:
        if hb is not None:
            hb.stop()


def _one_line(e: BaseException) -> str:
    if isinstance(e, KeyboardInterrupt):
        return "interrupted"
    if isinstance(e, SystemExit):
        return f"terminated ({e})" if str(e) else "terminated"
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if not isinstance(e, ValueError) else text


def _on_sigterm(signum, frame):
    raise SystemExit(f"signal {signum}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m jobs.worker", description="Run one stored benchmark job.")
    ap.add_argument("job_id")
    ap.add_argument("--data", default=None, help="the data folder (default: $GRADSCAPE_DATA or ./gradscape-data)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:   # a background job yields the CPU to the page
        os.nice(int(os.environ.get("GRADSCAPE_WORKER_NICE", "5")))
    except (OSError, ValueError):
        pass
    store = Store(args.data, reap=False)
    if store.get(args.job_id) is None:
        print(f"worker: no job {args.job_id!r} in {store.root}", file=sys.stderr)
        return 2
    try:
        status = run_job(store, args.job_id)
    except SystemExit:
        return 1
    print(f"worker: job {args.job_id} {status}", flush=True)
    return 0 if status in ("finished", "cancelled") else 1


if __name__ == "__main__":
    sys.exit(main())
