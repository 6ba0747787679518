"""The Lessons page: every claim its prose makes is a run of the engine asserted here; every step renders, in
presentation mode too; a step's link reopens it with its knobs; its Explore links open the same view.

Each check builds the step's view as the page does (the step's Explore parameters through the Explore model), runs
the engine on it here, and asserts the sentence from the landscape's optima, the Pareto set and arithmetic — not
from the page's own tables. ``test_every_claim_has_a_check`` keeps the prose and the checks in step.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import trajectories
from trajectories import metrics
from views import explore_model as model
from views import lesson_steps

PAGE = str(Path(__file__).resolve().parents[1] / "views" / "lessons.py")
TIMEOUT = 300


def view(slug: str, **changes):
    """(config, Result) of a step's view with some parameters changed, run by the engine here."""
    step = lesson_steps.get(slug)
    state, problems = model.read_state(dict(step.params))
    assert not problems, problems
    state.update(changes)
    cfg = model.build_config(state)
    return cfg, trajectories.run(cfg)


def row(res, method: str) -> int:
    return res.methods.index(method)


def near_optimum(res, m: int) -> np.ndarray:
    """Runs whose last finite point lies within 0.1 of a global minimiser (of the row's weighted sum)."""
    w = res.variants[m]["task_weights"]
    opt = res.landscape.optima(w, float(res.config["scale"]))
    return np.linalg.norm(res.final[m][:, None] - opt[None], axis=-1).min(1) <= 0.1


def on_set(res, m: int) -> np.ndarray:
    land = res.landscape
    d = np.array([np.linalg.norm(land.pareto_set() - p, axis=1).min() for p in res.final[m]])
    return d <= 0.1


def gradients(land, point):
    g = land.grads_np(np.array([point], dtype=float))[0]
    n = np.linalg.norm(g, axis=1)
    return g, n, float(g[0] @ g[1] / (n[0] * n[1])), float(2 * n[0] * n[1] / (n @ n))


# -- the claims, one check each --------------------------------------------------------------------------------
def check_conflict_angle():
    cfg, res = view("conflict")
    land = res.landscape
    assert np.allclose(res.starts[0], [0, 5])
    _, n, cos, gms = gradients(land, (0, 5))
    assert round(gms, 2) == 1.00 and round(cos, 2) == -0.64 and round(float(n[0]), 2) == round(float(n[1]), 2) == 0.22
    d = res.aux["dir"][0, 0, 0]                       # the step LS applied at step 0 (clean pipeline: g1 + g2)
    assert round(float(np.linalg.norm(d)), 2) == 0.18 and np.linalg.norm(d) < n.min()
    assert round(float(res.aux["cos"][0, 0, 0]), 2) == -0.64 and round(float(res.aux["gms"][0, 0, 0]), 2) == 1.00


def check_conflict_magnitude():
    cfg, res = view("conflict")
    g, n, cos, gms = gradients(res.landscape, (-8, -10.5))
    assert np.allclose(res.starts[1], [-8, -10.5])
    assert round(cos, 2) == 0.98 and round(gms, 2) == 0.14 and round(float(n[0] / n[1])) == 15
    d = res.aux["dir"][0, 1, 0]
    angle = np.degrees(np.arccos(d @ g[0] / (np.linalg.norm(d) * n[0])))
    assert angle < 1.0


def check_sum_ls():
    cfg, res = view("sum")
    m = row(res, "ls")
    reached = near_optimum(res, m) & (res.diverged_step[m] < 0)
    assert reached.sum() == 2 and not on_set(res, m)[~reached].any()
    assert (res.diverged_step[m] < 0).all()
    outcome = res.outcome[m][~reached]
    assert (outcome == "stalled").sum() == 2 and (outcome == "moving").sum() == 3
    assert (res.starts[~reached, 1] > 0).all()                 # the five upper starts (the notice line)
    tail = slice(-max(1, int(0.1 * (len(res.record_steps) - 1))) - 1, None)
    still = np.linalg.norm(res.positions[m][:, tail] - res.final[m][:, None], axis=-1).max(1)
    assert (still[~reached][outcome == "moving"] > 0.05).all()    # the three "still moving" runs moved at the end


def check_sum_samgs():
    cfg, res = view("sum")
    m = row(res, "samgs")
    assert near_optimum(res, m).all() and cfg.steps == 20000 and len(res.starts) == 7
    assert (res.optimum_step[m] >= 0).all() and res.optimum_step[m].max() <= 18000


def _gamma(g):
    return view("gamma", **{"samgs.gamma": g})[1]


