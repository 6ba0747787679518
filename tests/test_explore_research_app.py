"""Explore's research views under ``streamlit.testing.v1.AppTest``: the published paths and the direction field on
the map, the fragility view, the aggregator playground. Every control is in the address; bad input gets a message
naming the field.

Expected values come from the reference data (via the shipped copy, itself tested against the reference files in
tests/test_published.py), from methods-spec.md §9, from arithmetic, or from direct engine calls made here.
"""
from __future__ import annotations

import json

import numpy as np
from streamlit.testing.v1 import AppTest

import trajectories
from figures import published
from test_explore_app import APP, TIMEOUT, WHOLE_PAGE, _array, assert_clean, live_frame, texts


def app(**query) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.session_state[WHOLE_PAGE] = True        # the whole page, as after the map's first drawing
    return at.run()


def traces(at) -> dict:
    header, _ = live_frame(at)
    return {t.get("name"): t for t in header["figure"]["data"]}


def resolved(at) -> list:
    """The live map's traces with their arrays (on a session's first run, when every piece is sent)."""
    from figures import live
    header, store = live_frame(at)
    return live._substitute(header["figure"], store)["data"]


def captions(at) -> str:
    return " ".join(c.value for c in at.main.caption)


# -- the published paths ------------------------------------------------------------------------------------------
def test_the_published_paths_toggle_draws_ghosts_and_states_the_largest_distances():
    at = app(methods="samgs,ls")
    assert_clean(at)
    assert "published path" not in traces(at)
    at.toggle(key="x.ghosts").set_value(True).run()
    assert_clean(at)
    assert at.query_params["ghosts"] == "1" and "published path" in traces(at)
    at = app(methods="samgs,ls", ghosts="1")          # a new session: every piece is in its first frame
    ghost = next(t for t in resolved(at) if t.get("name") == "published path")
    xy = np.stack([np.asarray(ghost["x"], float), np.asarray(ghost["y"], float)], 1)
    assert np.isnan(xy[:, 0]).sum() == 14                         # 7 paper starts x SAM-GS and LS
    text = captions(at)
    assert "Published paths under 14 run(s)" in text and "Largest distance" in text
    table = at.main.dataframe[0].value
    assert len(table) == 14
    robust = table[table["published label"] == "robust"]
    assert len(robust) == 4 and (robust["largest distance"] <= 0.05).all()      # README: robust runs reproduce


def test_the_largest_distance_matches_a_direct_engine_run():
    at = app(methods="ls", ghosts="1", land="two_optima")            # 21 000 steps: recorded every 21, not 100
    assert_clean(at)
    table = at.main.dataframe[0].value
    res = trajectories.simulate("two_optima", ["ls"], "paper", 21000, record_every=100, record=("positions",))
    for mt in published.matches(res):
        want = published.largest_distance(mt.run, res.positions[0, mt.start], res.record_steps, 21000)
        start = f"({res.starts[mt.start, 0]:g}, {res.starts[mt.start, 1]:g})"
        assert table.loc[table["start"] == start, "largest distance"].item() == want


def test_ghosts_on_the_clean_pipeline_say_why_there_are_none():
    at = app(methods="samgs", steps="300", ghosts="1", pipe="clean")
    assert_clean(at)
    assert "published path" not in traces(at)
    assert "No published paths here: this view uses the clean pipeline" in captions(at)


def test_a_method_at_other_settings_is_named():
    at = app(methods="samgs,cagrad", steps="300", ghosts="1")
    assert "CAGrad: hyperparameters differ: c 0.4 (published 0.5)" in captions(at)


# -- the direction field ---------------------------------------------------------------------------------
def test_the_direction_field_draws_each_methods_first_step_over_the_grid():
    at = app(methods="samgs,ls", steps="300", field="1", fieldn="5")
    assert_clean(at)
    arrows = {t["name"]: t for t in resolved(at) if "first-step direction" in (t.get("name") or "")}
    assert set(arrows) == {"SAM-GS first-step direction", "LS first-step direction"}
    # the engine's own first step from the 25 cell centres of a 5 x 5 grid over [-11, 11]^2
    c = -11 + (np.arange(5) + 0.5) * 22 / 5
    pts = np.stack(np.meshgrid(c, c), -1).reshape(-1, 2)
    direct = trajectories.simulate("one_optimum", ["ls", "samgs"], pts, 1, record_every=1, record=("diagnostics",))
    for m, name in enumerate(("LS", "SAM-GS")):
        t = arrows[f"{name} first-step direction"]
        seg = np.stack([np.asarray(t["x"], float), np.asarray(t["y"], float)], 1).reshape(-1, 7, 2)
        np.testing.assert_allclose(seg[:, 0], pts, atol=1e-5)                      # one arrow per cell centre
        shaft = seg[:, 1] - seg[:, 0]
        d = direct.aux["dir"][m, :, 0]
        want = -d / np.linalg.norm(d, axis=1, keepdims=True) * 0.8 * 22 / 5        # along -d, 0.8 of a cell
        np.testing.assert_allclose(shaft, want, atol=1e-4)
    at.number_input(key="x.fieldn").set_value(7).run()
    assert at.query_params["fieldn"] == "7"


