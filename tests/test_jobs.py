"""Benchmark jobs: config validation, sweeps, the chunk plan, outcome classification, the success table,
and the ``bench`` CLI.

Expected values come from the math (synthetic paths whose outcome is known by construction, percentiles
computed by hand), from the spec (the issue's thresholds and JSON shape; the SAM-GS paper's claim that
SAM-GS reaches the optimum of one_optimum from all 7 starts), or from an independent engine call
(an unchunked ``trajectories.simulate`` of the same runs).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import landscapes
import trajectories
from cli import bench
from jobs import benchmarks
from jobs.config import JobConfig, load_config, parse_values
from jobs.results import JobResult, load_result, variants_frame
from jobs.store import Store
from trajectories import metrics

ROOT = Path(__file__).resolve().parents[1]


def small(**kw):
    d = {"methods": ["samgs", "ls"], "starts": "paper", "steps": 400}
    d.update(kw)
    return d


# ---------------------------------------------------------------------------------------------
# Values and validation.

def test_parse_values_forms():
    assert parse_values("0.1, 0.5,0.9") == [0.1, 0.5, 0.9]
    assert parse_values("lin(0, 1, 5)") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert np.allclose(parse_values("log(1e-3, 1, 4)"), [1e-3, 1e-2, 1e-1, 1.0])
    assert parse_values({"lin": [2, 4, 3]}) == [2.0, 3.0, 4.0]
    assert parse_values([1, 2]) == [1, 2]
    assert parse_values(0.3) == [0.3]
    for bad in ("lin(0, 1)", "log(0, 1, 3)", "a, b", "lin(0, 1, 2.5)", ""):
        with pytest.raises(ValueError):
            parse_values(bad)


@pytest.mark.parametrize("change, words", [
    ({"stpes": 10}, "unknown field 'stpes'"),
    ({"methods": ["samgs", "nosuch"]}, "nosuch"),
    ({"methods": []}, "methods"),
    ({"methods": ["ls", "ls"]}, "twice"),
    ({"steps": 0}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"starts": "20,0"}, "outside the box"),
    ({"starts": "grid:0"}, "grid"),
    ({"lr": -1}, "lr"),
    ({"lr": [0.1, 0.1]}, "twice"),
    ({"seeds": [0, 0]}, "twice"),
    ({"seeds": [-1]}, "seeds"),
    ({"task_weights": [1, 2, 3]}, "task_weights"),
    ({"task_weights": [1, -2]}, "task_weights"),
    ({"sweep": {"samgs": {"gamma": [0.1, 2.0]}}}, "gamma"),
    ({"sweep": {"samgs": {"nosuch": [1, 2]}}}, "nosuch"),
    ({"sweep": {"pcgrad": {"x": [1, 2]}}}, "not among the chosen methods"),
    ({"sweep": {"samgs": {"gamma": [0.1, 0.1]}}}, "twice"),
    ({"sweep": {"samgs": {"gamma": [0.1, 0.2]}}, "hparams": {"samgs": {"gamma": 0.3}}}, "both"),
    ({"pipeline": "fancy"}, "pipeline"),
    ({"record": ["positions", "everything"]}, "record"),
])
def test_refused_configs_name_the_field(change, words):
    with pytest.raises(ValueError) as e:
        JobConfig.from_dict(small(**change))
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_memory_and_size_limits_refuse():
    # one start x 100 x 100 sweep cells of SAM-GS with every diagnostic at every step: ~15 GB, over the limit
    huge = small(steps=20000, record_every=1, record=["positions", "losses", "diagnostics"],
                 sweep={"samgs": {"gamma": "lin(0, 1, 100)", "beta1": "lin(0, 0.9, 100)"}})
    with pytest.raises(ValueError, match="memory"):
        JobConfig.from_dict(huge)
    many = small(starts="grid:1000", seeds=list(range(30)))      # 2 methods x 30 seeds x 10^6 starts
    with pytest.raises(ValueError, match="size"):
        JobConfig.from_dict(many)


def test_sweep_variants_are_the_cartesian_product():
    cfg = JobConfig.from_dict(small(sweep={"samgs": {"gamma": [0.05, 0.1, 0.5], "beta1": [0.5, 0.9]},
                                                "lr": [1e-3, 3e-3]}))
    assert cfg.swept == ["gamma", "beta1", "lr"]
    vs = cfg.variants()
    samgs = [v for v in vs if v["method"] == "samgs"]
    ls = [v for v in vs if v["method"] == "ls"]
    assert len(samgs) == 3 * 2 * 2 and len(ls) == 2
    cells = {(v["hparams"]["gamma"], v["hparams"]["beta1"], v["lr"]) for v in samgs}
    assert cells == {(g, b, lr) for g in (0.05, 0.1, 0.5) for b in (0.5, 0.9) for lr in (1e-3, 3e-3)}
    assert [v["id"] for v in vs] == list(range(len(vs)))
    assert len({v["label"] for v in vs}) == len(vs)


def test_config_round_trips_through_json(tmp_path):
    cfg = JobConfig.from_dict(small(name="x", seeds="0, 3", task_weights=[1, 2],
                                         sweep={"samgs": {"gamma": "lin(0.1, 0.3, 3)"}}))
    again = JobConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert again.seeds == (0, 3) and again.task_weights == ((1.0, 2.0),)
    assert again.sweep == {"samgs": {"gamma": [0.1, 0.2, 0.3]}}
    p = tmp_path / "job.yaml"
    p.write_text("methods: [samgs, ls]\nstarts: paper\nsteps: 400\nsweep:\n  samgs: {gamma: [0.1, 0.2]}\n")
    assert len(load_config(p).variants()) == 3
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_config(bad)


def test_chunk_plan_covers_every_run_once_within_the_budgets():
    cfg = JobConfig.from_dict(small(starts="grid:9", seeds=[0, 1], chunk_runs=40,
                                         sweep={"samgs": {"gamma": [0.05, 0.1, 0.5]}}))
    plan = cfg.plan()
    S = 81
    seen = {}
    for c in plan:
        assert c.runs <= 40 or c.hi - c.lo == 1
        for s in range(c.lo, c.hi):
            key = (c.method, c.seed, s)
            assert key not in seen
            seen[key] = c.idx
    assert set(seen) == {(m, seed, s) for m in ("samgs", "ls") for seed in (0, 1) for s in range(S)}
    # memory budget: with a 1 MiB budget no chunk's engine config needs more than 1 MiB (unless one start)
    cfg2 = JobConfig.from_dict(small(starts="grid:32", steps=20000, record_every=10, chunk_mb=1))
    pts = cfg2.start_points()
    for c in cfg2.plan():
        need = trajectories.estimate_bytes(cfg2.engine_config(c.method, c.seed, pts[c.lo:c.hi]))
        assert need <= 2 ** 20 or c.hi - c.lo == 1
    assert len(cfg2.plan()) > 2


# ---------------------------------------------------------------------------------------------
# Outcome classification (synthetic paths whose outcome is known by construction).

def _set_distance(land, p):
    pts = land.pareto_set()
    return np.min(np.linalg.norm(pts - np.asarray(p)[None], axis=1))


def test_outcome_classification_by_construction():
    """Six runs whose engine records (last finite point, hit step, NaN/blow-up step, tail box) say by construction
    what each reached first and how it ended."""
    land = landscapes.get("one_optimum")
    opt = land.optima()[0]
    setp = land.pareto_set()
    far_on_set = setp[np.argmax(np.linalg.norm(setp - opt, axis=1))]          # a Pareto point far from the optimum
    assert np.linalg.norm(far_on_set - opt) > 1
    off = np.array([0.0, 10.0])
    assert _set_distance(land, off) > 1
    final = np.array([[off, off + [3, 0], opt + [0.05, 0], far_on_set, opt, off, off]])
    hit = np.array([[-1, -1, 900, -1, 800, -1, -1]])
    died = np.array([[-1, -1, -1, -1, 950, 400, 300]])               # run 4: NaN at the optimum; 5: NaN; 6: blew up
    nan = np.array([[False, False, False, False, True, True, False]])
    settled = np.array([[True, False, True, True, False, False, False]])
    nearest, near_d = metrics.nearest_optimum(land, final, [None], 1.0)
    dist = metrics.pareto_distance(land, final)
    status, outcome, idx = metrics.classify(final_pareto_distance=dist, nearest=nearest, nearest_distance=near_d,
                                            hit=hit, diverged_step=died, nan=nan, settled=settled)
    assert outcome.tolist() == [["stalled", "moving", "optimum 1", "pareto", "optimum 1", "nan", "blowup"]]
    assert status.tolist() == [["settled", "moving", "settled", "settled", "nan:optimum", "nan", "blowup"]]
    assert idx.tolist() == [[-1, -1, 0, -1, 0, -1, -1]]


def test_a_run_that_reached_the_optimum_and_left_before_turning_nan_counts_as_reached():
    land = landscapes.get("one_optimum")
    opt = land.optima()[0]
    away = opt + [0.0, 0.5]
    nearest, near_d = metrics.nearest_optimum(land, np.array([[away]]), [None], 1.0)
    status, outcome, idx = metrics.classify(
        final_pareto_distance=metrics.pareto_distance(land, np.array([[away]])), nearest=nearest,
        nearest_distance=near_d, hit=np.array([[10]]), diverged_step=np.array([[20]]), nan=np.array([[True]]),
        settled=np.array([[False]]))
    assert outcome[0, 0] == "optimum 1" and idx[0, 0] == 0 and status[0, 0].startswith("nan")
    assert status[0, 0] != "nan:optimum"


def test_the_tail_box_decides_settled():
    final = np.array([[[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]]])
    lo = np.array([[[0.98, 0.99], [0.9, 1.0], [np.inf, np.inf]]])
    hi = np.array([[[1.0, 1.02], [1.0, 1.0], [-np.inf, -np.inf]]])
    assert metrics.settled_in_tail(final, lo, hi).tolist() == [[True, False, False]]   # 0.1 away; never filled


def test_codes_of_earlier_versions_are_read_in_todays_terms():
    status, outcome = metrics.upgrade(np.array(["converged", "stalled", "diverged"]),
                                      np.array(["optimum 1", "stalled", "diverged"]))
    assert status.tolist() == ["settled", "settled", "nan"] and outcome.tolist() == ["optimum 1", "stalled", "nan"]


def test_two_optima_outcomes_name_the_optimum_reached():
    land = landscapes.get("two_optima")
    opts = land.optima()
    assert len(opts) == 2
    # both expected minimisers from the issue, in some order
    assert np.allclose(sorted(opts[:, 0]), [-5.455, 5.455], atol=2e-3)
    assert np.allclose(opts[:, 1], -10.843, atol=2e-3)
    finals = np.array([[opts[1] + [0.02, 0.0], opts[0] - [0.0, 0.05], opts[0] + [0.2, 0.0]]])
    idx = metrics.optimum_index(land, finals, [None], 1.0)
    assert idx.tolist() == [[1, 0, -1]]


# ---------------------------------------------------------------------------------------------
# Running jobs (in-process) and reading them back.

def test_chunked_job_equals_one_unchunked_engine_call(tmp_path):
    sweep = {"samgs": {"gamma": [0.05, 0.5]}}
    cfg = JobConfig.from_dict(small(starts="grid:5", steps=3000, chunk_runs=4, sweep=sweep))
    assert len(cfg.plan()) > 5
    store, job_id, status = bench.run_headless(cfg, data=tmp_path, quiet=True)
    assert status == "finished"
    res = load_result(store, job_id)
    assert res.complete and len(res.chunks) == len(cfg.plan())
    ref = trajectories.simulate("one_optimum", ["samgs", "ls"], "grid:5", 3000, hparams={"samgs": {"gamma": [0.05, 0.5]}},
                                record_every=cfg.record_every, record=("positions",), early_exit=True)
    frame = res.frame()
    assert len(frame) == 3 * 25
    for m, label in enumerate(ref.labels):
        rows = frame[frame["label"] == label].sort_values("start")
        assert len(rows) == 25
        np.testing.assert_allclose(rows[["final_x", "final_y"]].to_numpy(), ref.final[m], rtol=0, atol=1e-6)
        assert rows["outcome"].tolist() == ref.outcome[m].tolist()
        np.testing.assert_allclose(rows[["start_x", "start_y"]].to_numpy(), ref.starts)


def test_success_table_counts_what_the_spec_says(tmp_path):
    cfg = JobConfig.from_dict(small(steps=20000, record_every=100))
    store, job_id, _ = bench.run_headless(cfg, data=tmp_path, quiet=True)
    res = load_result(store, job_id)
    table = benchmarks.success_table(res)
    land = landscapes.get("one_optimum")
    opt = land.optima()
    frame = res.frame()
    for _, row in table.iterrows():
        runs = frame[frame["label"] == row["label"]]
        finals = runs[["final_x", "final_y"]].to_numpy()
        near = np.linalg.norm(finals[:, None] - opt[None], axis=-1).min(1) <= 0.1
        # reached: ends there, or got there (the engine's hit step) and then turned NaN there
        st = runs["status"].to_numpy().astype(str)
        died = np.char.startswith(st, "nan") | np.char.startswith(st, "blowup")
        near |= died & (runs["optimum_step"].to_numpy() >= 0)
        assert row["reached"] == near.sum() and row["runs"] == 7
        on_set = np.array([_set_distance(land, p) <= 0.1 for p in finals])
        assert row["pareto"] == on_set.sum()
    # the paper's claim on its own 7 starts: SAM-GS reaches the optimum from all of them
    samgs = table[table["method"] == "samgs"].iloc[0]
    assert samgs["reached"] == 7


def _fake_result(steps_by_variant, outcomes=None):
    """A JobResult built by hand: variant v has runs whose optimum_step values are given (-1: not reached)."""
    cfg = JobConfig.from_dict(small())
    rows = []
    for v, steps in steps_by_variant.items():
        for s, st in enumerate(steps):
            rows.append({"variant": v, "seed": 0, "start": s, "start_x": 0.0, "start_y": 0.0, "final_x": 0.0,
                         "final_y": 0.0, "outcome": "optimum 1" if st >= 0 else (outcomes or {}).get((v, s), "stalled"),
                         "status": "settled", "optimum_index": 0 if st >= 0 else -1,
                         "optimum_step": st, "steps_to_pareto": st, "pareto_distance": 0.0 if st >= 0 else 2.0,
                         "stationarity": 0.0, "chunk": 0})
    variants = variants_frame(cfg, cfg.variants(), [{"method": "samgs", "wall_s": 2.0},
                                                         {"method": "ls", "wall_s": 1.0}])
    return JobResult("fake", cfg, variants, pd.DataFrame(rows), [], True)


def test_success_table_statistics_by_hand():
    res = _fake_result({0: [100, 200, 300, 400, -1], 1: [-1, -1, 50, -1, -1]},
                       outcomes={(1, 0): "pareto", (1, 1): "nan", (1, 4): "blowup"})
    res.runs.loc[(res.runs["variant"] == 1) & (res.runs["start"] == 1), "status"] = "nan"
    res.runs.loc[(res.runs["variant"] == 1) & (res.runs["start"] == 4), "status"] = "blowup"
    # a run that reached the optimum and then turned NaN there counts as reached, and is counted as such
    res.runs.loc[(res.runs["variant"] == 0) & (res.runs["start"] == 3), "status"] = "nan:optimum"
    t = benchmarks.success_table(res).set_index("method")
    assert t.loc["samgs", "reached"] == 4 and t.loc["samgs", "runs"] == 5
    assert t.loc["samgs", "median_steps"] == 250.0
    assert t.loc["samgs", "p90_steps"] == pytest.approx(370.0)      # linear interpolation: 300 + 0.7 * 100
    assert t.loc["samgs", "reached_share"] == pytest.approx(0.8)
    assert t.loc["ls", "reached"] == 1 and t.loc["ls", "pareto"] == 2
    assert t.loc["ls", "nan"] == 1 and t.loc["ls", "blowup"] == 1 and t.loc["ls", "died_after"] == 0
    assert t.loc["samgs", "died_after"] == 1
    assert t.loc["samgs", "wall_s"] == 2.0 and t.loc["ls", "wall_s"] == 1.0
    recs = benchmarks.json_records(res)
    assert recs == [{"method": "samgs", "reached": 4, "total": 5, "median_steps": 250, "wall_s": 2.0},
                    {"method": "ls", "reached": 1, "total": 5, "median_steps": 50, "wall_s": 1.0}]


# ---------------------------------------------------------------------------------------------
# The CLI (a subprocess, as a user runs it).

def _cli(*args, data):
    return subprocess.run([sys.executable, "-m", "trajectories", "bench", *args, "--data", str(data)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_cli_refuses_bad_configs_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"methods": ["samgs"], "starts": "50,50"}))
    for args, words in (([str(bad)], "starts"), ([str(tmp_path / "missing.yaml")], "cannot read"),
                        (["--preset", "nope"], "invalid choice"), ([], "either a config file")):
        code = bench.main(["bench", *args, "--data", str(tmp_path / "d")])
        err = capsys.readouterr().err
        assert code != 0 and words in err and "Traceback" not in err, (args, err)
    assert Store(tmp_path / "d").list_jobs() == []                # nothing refused was recorded


def test_cli_runs_a_config_file_and_prints_json(tmp_path):
    cfg = tmp_path / "job.yaml"
    cfg.write_text("name: tiny\nmethods: [samgs, ls]\nstarts: paper\nsteps: 20000\nrecord_every: 500\n")
    r = _cli(str(cfg), "--json", data=tmp_path / "d")
    assert r.returncode == 0, r.stderr
    recs = json.loads(r.stdout)
    assert [x["method"] for x in recs] == ["samgs", "ls"]
    for x in recs:
        assert set(x) == {"method", "reached", "total", "median_steps", "wall_s"}
        assert x["total"] == 7 and 0 <= x["reached"] <= 7 and x["wall_s"] > 0
    assert recs[0]["reached"] == 7
    # the job is in the store, and the plain table names the methods
    assert len(Store(tmp_path / "d").list_jobs()) == 1
    r = _cli(str(cfg), data=tmp_path / "d")
    assert r.returncode == 0 and "SAM-GS" in r.stdout and "7/7" in r.stdout
