"""The Explore page under ``streamlit.testing.v1.AppTest``: defaults render, every control reaches the engine
config, the URL reproduces the view, and bad input gets a message instead of a traceback.

Expected values come from the issue / engine brief (default methods, the paper preset, at most ~2000 records
per run), from the landscapes' own data (preset points, boxes) or from arithmetic (w2 = 1 - w1, grid points);
the page's config is read from ``st.session_state["explore.config"]`` (``Config.to_dict()`` of the run shown).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import landscapes
import optimizers

from plugin_examples import RIDGE_SOLVE, UNIT_MOMENTUM

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TIMEOUT = 300          # the first run in a process imports torch and may build kernels
QUICK = {"steps": "300", "methods": "samgs,ls,famo"}     # a fast view for the control tests
ISSUE_DEFAULTS = ("samgs", "nashmtl", "cagrad", "pcgrad", "mgda", "alignedmtl", "famo", "ls")


WHOLE_PAGE = "explore.whole_page"     # views/explore_model.WHOLE_PAGE


def app(**query) -> AppTest:
    """The page as a browser shows it once the map's first drawing has asked for the rest (a session's first
    run of a live view leaves out the sidebar and what is below the map: test_a_sessions_first_run_...)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(query)
    at.session_state[WHOLE_PAGE] = True
    return at.run()


def config(at) -> dict:
    return at.session_state["explore.config"]


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def live_maps(at) -> list:
    """The live map components on the page."""
    return [e for e in at.get("bidi_component") if e.key == "explore_map"]


def assert_clean(at):
    assert not at.exception, texts(at.exception)
    assert not at.error, texts(at.error)


# -- defaults ---------------------------------------------------------------------------------------
def test_defaults_render_the_paper_view():
    at = app()
    assert_clean(at)
    cfg = config(at)
    land = landscapes.get("one_optimum")
    assert cfg["landscape"] == "one_optimum"
    assert set(cfg["methods"]) == {m for m in ISSUE_DEFAULTS if m in optimizers.names()}
    assert np.allclose(cfg["starts"], land.presets["paper"].points)
    assert cfg["steps"] == land.default_steps == 20000
    assert cfg["pipeline"] == "reference" and cfg["optimizer"] == "adam" and cfg["lr"] == 1e-3
    assert cfg["steps"] / cfg["record_every"] <= 2000
    assert cfg["hparams"]["samgs"] == {"gamma": 0.1, "beta1": 0.9, "beta2": 0.99}   # the paper's one-optimum toy
    assert len(live_maps(at)) == 1          # the live map
    # SAM-GS's three sliders are the first controls above the map (a move reruns only that part of the page)
    assert [s.key for s in at.main.slider][:3] == ["x.samgs.gamma", "x.samgs.beta1", "x.samgs.beta2"]
    assert dict(at.query_params) == {}        # the defaults need no URL parameters


# -- every control reaches the config -------------------------------------------------------------------
def test_samgs_sliders_change_the_config_and_the_url():
    at = app(**QUICK)
    for name, value in (("gamma", 0.3), ("beta1", 0.5), ("beta2", 0.8)):
        at.slider(key=f"x.samgs.{name}").set_value(value).run()
        assert_clean(at)
        assert config(at)["hparams"]["samgs"][name] == pytest.approx(value)
        assert float(at.query_params[f"samgs.{name}"]) == pytest.approx(value)


def test_problem_controls_change_the_config():
    at = app(**QUICK)
    at.radio(key="x.wmode").set_value("sum1").run()
    at.slider(key="x.w1").set_value(0.3).run()
    assert_clean(at)
    assert config(at)["task_weights"] == pytest.approx([0.3, 0.7])
    at.radio(key="x.wmode").set_value("free").run()
    at.number_input(key="x.w.1").set_value(2.5).run()
    assert config(at)["task_weights"] == pytest.approx([1.0, 2.5])
    at.number_input(key="x.scale").set_value(4.0).run()
    assert config(at)["scale"] == 4.0
    at.selectbox(key="x.land").set_value("two_optima").run()
    assert_clean(at)
    two = landscapes.get("two_optima")
    assert config(at)["landscape"] == "two_optima"
    assert np.allclose(config(at)["starts"], two.presets["paper"].points)   # one_optimum's starts do not fit
    assert config(at)["hparams"]["samgs"]["beta2"] == 0.9                    # two_optima's SAM-GS default


