"""The local runner: a job's chunks as engine calls on threads of the job's own process (the default).

Up to ``chunks_in_flight()`` chunks run at once: while one call classifies its runs (single-threaded numpy and
torch), the next one's kernel uses the other cores. Kernels are built first, one method at a time (tracing is
not shared between threads); a method the fused kernels cannot take runs its chunks alone. Each finished chunk
goes to the store at once, in completion order (``chunks.save``); the first error stops the rest and is raised
after the chunks already finished are stored.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from trajectories import engine

from . import chunks as chunks_mod


def chunks_in_flight() -> int:
    """Engine calls a worker keeps going at once (``GRADSCAPE_CHUNKS_IN_FLIGHT``, default 2)."""
    try:
        return max(1, int(os.environ.get("GRADSCAPE_CHUNKS_IN_FLIGHT", "2")))
    except ValueError:
        return 2


def warm(cfg, todo, pts, hb) -> tuple[dict, set]:
    """Build every kernel the chunks ``todo`` need (one tiny engine call per method). Returns what the job view
    shows (``{"device", "backends"}``) and the methods without a fused kernel (their chunks run one at a time)."""
    alone = set()
    ran = {"device": "", "backends": {}}
    for method in dict.fromkeys(c.method for c in todo):
        if hb.cancelled.is_set():
            raise engine.Cancelled("cancelled")
        res = engine.run(cfg.engine_config(method, cfg.seeds[0], pts[:1], steps=1), threads=1)
        ran["device"] = res.timings.get("device", "")
        ran["backends"].update(res.timings.get("backends", {}))
        if set(res.timings.get("backends", {}).values()) - {"c", "triton"}:
            alone.add(method)
    return ran, alone


def run_chunks(store, job_id, cfg, todo, pts, progress, hb, *, threads=None, alone=frozenset()):
    """Run the chunks ``todo`` of job ``job_id`` on threads and store each as it finishes."""
    abort = threading.Event()

    def stop() -> bool:
        return hb.cancelled.is_set() or abort.is_set()

    def work(chunk):
        return chunks_mod.compute(cfg, chunk, pts, threads=threads, cancel=stop,
                                  progress=lambda d, t, i=chunk.idx: progress.report(i, d))

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
                    out = f.result()
                except BaseException as e:   # noqa: BLE001 - re-raised below, after the others stop
                    progress.drop_chunk(chunk.idx)
                    if error is None or (isinstance(error, engine.Cancelled) and not isinstance(e, engine.Cancelled)):
                        error = e            # a real error wins over the cancellations it caused
                    abort.set()
                    continue
                chunks_mod.save(store, job_id, chunk, out)
                progress.end_chunk(chunk.idx)
            fill()
    if error is not None:
        raise error
    if hb.cancelled.is_set():
        raise engine.Cancelled("cancelled")
