"""A new landscape's Pareto set, computed off the page's thread: with a time budget, a progress bar and Cancel.

A user-defined landscape's Pareto set is computed once (then cached in the landscape object, shared by every
session, and on disk). Here that happens in a small thread pool: the page shows progress and a Cancel button while
it waits, other sessions keep running, and two sessions applying the same definition wait for one computation.
``BUDGET_S`` bounds it (``landscapes/pareto.py`` keeps what it found when the time is up, and says so); a set that
is degenerate — most of the box Pareto-optimal — is recognised on the first grid and answered at once.
"""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import streamlit as st

from landscapes.pareto import Cancelled

BUDGET_S = 8.0             # Apply answers within 10 s: the budget, plus drawing
_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="gradscape-pareto")
_LOCK = threading.Lock()


@dataclass
class Job:
    future: Future | None = None
    fraction: float = 0.0
    text: str = "starting"
    cancel: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)


_JOBS: dict = {}


def _key(land) -> tuple:
    return land.key, json.dumps(getattr(land, "spec", None), sort_keys=True, default=str)


def job_of(land) -> Job:
    """The computation of ``land``'s Pareto set (started when none is running or the last one was cancelled)."""
    key = _key(land)
    with _LOCK:
        job = _JOBS.get(key)
        if job is None or (job.future.done() and job.future.exception() is not None):
            job = Job()

            def progress(frac, text):
                job.fraction, job.text = float(frac), text

            job.future = _POOL.submit(land.prepare_pareto, budget_s=BUDGET_S, progress=progress,
                                      cancel=job.cancel.is_set)
            _JOBS[key] = job
        return job


def prepare(land, box) -> bool:
    """Make sure ``land`` has its Pareto set, showing progress in ``box`` (an ``st.empty``). False when the user
    cancelled (the caller goes back to the previous landscape)."""
    if land.pareto_ready:
        return True
    job = job_of(land)
    with box.container():
        bar = st.progress(0.0, text=f"Computing the Pareto set of “{land.title}” numerically (once; cached)…")
        st.button("Cancel", key="explore.cancel_pareto", on_click=job.cancel.set, icon=":material/cancel:",
                  help="stop computing and go back to the previous landscape")
        while not job.future.done():
            bar.progress(min(max(job.fraction, 0.0), 1.0),
                         text=f"Computing the Pareto set of “{land.title}”: {job.text} "
                              f"({time.monotonic() - job.started:.0f} s; at most {BUDGET_S:.0f} s)…")
            time.sleep(0.15)
    box.empty()
    try:
        job.future.result()
    except Cancelled:
        return False
    return True


def notes(land, weights=None, scale: float = 1.0) -> list[str]:
    """What is special about a landscape's Pareto set and optima, in sentences for the page."""
    out = []
    ps = land.pareto
    if ps.note:
        out.append(ps.note)
    if not len(land.optima(weights, scale)):
        out.append("The weighted sum of the losses is flat along the Pareto set here: it has no isolated global "
                   "optimum, so no run is counted as reaching one (reaching the Pareto set still is).")
    return out