def test_method_controls_change_the_config():
    at = app(**QUICK)
    fam = optimizers.get("pcgrad").family
    chosen = at.multiselect(key=f"x.methods.{fam}").value
    at.multiselect(key=f"x.methods.{fam}").set_value(list(chosen) + ["pcgrad"]).run()
    assert_clean(at)
    assert "pcgrad" in config(at)["methods"]
    # a hyperparameter from a method's expander (FAMO's task-weight learning rate, a log-scale spec)
    h = optimizers.get("famo").hparam("w_lr")
    assert h.log
    at.select_slider(key="x.famo.w_lr").set_value(0.1).run()
    assert config(at)["hparams"]["famo"]["w_lr"] == 0.1
    assert at.query_params["famo.w_lr"] == "0.1"
    lw = optimizers.get("ls").family
    at.multiselect(key=f"x.methods.{lw}").set_value(["ls"]).run()     # FAMO off
    assert "famo" not in config(at)["methods"]


def test_optimiser_controls_change_the_config():
    at = app(**QUICK)
    at.radio(key="x.opt").set_value("sgd").run()
    at.slider(key="x.mom").set_value(0.5).run()
    at.select_slider(key="x.lr").set_value(0.01).run()
    at.number_input(key="x.steps").set_value(700).run()
    at.radio(key="x.pipe").set_value("clean").run()
    at.number_input(key="x.seed").set_value(7).run()
    assert_clean(at)
    cfg = config(at)
    assert (cfg["optimizer"], cfg["momentum"], cfg["lr"], cfg["steps"], cfg["pipeline"], cfg["seed"]) == \
        ("sgd", 0.5, 0.01, 700, "clean", 7)
    assert at.query_params["opt"] == "sgd" and at.query_params["steps"] == "700"


def test_start_controls_change_the_config():
    at = app(**QUICK)
    (x0, x1), (y0, y1) = landscapes.get("one_optimum").bounds
    at.radio(key="x.smode").set_value("grid").run()
    at.number_input(key="x.grid").set_value(3).run()
    assert_clean(at)
    X, Y = np.meshgrid(np.linspace(x0, x1, 3), np.linspace(y0, y1, 3))
    assert np.allclose(config(at)["starts"], np.stack([X.ravel(), Y.ravel()], 1))
    at.radio(key="x.smode").set_value("random").run()
    at.number_input(key="x.random").set_value(4).run()
    pts = np.array(config(at)["starts"])
    assert pts.shape == (4, 2) and (pts[:, 0] >= x0).all() and (pts[:, 0] <= x1).all()
    at.radio(key="x.smode").set_value("points").run()
    at.text_area(key="x.points").set_value("1,2;-3,4.5").run()
    assert config(at)["starts"] == [[1.0, 2.0], [-3.0, 4.5]]
    assert at.query_params["starts"] == "1,2;-3,4.5"


def test_view_controls_change_the_page_state_and_url():
    at = app(**QUICK)
    at.radio(key="x.view").set_value("loss").run()
    assert_clean(at)
    assert at.query_params["view"] == "loss"
    at.radio(key="x.view").set_value("diag").run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 2          # arrows + diagnostics over steps
    at.radio(key="x.view").set_value("table").run()
    assert_clean(at)
    assert len(at.dataframe) == 2                    # per method, per method and start
    at.radio(key="x.view").set_value("map").run()
    at.radio(key="x.layout").set_value("multiples").run()
    at.radio(key="x.loss").set_value("task2").run()
    assert_clean(at)
    assert (at.query_params["layout"], at.query_params["loss"]) == ("multiples", "task2")


def test_a_url_reproduces_the_view():
    at = app(**QUICK)
    at.slider(key="x.samgs.gamma").set_value(0.42).run()
    at.radio(key="x.pipe").set_value("clean").run()
    at.radio(key="x.smode").set_value("grid").run()
    at.number_input(key="x.grid").set_value(2).run()
    url = dict(at.query_params)
    again = app(**url)
    assert_clean(again)
    assert config(again) == config(at)


