"""A job's progress across its chunks, and the heartbeat that writes it to the store.

Both runners feed :class:`Progress` (chunk started, run-steps done so far, chunk ended); the :class:`Heartbeat`
thread of the job's driver process (the local worker, or the CLI) writes it to the store every ``HEARTBEAT_S``
seconds, which is all the page reads, and picks up a cancel request from the store. Neither knows how a chunk
is computed.
"""
from __future__ import annotations

import threading
import time

from .store import Store

HEARTBEAT_S = 0.5


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
