"""The Benchmark page under Streamlit's AppTest: empty store, launching a job (a real worker process),
opening a finished job (basin maps, success table, sweep heatmap, comparison), partial results of a
failed job, cancel, and bad input shown as a message.

Expected numbers come from the store's per-run finals checked against the landscape's optima here,
not from the page's own table code.
"""
from __future__ import annotations

import base64
import json
import os
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import landscapes
from jobs import worker
from jobs.config import JobConfig
from jobs.results import load_result
from jobs.store import Store

from plugin_examples import UNIT_MOMENTUM

PAGE = str(Path(__file__).resolve().parents[1] / "views" / "benchmark.py")
TIMEOUT = 180


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADSCAPE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("GRADSCAPE_MAX_JOBS", "2")
    return tmp_path / "data"


def page(job=None):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    if job:
        at.query_params["job"] = job
    return at.run()


def run_job(store, cfg: dict) -> str:
    job_id = worker.create(JobConfig.from_dict(cfg), store)
    assert worker.run_job(store, job_id) == "finished"
    return job_id


def success_table(at):
    """The success table shown on the page (the dataframe with a reached_share column)."""
    found = [d.value for d in at.dataframe if "reached_share" in d.value.columns]
    assert len(found) == 1, f"{len(found)} success tables"
    return found[0]