def test_teaching_link_hides_the_controls():
    at = app(teach="1", **QUICK)
    assert_clean(at)
    assert len(at.sidebar.slider) == 0 and len(at.sidebar.multiselect) == 0
    assert len(live_maps(at)) == 1
    assert at.query_params["teach"] == "1"


def test_a_sessions_first_run_draws_the_map_first_and_the_rest_once_the_map_is_drawn():
    """A fresh session's first run of the map: the title, the controls above the map and the map, but no sidebar
    and nothing below the map, and the frame asks the browser to report its drawing. The report's callback
    (views/explore._on_first_drawing; the round trip itself is a browser test) brings the whole page, which shows
    the same view and no longer asks."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(QUICK)
    at.run()
    assert_clean(at)
    header, _ = live_frame(at)
    assert header["meta"]["reportDrawn"] is True
    assert len(at.sidebar.multiselect) == 0 and len(at.sidebar.select_slider) == 0
    assert [s.key for s in at.main.slider] == ["x.samgs.gamma", "x.samgs.beta1", "x.samgs.beta2"]
    assert not at.get("download_button") and not at.text_input      # no download row, no share box yet
    first = config(at)
    at.session_state["explore.whole_page"] = True         # what the "drawn" event's callback sets
    at.session_state["explore.full_rerun"] = True
    at.run()
    assert_clean(at)
    assert at.selectbox(key="x.land") and len(at.sidebar.multiselect) == 4 and at.get("download_button")
    assert "steps=300" in at.text_input(key="x.share.link").value
    assert "reportDrawn" not in live_frame(at)[0]["meta"] and config(at) == first


def test_a_webgl_map_is_not_waited_for_the_whole_page_follows_its_frame():
    """A dense grid's map is WebGL: a new browser needs seconds for the full Plotly.js bundle and the drawing, so
    its first run does not wait for the map's report; the whole page comes in the same go."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"starts": "grid:20", "steps": "2000", "methods": "samgs,ls"})
    at.run()
    assert_clean(at)
    header, _ = live_frame(at)
    assert any(t["type"] == "scattergl" for t in header["figure"]["data"])      # the case this is about
    assert "reportDrawn" not in header["meta"]
    assert len(at.sidebar.multiselect) == 4 and at.get("download_button")