def check_gamma_g01():
    res = _gamma(0.1)
    assert res.variants[0]["hparams"]["gamma"] == 0.1 and near_optimum(res, 0).sum() == 7


def check_gamma_g0():
    res = _gamma(0.0)
    assert np.nansum(res.aux["branch"][0]) == 0                 # equalisation never fired
    reached = near_optimum(res, 0)
    assert reached.sum() == 3
    assert (res.outcome[0][~reached] == "stalled").all() and not on_set(res, 0)[~reached].any()


def check_gamma_g1():
    res = _gamma(1.0)
    assert on_set(res, 0).all() and near_optimum(res, 0).sum() == 1
    assert np.nanmean(res.aux["branch"][0]) > 0.8                 # equalising at nearly every step
    G = res.landscape.grads_np(res.final[0])                        # at every run's end, on the set:
    unit = G / np.linalg.norm(G, axis=-1, keepdims=True)
    assert np.linalg.norm(unit.sum(1), axis=-1).max() < 0.05        # the unit gradients (nearly) cancel


def check_saddle_reach():
    cfg, res = view("saddle")
    assert res.landscape.key == "two_optima" and len(res.starts) == 6 and cfg.steps == 21000
    assert len(res.landscape.optima()) == 2
    assert near_optimum(res, row(res, "samgs")).sum() == 5 and near_optimum(res, row(res, "ls")).sum() == 1


def check_saddle_saddle():
    cfg, res = view("saddle")
    m = row(res, "samgs")
    s = int(np.flatnonzero(np.all(np.isclose(res.starts, [0, -8]), axis=1))[0])
    end = res.final[m, s]
    assert np.allclose(end, [0, -10.84], atol=0.005) and on_set(res, m)[s] and not near_optimum(res, m)[s]
    assert res.status[m, s] == "settled"
    _, n, cos, gms = gradients(res.landscape, end)
    assert round(cos, 3) == -1.0 and round(gms, 3) == 1.0
    # a saddle of the sum: the gradient of the sum vanishes, and the sum is below the end point on either side
    L = lambda p: res.landscape.losses_np(np.array([p])).sum()      # noqa: E731
    assert L(end + [0.5, 0]) < L(end) and L(end - [0.5, 0]) < L(end)


def check_weights_move():
    land = model.landscape_of({"land": "one_optimum", "spec": ""})
    even, w3, w7 = land.optima(), land.optima((0.3, 0.7)), land.optima((0.7, 0.3))
    assert np.allclose(even.round(2), [[0, -8.36]]) and np.allclose(w3.round(2), [[-2.80, -8.37]])
    assert np.allclose(w7.round(2), [[2.80, -8.37]])
    assert metrics.pareto_distance(land, w3).max() < 1e-3 and metrics.pareto_distance(land, w7).max() < 1e-3


def check_weights_follow():
    cfg, res = view("weights")
    assert tuple(res.variants[0]["task_weights"]) == pytest.approx((0.3, 0.7))
    assert near_optimum(res, 0).sum() == 6


def check_surgery_pcgrad():
    cfg, res = view("surgery")
    m = row(res, "pcgrad")
    assert on_set(res, m).sum() == 5 and near_optimum(res, m).sum() == 1


def check_surgery_msi():
    cfg, res = view("surgery")
    m = row(res, "msi")
    reached = near_optimum(res, m)
    assert reached.sum() == 2 and on_set(res, m).sum() == 2
    assert (res.outcome[m][~reached] == "moving").sum() == 5
    p = row(res, "pomsi")
    assert on_set(res, p).sum() == 3 and near_optimum(res, p).sum() == 1


def check_nan_reference():
    cfg, res = view("nan")
    assert cfg.pipeline == "reference"
    nan = np.char.startswith(res.status[0].astype(str), "nan")
    came = res.optimum_step[0] >= 0
    assert came.sum() == 3 and nan.sum() == 2 and (came[nan]).all()
    assert (res.optimum_step[0][nan] < res.diverged_step[0][nan]).all()       # reached first, then NaN
    assert near_optimum(res, 0)[nan].all()                                   # frozen at the optimum


def check_nan_clean():
    _, ref = view("nan")
    cfg, res = view("nan", pipe="clean")
    assert (res.diverged_step[0] < 0).all()
    ref_nan = np.char.startswith(ref.status[0].astype(str), "nan")
    assert (near_optimum(res, 0) == ref_nan).all()                           # the same 2 starts, and only they
    assert (res.status[0][ref_nan] == "settled").all()


