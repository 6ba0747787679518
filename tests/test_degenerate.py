"""Degenerate and slow custom landscapes are answered, not waited for: a Pareto set that is a region is recognised
at once, the weighted sum flat along it has no isolated optimum, a computation past its time budget keeps what it
found, and one can be cancelled — on the page too, where Apply answers within the budget.

The degenerate example is the issue's: tasks ``x1`` and ``-x1``. Every point is Pareto-optimal (no point improves
one task without worsening the other), and their sum is 0 everywhere.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from landscapes import custom, pareto
from views import prepare

DEGENERATE = {"name": "degenerate", "tasks": ["x1", "-x1"], "bounds": [[-5, 5], [-5, 5]]}
APP = str(Path(__file__).resolve().parents[1] / "app.py")


def fresh(spec: dict, tmp_path, monkeypatch):
    """A landscape object of its own with an empty disk cache (nothing computed before)."""
    monkeypatch.setenv("GRADSCAPE_CACHE", str(tmp_path / "cache"))
    return custom._build(custom.validate(spec))


def test_the_whole_box_pareto_set_is_recognised_within_the_budget(tmp_path, monkeypatch):
    land = fresh(DEGENERATE, tmp_path, monkeypatch)
    t = time.perf_counter()
    ps = land.prepare_pareto(budget_s=prepare.BUDGET_S)
    took = time.perf_counter() - t
    assert took < 10.0, took
    assert ps.region and "covers much of the box" in ps.note
    assert len(ps.points) > 0.9 * 300 * 300                  # every grid point is non-dominated
    t = time.perf_counter()
    assert land.optima().shape == (0, 2)                     # the sum is flat: no isolated minimiser
    assert time.perf_counter() - t < 1.0
    # any point of the box is on the set: distance 0 up to the grid's half-diagonal
    from trajectories import metrics
    d = metrics.pareto_distance(land, np.random.default_rng(0).uniform(-5, 5, (50, 2)))
    assert d.max() <= 0.5 * np.hypot(10 / 299, 10 / 299) + 1e-9


def test_a_computation_past_its_deadline_keeps_what_it_found_and_is_not_cached(tmp_path, monkeypatch):
    spec = {"name": "bowls", "tasks": ["(x1-1)^2 + x2^2", "(x1+1)^2 + x2^2"], "bounds": [[-5, 5], [-5, 5]]}
    land = fresh(spec, tmp_path, monkeypatch)
    ps = pareto.cached_pareto(land, deadline=time.monotonic() - 1)
    assert ps.note.startswith("Computed to a coarser resolution") and len(ps.points)
    assert not list((tmp_path / "cache").rglob("*.npz"))         # a cut-short set is never stored
    full = pareto.cached_pareto(land)
    assert not full.note and list((tmp_path / "cache").rglob("*.npz"))
    # the bowls' set is the segment from (-1, 0) to (1, 0): the coarse one is within a grid cell of it
    assert np.abs(ps.points[:, 1]).max() < 10 / 299 * 2 and np.abs(full.points[:, 1]).max() < 1e-6


def test_a_computation_can_be_cancelled(tmp_path, monkeypatch):
    land = fresh({"name": "c", "tasks": ["x1^2 + x2^2", "(x1-1)^2 + x2^2"], "bounds": [[-2, 2], [-2, 2]]},
                 tmp_path, monkeypatch)
    with pytest.raises(pareto.Cancelled):
        land.prepare_pareto(cancel=lambda: True)
    assert not land.pareto_ready


class _Slow:
    """A landscape stand-in whose Pareto set takes until it is cancelled."""
    key, spec, title = "slow", {"n": 1}, "slow"
    pareto_ready = False

    def prepare_pareto(self, *, budget_s=None, progress=None, cancel=None):
        for i in range(1000):
            if cancel():
                raise pareto.Cancelled("cancelled")
            progress(i / 1000, "waiting")
            time.sleep(0.01)
        raise AssertionError("was not cancelled")


def test_the_page_job_reports_progress_and_stops_on_cancel_without_blocking_others():
    job = prepare.job_of(_Slow())
    time.sleep(0.1)
    assert 0 < job.fraction < 1 and job.text == "waiting"
    other = threading.Thread(target=lambda: time.sleep(0.01))      # the process keeps serving meanwhile
    other.start()
    other.join(1.0)
    assert not other.is_alive()
    job.cancel.set()
    with pytest.raises(pareto.Cancelled):
        job.future.result(timeout=2)
    assert prepare.job_of(_Slow()) is not job                    # a cancelled one is started afresh next time
    prepare.job_of(_Slow()).cancel.set()


def test_applying_the_degenerate_landscape_answers_within_the_budget(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADSCAPE_CACHE", str(tmp_path / "cache"))
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params.update({"land": "custom", "steps": "300", "methods": "samgs,ls"})
    at.session_state["explore.whole_page"] = True      # the sidebar, as after the map's first drawing
    at.run()
    at.text_area(key="x.studio.tasks").set_value("x1\n-x1").run()
    at.button(key="x.studio_apply").click()
    t = time.perf_counter()
    at.run()
    took = time.perf_counter() - t
    assert not at.exception, [e.value for e in at.exception]
    infos = " ".join(i.value for i in at.info)
    assert "covers much of the box" in infos and "flat along the Pareto set" in infos
    assert at.session_state["explore.config"]["landscape_spec"]["tasks"] == ["x1", "-x1"]
    print(f"\nApply of the degenerate landscape (Pareto set + 2 methods' kernels + runs): {took:.1f} s")
    assert took < 120                     # kernels for a new landscape are built here; the Pareto step is < 10 s