@pytest.mark.parametrize("how", ["address", "radio"])
def test_a_view_without_the_live_map_draws_the_whole_page_at_once(how):
    """Diagnostics has no live map to report a drawing: opened by its address, or chosen before the first map
    was drawn, it comes with the sidebar in the same run."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({**QUICK, **({"view": "diag"} if how == "address" else {})})
    at.run()
    if how == "radio":
        assert len(at.sidebar.multiselect) == 0
        at.radio(key="x.view").set_value("diag").run()
    assert_clean(at)
    assert len(at.sidebar.multiselect) == 4 and at.get("download_button") and not live_maps(at)


# -- bad input ------------------------------------------------------------------------------------------
def test_malformed_query_parameters_are_named_and_replaced_by_defaults():
    at = app(lr="abc", steps="999999", **{"samgs.gamma": "5"}, land="nowhere", starts="99,99",
             methods="samgs,nope", foo="1")
    assert not at.exception
    warned = " ".join(texts(at.warning))
    for name in ("lr", "steps", "samgs.gamma", "land", "starts", "methods", "foo"):
        assert f"`{name}" in warned, name
    cfg = config(at)
    assert cfg["lr"] == 1e-3 and cfg["steps"] == 20000 and cfg["landscape"] == "one_optimum"
    assert cfg["hparams"]["samgs"]["gamma"] == 0.1
    assert len(live_maps(at)) == 1        # the page still works


def test_a_grid_too_large_is_refused_with_a_message():
    at = app(starts="grid:200", methods="samgs,ls", steps="300")
    assert not at.exception
    assert any("starts" in e and "runs" in e for e in texts(at.error))
    # the controls still work: a smaller grid runs
    at.number_input(key="x.grid").set_value(3).run()
    assert_clean(at)
    assert len(config(at)["starts"]) == 9


def test_a_learning_rate_that_diverges_every_run_is_reported():
    # SAM-GS without the reference pipeline's norm clipping, heavy-ball SGD at lr 10: every run leaves |theta| < 1e6
    at = app(methods="samgs", opt="sgd", lr="10", mom="0.999", pipe="clean", steps="5000")
    assert not at.exception
    res = at.session_state["explore.shown"]["result"]
    assert (res.diverged_step >= 0).all() and (np.abs(res.final) < 1e6).all()
    assert any("Every run turned NaN or blew up" in e for e in texts(at.error))


def test_the_last_start_cannot_be_removed_and_clicks_edit_the_starts():
    from views import explore_model as model
    land = landscapes.get("one_optimum")
    spec, note = model.click_starts("paper", land, 5.0, -5.0)          # far from every start: added
    pts = np.array([[float(v) for v in p.split(",")] for p in spec.split(";")])
    assert len(pts) == 8 and np.allclose(pts[-1], [5.0, -5.0]) and "Added" in note
    back, note = model.click_starts(spec, land, 5.1, -5.1)             # next to the new one: removed
    assert back == "paper" and "Removed" in note
    one, note = model.click_starts("1,1", land, 1.2, 1.0)
    assert one == "1,1" and "cannot be removed" in note


# -- the landscape studio and three tasks -----------------------------------------------------------------
def test_landscape_studio_validates_applies_and_shares_a_custom_landscape():
    from landscapes import custom
    at = app(land="custom", **QUICK)
    assert_clean(at)
    default = config(at)
    assert default["landscape"].startswith("custom-")
    # hostile text: a message naming the task, nothing applied, the last view still shown
    at.text_area(key="x.studio.tasks").set_value("x1^2\n().__class__").run()
    assert not at.exception
    assert any("task 2" in e for e in texts(at.error))
    # a valid definition: Apply switches the engine to it, and the link carries it
    at.text_area(key="x.studio.tasks").set_value("(x1 - 2)^2 + x2^2\n(x1 + 2)^2 + (x2 - 1)^2").run()
    assert not at.button(key="x.studio_apply").disabled
    at.button(key="x.studio_apply").click().run()
    assert_clean(at)
    cfg = config(at)
    spec = dict(cfg["landscape_spec"])
    assert list(spec["tasks"]) == ["(x1 - 2)^2 + x2^2", "(x1 + 2)^2 + (x2 - 1)^2"]
    encoded = at.query_params["spec"]
    assert custom.decode_spec(encoded)["tasks"] == spec["tasks"]
    # the same link in a new session opens the same landscape
    again = app(land="custom", spec=encoded, **QUICK)
    assert_clean(again)
    assert dict(config(again)["landscape_spec"])["tasks"] == spec["tasks"]
    # an LS run on the sum (x1-2)^2 + (x1+2)^2 + ... moves towards its minimiser x1 = 0
    res = again.session_state["explore.shown"]["result"]
    assert np.all(np.abs(res.final[list(res.labels).index("LS"), :, 0]) <= np.abs(res.starts[:, 0]) + 1e-6)


def test_a_damaged_spec_in_the_url_is_reported_and_the_page_still_works():
    at = app(land="custom", spec="1.not-base64-@@", **QUICK)
    assert not at.exception
    assert any("spec" in w for w in texts(at.warning))
    assert config(at)["landscape"].startswith("custom-")      # the default custom landscape


def test_three_tasks_get_a_3d_loss_space():
    at = app(land="three_bowls", view="loss", starts="grid:2", steps="200", methods="ls,mgda")
    assert_clean(at)
    chart = at.get("plotly_chart")[0]
    import json
    fig = json.loads(chart.proto.spec)
    assert {t["type"] for t in fig["data"]} == {"scatter3d"}
    assert "zaxis" in fig["layout"]["scene"]


def test_overlong_url_parameters_are_refused_and_not_echoed_in_full():
    at = app(starts="1,1;" * 5000, **QUICK)          # 20 000 characters
    assert not at.exception
    msgs = [w for w in texts(at.warning) if "starts" in w]
    assert msgs and "too long" in msgs[0] and len(msgs[0]) < 400
    assert config(at)["starts_spec"] == "paper"


# -- the live map, presentation mode, the address ------------------------------------------------------------
def live_frame(at) -> tuple[dict, dict]:
    """The live map's last frame as the browser receives it: (header, pieces sent in it)."""
    from figures import live
    store = {}
    return live.decode(live_maps(at)[0].proto.bytes, store), store