CHECKS = {f"{slug}.{claim}": fn for slug, claim, fn in (
    ("conflict", "angle", check_conflict_angle), ("conflict", "magnitude", check_conflict_magnitude),
    ("sum", "ls", check_sum_ls), ("sum", "samgs", check_sum_samgs),
    ("gamma", "g01", check_gamma_g01), ("gamma", "g0", check_gamma_g0), ("gamma", "g1", check_gamma_g1),
    ("saddle", "reach", check_saddle_reach), ("saddle", "saddle", check_saddle_saddle),
    ("weights", "move", check_weights_move), ("weights", "follow", check_weights_follow),
    ("surgery", "pcgrad", check_surgery_pcgrad), ("surgery", "msi", check_surgery_msi),
    ("nan", "reference", check_nan_reference), ("nan", "clean", check_nan_clean))}


def test_every_claim_has_a_check():
    claims = {f"{s.slug}.{c}" for s in lesson_steps.STEPS for c in s.claims}
    assert claims == set(CHECKS)
    for s in lesson_steps.STEPS:
        for c in s.claims:
            assert "{" + c + "}" in s.text, f"{s.slug}: claim {c} is not in the prose"


@pytest.mark.parametrize("claim", sorted(CHECKS))
def test_the_lesson_claim_holds(claim):
    CHECKS[claim]()


def test_there_are_five_to_seven_short_steps():
    assert 5 <= len(lesson_steps.STEPS) <= 7
    for s in lesson_steps.STEPS:
        assert len(s.prose.split()) <= 170, s.slug            # a paragraph, not a chapter
        assert 1 <= len(s.knobs) <= 2 and s.notice


# -- the page --------------------------------------------------------------------------------------------------
def page(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.query_params.update(query)
    return at.run()


def figures(at) -> int:
    return len(at.get("plotly_chart")) + len(at.get("bidi_component"))


@pytest.mark.parametrize("slug", [s.slug for s in lesson_steps.STEPS])
def test_every_step_renders_with_its_figure_text_and_links(slug):
    step = lesson_steps.get(slug)
    for teach in ("", "1"):
        at = page(lesson=slug, **({"teach": teach} if teach else {}))
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert figures(at) == 1
        md = " ".join(m.value for m in at.markdown)
        assert step.prose.split(".")[0] in md
        assert any("What to notice" in i.value for i in at.info)
        links = {b.proto.label: b.proto.url for b in at.get("link_button")}
        explore = {k: v[0] for k, v in parse_qs(urlparse(links["Open in Explore"]).query).items()}
        assert "teach" not in explore
        state, problems = model.read_state(explore)          # the link opens the step's view in Explore
        assert not problems and model.build_config(state).to_dict() == view(slug)[0].to_dict()
        assert state["view"] == step.params.get("view", "map")
        present = parse_qs(urlparse(links["Present in Explore"]).query)
        assert present["teach"] == ["1"]
        assert at.query_params["lesson"] in (slug, [slug])


def test_a_step_link_with_a_knob_reopens_it():
    at = page(lesson="gamma")
    at.slider(key="l.samgs.gamma").set_value(0.5).run()
    assert not at.exception
    assert float(at.query_params["samgs.gamma"]) == 0.5 and at.query_params["lesson"] == "gamma"
    again = page(**dict(at.query_params))
    assert again.slider(key="l.samgs.gamma").value == 0.5
    links = {b.proto.label: b.proto.url for b in again.get("link_button")}
    explore = parse_qs(urlparse(links["Open in Explore"]).query)
    assert explore["samgs.gamma"] == ["0.5"] and explore["methods"] == ["samgs"]


def test_the_explore_link_opens_the_same_view():
    """The step's "Open in Explore" address, read by the Explore model, is the config the lesson ran."""
    at = page(lesson="weights")
    links = {b.proto.label: b.proto.url for b in at.get("link_button")}
    raw = {k: v[0] for k, v in parse_qs(urlparse(links["Open in Explore"]).query).items()}
    state, problems = model.read_state(raw)
    assert not problems
    cfg_explore = model.build_config(state)
    cfg_lesson, _ = view("weights")
    assert cfg_explore.to_dict() == cfg_lesson.to_dict()


def test_next_and_back_walk_the_steps_and_an_unknown_step_is_named():
    at = page(lesson="sum")
    at.button(key="l.next").click().run()
    assert at.query_params["lesson"] in ("gamma", ["gamma"])
    at.button(key="l.prev").click().run()
    assert at.query_params["lesson"] in ("sum", ["sum"])
    bad = page(lesson="nowhere", foo="1")
    assert not bad.exception
    warned = " ".join(w.value for w in bad.warning)
    assert "`lesson=nowhere`" in warned and "`foo`" in warned
