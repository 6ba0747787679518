"""The job worker: one process per job, outside the page.

``python -m trajectories.worker JOB_ID [--data DIR]`` runs a queued job of the store: it waits for a
slot (at most ``GRADSCAPE_MAX_JOBS`` jobs run at once on this machine, default 1), runs the job's chunks
one engine call at a time, saves each chunk's Result as soon as it is done, and finally the merged
per-run table. A heartbeat thread writes progress (fraction, run-steps per second, time left) to the
store every ``HEARTBEAT_S`` seconds and picks up a cancel request from the store.

``spawn(store, job_id)`` starts the process (the page does this); ``run_job(store, job_id)`` is the
same work in the calling process (the CLI does this, with a terminal progress bar).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from .store import Store

HEARTBEAT_S = 0.5
QUEUE_POLL_S = 0.5
REPO_ROOT = Path(__file__).resolve().parents[1]
_CHILDREN: list = []     # Popen handles of spawned workers (polled so finished ones do not linger as zombies)


def max_running() -> int:
    try:
        return max(1, int(os.environ.get("GRADSCAPE_MAX_JOBS", "1")))
    except ValueError:
        return 1


def spawn(store: Store, job_id: str) -> subprocess.Popen:
    """Start ``python -m trajectories.worker JOB_ID`` for a queued job; its output goes to worker.log."""
    reap_children()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env["GRADSCAPE_DATA"] = str(store.root)
    log = open(store.path(job_id, "worker.log"), "ab")
    try:
        proc = subprocess.Popen([sys.executable, "-m", "trajectories.worker", job_id, "--data", str(store.root)],
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


class Progress:
    """Progress of a job across its chunks (several may be in flight); the heartbeat thread reads it, the
    engine's callbacks write it.

    Between the engine's reports (every 1000 steps) the fraction is interpolated at the measured rate,
    never past the end of the chunks in flight."""

    def __init__(self, total_steps: float, done_before: float = 0.0):
        self.total = max(float(total_steps), 1.0)
        self.base = float(done_before)      # run-steps of completed chunks (full budget, early exits included)
        self.active: dict = {}              # chunk idx -> [reported run-steps, chunk run-steps]
        self.lock = threading.Lock()
        self.t0 = time.perf_counter()
        self.t_report = self.t0
        self.computed = 0.0                 # run-steps actually computed in this process
        self.chunks_done = 0

    def start_chunk(self, idx: int, run_steps: float):
        with self.lock:
            self.active[idx] = [0.0, float(run_steps)]

    def report(self, idx: int, done: float):
        with self.lock:
            a = self.active.get(idx)
            if a is None:
                return
            self.computed += max(0.0, float(done) - a[0])
            a[0] = float(done)
            self.t_report = time.perf_counter()

    def end_chunk(self, idx: int):
        with self.lock:
            a = self.active.pop(idx, None)
            if a is not None:
                self.base += a[1]
                self.chunks_done += 1
            self.t_report = time.perf_counter()

    def drop_chunk(self, idx: int):
        with self.lock:
            self.active.pop(idx, None)

    def snapshot(self):
        """(fraction, done run-steps, rate in run-steps/s, eta in s or None)."""
        with self.lock:
            now = time.perf_counter()
            elapsed = max(now - self.t0, 1e-9)
            rate = self.computed / elapsed if self.computed > 0 else None
            reported = sum(a[0] for a in self.active.values())
            done = self.base + reported
            if rate and self.active:
                cap = self.base + 0.999 * sum(a[1] for a in self.active.values())
                done = min(done + rate * (now - self.t_report), cap)
            eta = max(self.total - done, 0.0) / rate if rate else None
            return min(done / self.total, 1.0), done, rate, eta


class Heartbeat(threading.Thread):
    """Writes progress to the store every HEARTBEAT_S and watches the store's cancel flag."""

    def __init__(self, store: Store, job_id: str, progress: Progress, on_progress=None):
        super().__init__(daemon=True, name=f"heartbeat-{job_id}")
        self.store, self.job_id, self.progress, self.on_progress = store, job_id, progress, on_progress
        self.cancelled = threading.Event()
        self.stopped = threading.Event()

    def beat(self):
        frac, done, rate, eta = self.progress.snapshot()
        try:
            self.store.progress(self.job_id, fraction=frac, done_steps=done, rate=rate, eta_s=eta)
            if self.store.cancel_requested(self.job_id):
                self.cancelled.set()
        except Exception:   # a busy database must not kill the job; the next beat retries
            pass
        if self.on_progress:
            self.on_progress(frac, rate, eta, self.progress.chunks_done)

    def run(self):
        while not self.stopped.wait(HEARTBEAT_S):
            self.beat()

    def stop(self):
        self.stopped.set()
        self.join(timeout=5)