def test_a_gamma_move_sends_only_samgs_paths():
    at = app(steps="2000", methods="samgs,ls,famo")
    first, sent_first = live_frame(at)
    at.slider(key="x.samgs.gamma").set_value(0.9).run()
    header, sent = live_frame(at)
    traces = {t.get("name"): t for t in header["figure"]["data"]}
    before = {t.get("name"): t for t in first["figure"]["data"]}
    assert traces["SAM-GS"]["x"]["$p"] != before["SAM-GS"]["x"]["$p"]      # γ = 0.9 changes SAM-GS's paths
    samgs_refs = {traces["SAM-GS"]["x"]["$p"], traces["SAM-GS"]["y"]["$p"]}
    assert samgs_refs <= set(sent)                              # the moved method's paths travel
    for name in ("LS", "FAMO"):                                 # the others' do not, nor does the contour
        assert traces[name]["x"]["$p"] not in sent and traces[name]["x"]["$p"] in sent_first
    assert header["figure"]["data"][0]["z"]["$p"] not in sent
    assert len(live_maps(at)[0].proto.bytes) < 200_000


def test_every_run_draws_the_same_paths_as_one_engine_call():
    import trajectories
    at = app(**QUICK)
    shown = at.session_state["explore.shown"]["result"]
    direct = trajectories.run(trajectories.Config.from_dict(config(at)))
    assert shown.labels == direct.labels
    assert np.array_equal(shown.positions, direct.positions) and np.array_equal(shown.final, direct.final)
    assert (shown.status == direct.status).all()


def test_presentation_mode_keeps_the_named_knobs_and_states_the_settings():
    at = app(teach="1", knobs="gamma,lr", **QUICK)
    assert_clean(at)
    assert [s.key for s in at.main.slider] == ["x.samgs.gamma"] and len(at.sidebar.slider) == 0
    assert [s.key for s in at.main.select_slider] == ["x.lr"]
    line = " ".join(c.value for c in at.caption)
    assert "SAM-GS" in line and "γ 0.1" in line and "300 steps" in line and "reference pipeline" in line
    assert not [b for b in at.get("download_button")]          # no download row
    at.slider(key="x.samgs.gamma").set_value(0.5).run()
    assert config(at)["hparams"]["samgs"]["gamma"] == 0.5 and at.query_params["knobs"] == "gamma,lr"


def test_an_unknown_knob_is_named_and_ignored():
    at = app(teach="1", knobs="gamma,warp", **QUICK)
    assert not at.exception
    assert any("`knobs" in w and "warp" in w for w in texts(at.warning))
    assert len(at.main.slider) == 0                            # the whole parameter falls back to no knobs


def test_a_changed_address_is_read_again():
    at = app(**QUICK)
    at.slider(key="x.samgs.gamma").set_value(0.3).run()
    at.query_params["samgs.gamma"] = "0.2"                      # what Back or a pasted link does
    at.query_params["view"] = "table"
    at.run()
    assert_clean(at)
    assert config(at)["hparams"]["samgs"]["gamma"] == 0.2
    assert at.slider(key="x.samgs.gamma").value == 0.2          # the widget follows
    assert at.radio(key="x.view").value == "table" and len(at.dataframe) == 2