def array(v):
    """A Plotly JSON array: a list, or a typed array {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(v, dict) and "bdata" in v:
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        shape = v.get("shape")
        return a.reshape([int(x) for x in str(shape).split(",")]) if shape else a
    return np.array(v, dtype=float)


def charts(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def wait_status(store, job_id, statuses, timeout=TIMEOUT):
    t0 = time.time()
    while time.time() - t0 < timeout:
        j = store.get(job_id)
        if j["status"] in statuses:
            return j
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} still {store.get(job_id)['status']}")


def reached_by_hand(store, job_id, landscape="one_optimum"):
    """{label: runs ending within 0.1 of a global minimiser (diverged runs excluded)}, from the stored finals."""
    frame = load_result(store, job_id).frame()
    opt = landscapes.get(landscape).optima()
    out = {}
    for label, g in frame.groupby("label"):
        f = g[["final_x", "final_y"]].to_numpy()
        near = np.linalg.norm(f[:, None] - opt[None], axis=-1).min(1) <= 0.1
        out[label] = int((near & (g["outcome"].to_numpy() != "diverged")).sum())
    return out


def test_empty_store_renders_the_launch_form(data):
    at = page()
    assert not at.exception
    assert at.title[0].value == "Benchmark"
    assert any("No jobs yet" in i.value for i in at.info)
    assert at.button(key="bj_launch") and at.button(key="bj_launch_preset")
    assert not at.button(key="bj_launch").disabled


def test_bad_input_is_a_message_not_a_traceback(data):
    at = page()
    at.radio(key="bj_starts_kind").set_value("points").run()
    at.text_input(key="bj_points").set_value("50,50").run()
    assert not at.exception
    assert any("starts" in e.value and "outside the box" in e.value for e in at.error)
    assert at.button(key="bj_launch").disabled
    at.text_input(key="bj_points").set_value("1,2;3,4").run()
    at.text_input(key="bj_seeds").set_value("0, zero").run()
    assert any("seeds" in e.value for e in at.error) and not at.exception


def test_launch_from_the_page_runs_a_worker_and_shows_results(data):
    at = page()
    at.number_input(key="bj_grid").set_value(4).run()
    at.number_input(key="bj_steps").set_value(3000).run()
    at.text_input(key="bj_name").set_value("from-the-page").run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="bj_launch").click().run()
    assert not at.exception
    store = Store(data)
    [job] = store.list_jobs()
    assert job["name"] == "from-the-page"
    cfg = job["config"]
    assert cfg["starts"] == "grid:4" and cfg["steps"] == 3000 and cfg["methods"] == ["samgs", "ls"]
    assert job["pid"]                                    # a worker process was started
    job = wait_status(store, job["id"], ("finished", "failed", "cancelled"))
    assert job["status"] == "finished", job["message"]
    at.run()
    assert not at.exception
    table = success_table(at)
    assert list(table["method"]) == ["samgs", "ls"] and list(table["runs"]) == [16, 16]
    hand = reached_by_hand(store, job["id"])
    assert dict(zip(table["label"], table["reached"])) == hand
    basins = charts(at)[0]
    heat = [t for t in basins["data"] if t["type"] == "heatmap"]
    assert len(heat) == 2                                 # one panel per method, a 4 x 4 grid each
    assert array(heat[0]["z"]).shape == (4, 4)


def test_reopen_a_finished_job_by_url_with_sweep_and_compare(data):
    store = Store(data)
    plain = run_job(store, {"name": "plain", "methods": ["samgs", "ls"], "starts": "paper", "steps": 20000,
                            "record_every": 500})
    sweep = run_job(store, {"name": "sweep", "methods": ["samgs"], "starts": "grid:3", "steps": 2000,
                            "sweep": {"samgs": {"gamma": [0.05, 0.5], "beta1": [0.5, 0.7, 0.9]}}})
    at = page(job=plain)
    assert not at.exception
    assert at.selectbox(key="job_pick").value == plain
    assert at.query_params["job"] in (plain, [plain])
    assert any("ran on cpu (c)" in c.value for c in at.caption)      # the device and backend the worker used
    table = success_table(at)
    assert dict(zip(table["label"], table["reached"])) == reached_by_hand(store, plain)
    assert table.loc[table["method"] == "samgs", "reached"].item() == 7          # the paper's claim
    # the compare tab: the other job is offered, its chart has one bar group per job
    assert at.selectbox(key="compare_pick").value == sweep
    cmp = [c for c in charts(at) if c["layout"]["title"]["text"].startswith("share reaching")]
    assert len(cmp) == 1 and len(cmp[0]["data"]) == 2
    # open the sweep job: a heatmap over the two swept settings
    at.selectbox(key="job_pick").set_value(sweep).run()
    assert not at.exception
    assert at.selectbox(key="bv_sweep_x").value == "gamma" and at.selectbox(key="bv_sweep_y").value == "beta1"
    heat = [c for c in charts(at) if "over gamma × beta1" in c["layout"]["title"]["text"]]
    assert len(heat) == 1
    z = array(heat[0]["data"][0]["z"])
    assert z.shape == (3, 2)
    # each cell is the share of the 9 starts reaching the optimum for that (gamma, beta1), computed here
    frame = load_result(store, sweep).frame()
    opt = landscapes.get("one_optimum").optima()
    for i, b in enumerate([0.5, 0.7, 0.9]):
        for k, g in enumerate([0.05, 0.5]):
            cell = frame[(frame["gamma"] == g) & (frame["beta1"] == b)]
            f = cell[["final_x", "final_y"]].to_numpy()
            near = np.linalg.norm(f[:, None] - opt[None], axis=-1).min(1) <= 0.1
            share = (near & (cell["outcome"].to_numpy() != "diverged")).mean()
            assert z[i, k] == pytest.approx(share)


def test_failed_job_shows_its_partial_results(data):
    store = Store(data)
    job_id = run_job(store, {"name": "partial", "methods": ["samgs", "ls"], "starts": "paper", "steps": 500,
                             "chunk_runs": 7})
    # as if the worker had died after the first chunk: the second chunk never registered, no merged file
    with sqlite3.connect(store.db_path) as db:
        db.execute("DELETE FROM chunks WHERE job_id = ? AND idx = 1", (job_id,))
        db.execute("UPDATE jobs SET chunks_done = 1 WHERE id = ?", (job_id,))
    store.path(job_id, "runs.npz").unlink()
    store.update(job_id, status="failed", message="the worker process (pid 1) stopped without finishing")
    at = page(job=job_id)
    assert not at.exception
    assert any("stopped without finishing" in e.value for e in at.error)
    assert any("Partial results: 1 of 2" in w.value for w in at.warning)
    assert list(success_table(at)["method"]) == ["samgs"]


def test_cancel_button_stops_a_running_job(data):
    store = Store(data)
    cfg = JobConfig.from_dict({"name": "long", "methods": ["ls"], "starts": "grid:40", "steps": 1_000_000,
                                    "record_every": 10_000, "chunk_runs": 64, "early_exit": False})
    job_id = worker.launch(cfg, store)
    wait_status(store, job_id, ("running",))
    at = page()
    assert not at.exception
    assert any("long" in p.proto.text and "running" in p.proto.text for p in at.get("progress"))
    at.button(key=f"cancel-{job_id}").click().run()
    assert store.get(job_id)["cancel"]
    assert wait_status(store, job_id, ("cancelled", "failed", "finished"))["status"] == "cancelled"


def test_a_custom_landscape_job_from_the_page(data):
    """A landscape typed into the form runs in a worker; its runs end where plain arithmetic says (LS with
    Adam on (x1-1)^2 + (x1+1)^2 + 2 x2^2 heads to the minimiser (0, 0))."""
    at = page()
    at.selectbox(key="bj_landscape").set_value("custom").run()
    at.text_area(key="bj_spec").set_value("name: ridge\ntasks: [\"x1^2 + (x2-1)^2 + __x\", \"x2\"]\n"
                                         "bounds: [[-3, 3], [-3, 3]]").run()
    assert not at.exception
    assert any("__" in e.value for e in at.error) and at.button(key="bj_launch").disabled
    at.text_area(key="bj_spec").set_value('{"name": "bowls", "tasks": ["(x1-1)^2 + x2^2", "(x1+1)^2 + x2^2"], '
                                          '"bounds": [[-3, 3], [-3, 3]]}').run()
    at.multiselect(key="bj_methods").set_value(["ls"]).run()
    at.number_input(key="bj_grid").set_value(3).run()
    at.number_input(key="bj_steps").set_value(8000).run()
    assert not at.error, [e.value for e in at.error]
    at.button(key="bj_launch").click().run()
    store = Store(data)
    [job] = store.list_jobs()
    assert job["config"]["landscape"] == "custom-bowls"
    job = wait_status(store, job["id"], ("finished", "failed", "cancelled"))
    assert job["status"] == "finished", job["message"]
    frame = load_result(store, job["id"]).frame()
    assert len(frame) == 9
    assert np.abs(frame[["final_x", "final_y"]].to_numpy()).max() < 0.05


def test_export_panel_writes_a_basin_map_pdf_of_a_job(data):
    store = Store(data)
    job_id = run_job(store, {"methods": ["samgs", "ls"], "starts": "grid:3", "steps": 300,
                             "sweep": {"samgs": {"gamma": [0.1, 0.5]}}})
    at = page(job=job_id)
    assert not at.exception
    at.button(key="bench_basin_jexport_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    ident, pdf = at.session_state["bench_basin_jexport_file"]
    assert pdf.startswith(b"%PDF") and b"gradscape" in pdf.lower()
    # the heatmap of the swept gamma, as SVG with text kept as text
    at.selectbox(key="bench_sweep_jexport_kind").set_value("heatmap").run()
    at.selectbox(key="bench_sweep_jexport_fmt").set_value("svg").run()
    at.button(key="bench_sweep_jexport_go").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    _, svg = at.session_state["bench_sweep_jexport_file"]
    assert b"<svg" in svg and b"<text" in svg



def test_a_method_named_by_gradscape_methods_is_offered_with_its_label_and_hyperparameter(data, tmp_path,
                                                                                          monkeypatch):
    plugin = tmp_path / "unit_momentum.py"
    plugin.write_text(UNIT_MOMENTUM)
    monkeypatch.setenv("GRADSCAPE_METHODS", f"{plugin}{os.pathsep}")
    at = page()
    assert not at.exception and not at.error
    assert "Unit momentum (local plugin)" in at.multiselect(key="bj_methods").options
    at.multiselect(key="bj_methods").set_value(["unitmomentum"]).run()
    assert "unitmomentum.beta" in at.multiselect(key="bj_sweep").options