def chunks_in_flight() -> int:
    """Engine calls a worker keeps going at once (``GRADSCAPE_CHUNKS_IN_FLIGHT``, default 2): while one
    call classifies its runs (single-threaded numpy/torch), the next one's kernel uses the other cores."""
    try:
        return max(1, int(os.environ.get("GRADSCAPE_CHUNKS_IN_FLIGHT", "2")))
    except ValueError:
        return 2


def run_job(store: Store, job_id: str, *, on_progress=None, limit: int | None = None, threads=None) -> str:
    """Run a queued job of ``store`` in this process; returns its final status.

    ``limit``: how many jobs may run at once (default ``GRADSCAPE_MAX_JOBS``); ``on_progress(fraction,
    rate, eta_s, chunks_done)`` is called on every heartbeat (the CLI's progress bar)."""
    from . import engine
    from .jobs import JobConfig, JobResult

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
        # build every kernel first, one at a time (tracing is not shared between threads)
        alone = set()     # methods without a fused kernel (engine fallback): their chunks run one at a time
        ran = {"device": "", "backends": {}}      # what the job view shows (ran.json beside the chunks)
        for method in dict.fromkeys(c.method for c in todo):
            if hb.cancelled.is_set():
                raise engine.Cancelled("cancelled")
            warm = engine.run(cfg.engine_config(method, cfg.seeds[0], pts[:1], steps=1), threads=1)
            ran["device"] = warm.timings.get("device", "")
            ran["backends"].update(warm.timings.get("backends", {}))
            if set(warm.timings.get("backends", {}).values()) - {"c", "triton"}:
                alone.add(method)
        if todo:
            store.path(job_id, "ran.json").write_text(json.dumps(ran))
        _run_chunks(store, job_id, cfg, todo, pts, progress, hb, threads, alone)
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
        traceback.print_exc()
        store.finish(job_id, "failed", msg, wall_s=time.perf_counter() - t_start)
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        return "failed"
    finally:
        if hb is not None:
            hb.stop()


def _run_chunks(store, job_id, cfg, todo, pts, progress, hb, threads, alone=frozenset()):
    """Run ``todo`` with up to ``chunks_in_flight()`` engine calls at once (chunks of the methods in
    ``alone`` by themselves); each finished chunk is saved and registered at once (in completion order).
    The first error stops the rest and is raised after the chunks already finished are registered."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from . import engine

    abort = threading.Event()

    def stop() -> bool:
        return hb.cancelled.is_set() or abort.is_set()

    def work(chunk):
        ecfg = cfg.engine_config(chunk.method, chunk.seed, pts[chunk.lo:chunk.hi])
        res = engine.run(ecfg, threads=threads, cancel=stop,
                         progress=lambda d, t, i=chunk.idx: progress.report(i, d))
        res.save(store.path(job_id, chunk.file))
        return res

    queue = iter(todo)
    error = None
    with ThreadPoolExecutor(max_workers=chunks_in_flight(), thread_name_prefix=f"chunk-{job_id}") as pool:
        inflight = {}
        waiting = []

        def fill():
            while error is None and not stop() and len(inflight) < chunks_in_flight():
                if any(c.method in alone for c in inflight.values()):
                    return
                chunk = waiting.pop() if waiting else next(queue, None)
                if chunk is None:
                    return
                if chunk.method in alone and inflight:
                    waiting.append(chunk)
                    return
                progress.start_chunk(chunk.idx, chunk.run_steps)
                inflight[pool.submit(work, chunk)] = chunk

        try:
            fill()
        except BaseException:
            abort.set()
            raise
        while inflight:
            try:
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
            except BaseException:    # a signal (SIGTERM -> SystemExit) or Ctrl-C: stop the chunks in flight
                abort.set()
                raise
            for f in finished:
                chunk = inflight.pop(f)
                try:
                    res = f.result()
                except BaseException as e:   # noqa: BLE001 - re-raised below, after the others stop
                    progress.drop_chunk(chunk.idx)
                    if error is None or (isinstance(error, engine.Cancelled) and not isinstance(e, engine.Cancelled)):
                        error = e            # a real error wins over the cancellations it caused
                    abort.set()
                    continue
                store.add_chunk(job_id, chunk.idx, chunk.file, method=chunk.method, seed=chunk.seed, lo=chunk.lo,
                                hi=chunk.hi, wall_s=res.timings["wall_s"], steps_run=res.timings["steps_run"])
                progress.end_chunk(chunk.idx)
            fill()
    if error is not None:
        raise error
    if hb.cancelled.is_set():
        raise engine.Cancelled("cancelled")


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
    ap = argparse.ArgumentParser(prog="python -m trajectories.worker", description="Run one stored benchmark job.")
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