def _array(v) -> np.ndarray:
    """A figure array from Plotly's JSON: a list, or a typed array {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(v, dict) and "bdata" in v:
        import base64
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return a.reshape([int(n) for n in str(v.get("shape", a.size)).split(",")])
    return np.array(v)


def test_the_outcome_view_draws_a_basin_map_per_method_for_grid_starts():
    import json
    at = app(starts="grid:4", view="outcomes", **QUICK)
    assert_clean(at)
    fig = json.loads(at.get("plotly_chart")[0].proto.spec)
    heatmaps = [t for t in fig["data"] if t["type"] == "heatmap"]
    assert len(heatmaps) == 3                                   # one panel per method, a cell per start
    assert all(_array(t["z"]).shape == (4, 4) for t in heatmaps)
    res = at.session_state["explore.shown"]["result"]
    m = res.labels.index("LS")
    titles = [a["text"] for a in fig["layout"]["annotations"]]
    assert any(t.startswith("LS") and f"optimum {(res.optimum_index[m] >= 0).mean():.0%}" in t for t in titles)


# -- methods of your own: only from the server's environment, never from a link ----------------------
def test_methods_named_by_gradscape_methods_are_listed_with_their_sliders_and_run(tmp_path, monkeypatch):
    a, b = tmp_path / "unit_momentum.py", tmp_path / "ridge.py"
    a.write_text(UNIT_MOMENTUM)
    b.write_text(RIDGE_SOLVE)
    monkeypatch.setenv("GRADSCAPE_METHODS", f"{a}{os.pathsep}{b}")
    at = app(steps="300", methods="samgs,unitmomentum,ridgesolve")
    assert_clean(at)
    assert config(at)["methods"] == ["samgs", "unitmomentum", "ridgesolve"]
    assert "Unit momentum (local plugin)" in at.multiselect(key="x.methods.similarity-aware").options
    assert "Ridge solve (local plugin)" in at.multiselect(key="x.methods.game-theoretic").options
    at.slider(key="x.unitmomentum.beta").set_value(0.5).run()        # a slider from the plugin's HParam
    assert_clean(at)
    assert config(at)["hparams"]["unitmomentum"] == {"beta": 0.5}
    assert at.query_params["unitmomentum.beta"] == "0.5"
    why = [c for c in texts(at.caption) if c.startswith("Ridge solve (local plugin): ")]
    assert why and "torch.linalg" in why[0] and "eager torch" in why[0]
    res = at.session_state["explore.shown"]["result"]
    assert res.timings["backends"] == {"samgs": "c", "unitmomentum": "c", "ridgesolve": "torch"}
    header, _ = live_frame(at)
    path = next(t for t in header["figure"]["data"] if t.get("name") == "Unit momentum")
    assert path["line"]["color"] == optimizers.get("unitmomentum").colour


def test_a_broken_method_file_is_reported_on_the_page_and_every_other_method_works(tmp_path, monkeypatch):
    bad = tmp_path / "rolled.py"
    bad.write_text(UNIT_MOMENTUM.replace("return m, {", "return torch.roll(m, 1, 0), {"))
    monkeypatch.setenv("GRADSCAPE_METHODS", str(bad))
    at = app(**QUICK)
    assert not at.exception and not at.error
    assert any("GRADSCAPE_METHODS" in w and "rows independent" in w for w in texts(at.warning))
    assert set(config(at)["methods"]) == {"samgs", "ls", "famo"}


def test_a_link_naming_a_method_file_loads_nothing_and_gets_the_unknown_method_message(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.py"
    evil.write_text(f"open({str(marker)!r}, 'w').close()\nMETHODS = ()\n")
    at = app(steps="300", methods=str(evil), **{"method-file": str(evil), "GRADSCAPE_METHODS": str(evil)})
    assert not at.exception
    warnings = texts(at.warning)
    assert any(w.startswith("URL parameter `methods=") and f"unknown method(s) '{evil}'" in w for w in warnings)
    assert not marker.exists()
    assert not any(optimizers.get(k).plugin for k in optimizers.names())


# -- the view as a config file and as a Benchmark job ---------------------------------------------------------------
def test_a_downloaded_config_reopens_the_same_view():
    from views import explore_model as model
    at = app(**QUICK, **{"samgs.gamma": "0.3"}, land="two_optima", starts="grid:3", wmode="sum1", w1="0.3",
             pipe="clean", seed="4")
    assert_clean(at)
    downloaded = config(at)                                   # what "Config (.json)" writes
    fresh, _ = model.read_state({})
    state = model.state_from_config(downloaded, fresh)
    assert model.build_config(state).to_dict() == downloaded
    assert state["land"] == "two_optima" and state["starts"] == "grid:3" and state["wmode"] == "sum1"


def test_a_job_config_of_one_setting_opens_as_a_view_and_a_sweep_is_refused():
    from jobs import config as jobs
    from views import explore_model as model
    fresh, _ = model.read_state({})
    job = {"landscape": "one_optimum", "methods": ["samgs", "ls"], "starts": "-8,5;3,7.5", "steps": 3000,
           "lr": 0.002, "seeds": [2], "hparams": {"samgs": {"gamma": 0.4}}}
    state = model.state_from_config(job, fresh)
    cfg = model.build_config(state)
    eng = jobs.JobConfig.from_dict(job).engine_config("samgs", 2, [[-8, 5], [3, 7.5]])
    assert cfg.for_method("samgs").variants() == eng.variants()
    assert cfg.steps == 3000 and cfg.seed == 2 and np.allclose(cfg.start_array, [[-8, 5], [3, 7.5]])
    with pytest.raises(ValueError, match="sweep"):
        model.state_from_config({**job, "sweep": {"samgs": {"gamma": [0.1, 0.5]}}}, fresh)
    with pytest.raises(ValueError, match="steps"):
        model.state_from_config({**job, "steps": 200_000}, fresh)


def test_benchmark_this_view_opens_the_form_holding_the_view():
    at = app(**QUICK, **{"samgs.gamma": "0.3"}, starts="grid:4", pipe="clean")
    assert_clean(at)
    cfg = config(at)
    at.button(key="explore.to_bench").click().run()
    assert not at.exception, texts(at.exception)
    assert at.multiselect(key="bj_methods").value == list(cfg["methods"])
    assert at.number_input(key="bj_grid").value == 4 and at.number_input(key="bj_steps").value == cfg["steps"]
    assert at.selectbox(key="bj_pipeline").value == "clean"
    assert at.text_input(key="bj_hparams").value == "samgs.gamma=0.3"


def test_a_grid_view_warms_up_its_own_kernels(monkeypatch):
    """The "Warming up" status names the methods whose kernels this server has not built. A large batch runs
    on other kernels (blocks of runs interleaved: trajectories.engine.c_ilp, from 1 000 runs a method), so the
    paper starts being warm must not make a 32 x 32 grid (1 024 runs a method) count as warm, while a 12 x 12
    grid (144) runs on the paper starts' kernels."""
    from views import explore_model as model
    monkeypatch.setattr(model, "WARM", set())
    fresh, _ = model.read_state({})
    paper = model.build_config(fresh)
    grid = model.build_config({**fresh, "starts": "grid:32"})
    small_grid = model.build_config({**fresh, "starts": "grid:12"})
    assert sorted(model.cold_methods(paper)) == sorted(ISSUE_DEFAULTS)
    model.mark_warm(paper)
    assert model.cold_methods(paper) == [] and model.cold_methods(small_grid) == []
    assert sorted(model.cold_methods(grid)) == sorted(ISSUE_DEFAULTS)
    model.mark_warm(grid)
    assert model.cold_methods(grid) == [] and model.cold_methods(paper) == []