# -- the fragility view ------------------------------------------------------------------------------------
def test_the_fragility_of_a_robust_published_run_shows_one_bundle():
    at = app(methods="samgs", view="fragility", fstart="5")          # SAM-GS from (-10, -3): robust (reference)
    assert_clean(at)
    verdict = " ".join(m.value for m in at.main.markdown)
    assert "64 nudged runs" in verdict and "Every one ends in the run's own outcome" in verdict
    assert "**robust** by the reference data's rule" in verdict
    assert "The published data call this run **robust**" in captions(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = [t.get("name", "") for t in fig["data"]]
    assert "published path" in names and any(n.startswith("float64") for n in names)


def test_the_fragility_controls_are_in_the_address():
    at = app(methods="samgs,ls", steps="300", view="fragility")
    at.selectbox(key="x.frow").set_value(1).run()
    at.selectbox(key="x.fstart").set_value(2).run()
    at.number_input(key="x.fring").set_value(16).run()
    at.select_slider(key="x.frad").set_value(1e-3).run()
    assert_clean(at)
    q = at.query_params
    assert (q["frow"], q["fstart"], q["fring"], q["frad"]) == ("1", "2", "16", "0.001")
    assert "15 nudged runs" not in " ".join(m.value for m in at.main.markdown)
    assert "16 nudged runs (0.001 away)" in " ".join(m.value for m in at.main.markdown)


def test_every_start_marks_the_starts_whose_outcome_flips():
    """On the reference grid, SAM-GS's flips are among the starts the reference calls sensitive: a robust run's
    nudged runs all end as it does."""
    at = app(methods="samgs", starts="refgrid", view="fragility", fmode="all", fring="16")
    assert_clean(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    flips = [t for t in fig["data"] if t.get("name") == "outcome flips under the nudge"]
    sensitive = {r.start for r in published.available("one_optimum", "samgs") if r.source == "grid" and not r.robust}
    assert flips and {(x, y) for x, y in zip(_array(flips[0]["x"]), _array(flips[0]["y"]))} <= sensitive
    row = at.main.dataframe[0].value.iloc[0]
    assert row["starts"] == 25 and row["published labels agree"].endswith("/25")


def test_every_start_over_the_budget_is_refused_naming_the_field():
    at = app(methods="samgs", starts="grid:30", steps="20000", view="fragility", fmode="all")
    assert not at.exception
    msg = " ".join(texts(at.error))
    assert msg.startswith("fring:") and "900 starts × 1 method × 66 runs" in msg and "budget" in msg
    assert "at most 31 nudged starts fit" in msg          # (31 + 2) x 900 x 20 000 = 0.594 G <= 0.6 G < 34 x ...


# -- the playground ------------------------------------------------------------------------------------------
def playground(at) -> dict:
    (chart,) = [e for e in at.get("bidi_component") if e.key == "explore_playground"]
    return json.loads(json.loads(chart.proto.json))["figure"]


def test_the_playground_shows_every_chosen_method_on_the_spec_vector_t2():
    at = app(methods="samgs,ls,mgda", steps="300", view="playground")
    assert_clean(at)
    fig = playground(at)
    d = {t["name"]: (t["x"][1], t["y"][1]) for t in fig["data"]}
    # §9 T2 (the default vectors) on the reference pipeline: LS (1, 1), MGDA (0.4, 1.2), SAM-GS (0.948683, 0.316228)
    np.testing.assert_allclose(d["LS"], (1, 1))
    np.testing.assert_allclose(d["MGDA"], (0.4, 1.2), atol=1e-6)
    np.testing.assert_allclose(d["SAM-GS (stateful: first step)"], (0.948683, 0.316228), atol=1e-6)
    assert "cos(g₁, g₂) = -0.707 · GMS = 0.943" in captions(at)
    table = at.main.dataframe[0].value
    assert list(table["method"]) == ["LS", "MGDA", "SAM-GS"]
    assert table.loc[2, "first step"].startswith("stateful")


def test_the_playground_controls_are_in_the_address():
    at = app(methods="ls", steps="300", view="playground")
    at.number_input(key="x.pg.a1").set_value(90.0).run()        # g2 straight up, length sqrt(2)
    at.number_input(key="x.pg.l0").set_value(2.0).run()
    at.radio(key="x.pg.pipe").set_value("clean").run()
    assert_clean(at)
    q = at.query_params
    assert q["pg"] == "2,0;0,1.41421" and q["pgl"] == "2,1" and q["pgpipe"] == "clean"
    np.testing.assert_allclose([playground(at)["data"][0][k][1] for k in "xy"], (2, 1.41421), atol=1e-5)


def test_a_spec_vector_and_a_third_task_can_be_loaded():
    at = app(methods="ls,mgda", steps="300", view="playground")
    at.selectbox(key="x.pg.preset").set_value("T3").run()
    assert at.query_params["pg"] == "3,4;0.1,0"
    at.checkbox(key="x.pg.third").set_value(True).run()
    assert_clean(at)
    assert at.query_params["pg"] == "3,4;0.1,0;0,-1" and at.query_params["pgl"] == "1,1,1"
    assert len(playground(at)["layout"]["annotations"]) == 3


def test_a_malformed_playground_address_is_named():
    at = app(methods="ls", steps="300", view="playground", pg="1,0", pgpipe="warp")
    assert not at.exception
    warnings = " ".join(texts(at.warning))
    assert "`pg=1,0`" in warnings and "`pgpipe=warp`" in warnings
    at = app(methods="ls", steps="300", view="playground", pgl="1,1,1")
    assert "pgl: expected 2 losses" in " ".join(texts(at.error))
