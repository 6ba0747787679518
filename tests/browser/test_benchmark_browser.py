"""The Benchmark page in real Chromium: launch a small job from the page, watch it finish, see the basin
map and the success table (downloaded as CSV and checked against the stored runs).

Uses the shared browser fixtures of tests/browser/conftest.py, with a server of its own whose data folder
(GRADSCAPE_DATA) is private to this module.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
JOB_TIMEOUT_MS = 240_000


@pytest.fixture(scope="module")
def bench_server(tmp_path_factory, app_launcher):
    """The app with a private data folder; yields (base URL, data folder)."""
    data = tmp_path_factory.mktemp("bench-data")
    with app_launcher({"GRADSCAPE_DATA": str(data), "GRADSCAPE_MAX_JOBS": "1"}) as url:
        yield url, data


def _fill_number(page, label: str, value: int):
    box = page.get_by_label(label, exact=True)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_timeout(300)


def test_launch_watch_and_open_a_job(bench_server, page, screenshots):
    from figures import vocabulary as vocab
    from jobs.results import load_result
    from jobs.store import Store
    import landscapes

    url, data = bench_server
    page.goto(url + "/benchmark")
    page.get_by_role("heading", name="Benchmark").first.wait_for(timeout=120_000)
    page.get_by_text("No jobs yet").wait_for(timeout=120_000)
    page.get_by_role("tab", name="Custom job").click()
    _fill_number(page, "Grid size n (n × n starts)", 6)
    _fill_number(page, "Steps", 20000)
    page.get_by_text("2 variants × 1 seed × 36 starts", exact=False).first.wait_for(timeout=120_000)
    page.get_by_role("button", name="Launch job").click()

    # the live list shows the job, then its end; the page stays usable meanwhile
    page.get_by_text("one_optimum · 2 methods · grid:6 · 20 000 steps · lr 0.001").first.wait_for(timeout=60_000)
    # the job's caption reads "status **finished**" once the live list has seen the job end (the picker's
    # label is an input value and the job table a canvas, so neither is DOM text)
    page.locator("strong", has_text=re.compile(r"^finished$")).first.wait_for(timeout=JOB_TIMEOUT_MS)
    store = Store(data)
    [job] = store.list_jobs()
    assert job["status"] == "finished", job["message"]

    # the basin map: a Plotly figure with one panel per method
    page.get_by_text("Basin maps ·").first.wait_for(timeout=120_000)
    plot = page.locator(".js-plotly-plot").first
    plot.wait_for(timeout=60_000)
    assert plot.locator("text", has_text="SAM-GS").count() >= 1
    assert plot.locator(".hm").count() + plot.locator("image").count() >= 2     # two heatmap panels
    page.screenshot(path=str(screenshots / "benchmark-basins.png"), full_page=True)

    # the success table: its CSV download matches the stored finals
    page.get_by_role("tab", name="Success table").click()
    page.get_by_text("came within 0.1 of a global minimiser", exact=False).first.wait_for(timeout=30_000)
    page.screenshot(path=str(screenshots / "benchmark-table.png"), full_page=True)
    with page.expect_download(timeout=60_000) as dl:
        page.locator("[data-testid='stDownloadButton'] >> visible=true").filter(has_text="Download CSV").first.click()
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    H = vocab.header
    assert [r[H("label")] for r in rows] == ["SAM-GS", "LS"]             # headers in words
    frame = load_result(store, job["id"]).frame()
    opt = landscapes.get("one_optimum").optima()
    for r in rows:
        rows_m = frame[frame["label"] == r[H("label")]]
        near = np.linalg.norm(rows_m[["final_x", "final_y"]].to_numpy()[:, None] - opt[None], axis=-1).min(1) <= 0.1
        assert int(r[H("runs")]) == 36
        st_ = rows_m["status"].to_numpy().astype(str)
        died = np.char.startswith(st_, "nan") | np.char.startswith(st_, "blowup")
        assert int(r[H("reached")]) == int((near | (died & (rows_m["optimum_step"].to_numpy() >= 0))).sum())
    assert not page.js_errors, page.js_errors