def test_methods_to_compute_run_first_and_the_result_keeps_the_pages_order(monkeypatch):
    """A γ move reruns SAM-GS alone: explore_model._run starts the methods it has not computed before the cached
    ones (which would otherwise hold its threads with cache look-ups first), and stacks the rows in the view's
    order all the same, equal to a separate engine call. One thread here, so the order is the order of starting."""
    import dataclasses
    import json

    import trajectories
    from views import explore_model as model
    base = trajectories.Config.make("one_optimum", ("ls", "mgda", "samgs"), "paper", 300, record_every=10)
    model.run(dataclasses.replace(base, methods=("ls", "mgda")))        # ls and mgda computed and cached
    started = []
    real = model._run_method

    def spy(cfg_json):
        started.append(json.loads(cfg_json)["methods"])
        return real(cfg_json)
    monkeypatch.setattr(model, "_run_method", spy)
    monkeypatch.setattr(model, "METHOD_THREADS", 1)
    res = model.run(base)
    assert started == [["samgs"], ["ls"], ["mgda"]]
    assert [v["method"] for v in res.variants] == ["ls", "mgda", "samgs"]
    alone = trajectories.run(dataclasses.replace(base, methods=("samgs",)))
    np.testing.assert_array_equal(res.positions[2], alone.positions[0])
