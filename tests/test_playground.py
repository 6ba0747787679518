"""The aggregator playground (figures/playground.py over optimizers/probe.py): each method's first step on dragged
task gradients.

Expected values come from methods-spec.md §9 (the test vectors T1-T5: each aggregator's native d and, where the
published pipeline applies × K and clipping, the vector it writes), from §3's definitions of cos and GMS, or from
the engine's own first step on a landscape (the playground must show what a run would do first).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import landscapes
import optimizers
import trajectories
from figures import playground as pg
from optimizers import probe
from vectors import TV

# §9: method -> vector -> (native d, the reference pipeline's vector or None when it is the native one)
SPEC = {
    "ls": {"T1": ((1, 1), None), "T2": ((1, 1), None), "T3": ((3.1, 4), None), "T4": ((-1, -2), None),
           "T5": ((2, 4), None)},
    "pcgrad": {"T1": ((1, 1), (0.707107, 0.707107)), "T2": ((1, 2), (0.447213, 0.894427)),
               "T3": ((3.1, 4), (0.612572, 0.790415)), "T4": ((0, 0), None), "T5": ((2, 4), (0.447213, 0.894427))},
    "mgda": {"T1": ((0.5, 0.5), (1, 1)), "T2": ((0.2, 0.6), (0.4, 1.2)), "T4": ((0, 0), None),
             "T5": ((1, 2), (2, 4))},
    "imtlg": {"T1": ((0.5, 0.5), None), "T2": ((0.242641, 0.585786), None), "T3": ((0.156863, 0.078431), None),
              "T4": ((0, 0), None), "T5": ((1, 2), None)},
    "nashmtl": {"T1": ((1, 1), None), "T2": ((0.541196, 1.306563), None), "T3": ((1.264911, 0.632456), None)},
    "alignedmtl": {"T1": ((1, 1), (0.707107, 0.707107)), "T2": ((0.552786, 1.105573), (0.447213, 0.894427)),
                   "T3": ((0.111795, 0.017320), (0.223590, 0.034641)), "T4": ((-1, -2), (-0.447213, -0.894427)),
                   "T5": ((2, 4), (0.447214, 0.894427))},
    "cagrad": {"T1": ((0.603448, 0.603448), (0.707107, 0.707107)), "T2": ((0.258621, 0.603448), (0.393919, 0.919144)),
               "T3": ((2.208730, 1.724138), (0.788272, 0.615326)),
               "T4": ((-0.258621, -0.517241), (-0.447213, -0.894426)),
               "T5": ((1.206897, 2.413793), (0.447214, 0.894427))},
    "upgrad": {"T1": ((0.5, 0.5), None), "T2": ((0.500075, 0.999850), None), "T3": ((1.55, 2), None),
               "T4": ((-0.000437, -0.000875), None), "T5": ((1, 2), None)},
    "dualproj": {"T1": ((0.5, 0.5), None), "T2": ((0.5, 0.5), None), "T3": ((1.55, 2), None), "T5": ((1, 2), None)},
    "config": {"T1": ((1, 1), None), "T2": ((0.5, 1.207107), None), "T3": ((4.08, 2.04), None), "T4": ((0, 0), None),
               "T5": ((2, 4), None)},
    "gradvac": {"T1": ((1, 1), None), "T2": ((1, 2), None), "T3": ((3.1, 4), None), "T4": ((0, 0), None),
                "T5": ((2, 4), None)},
    "samgs": {"T1": ((1000, 1000), (0.707107, 0.707107)), "T2": ((52.447827, 17.482609), (0.948683, 0.316228)),
              "T3": ((4.08, 2.04), (0.894427, 0.447214)), "T4": ((-15.0, -60.0), (-0.242536, -0.970142)),
              "T5": ((2000, 8000), (0.242536, 0.970143))},
}
CASES = [(m, v) for m in SPEC for v in SPEC[m]]


@pytest.mark.parametrize("method,tv", CASES, ids=[f"{m}-{v}" for m, v in CASES])
def test_the_playground_shows_each_methods_step_on_the_spec_vectors(method, tv):
    native, written = SPEC[method][tv]
    (d,) = pg.directions([method], TV[tv], hparams={"cagrad": {"c": 0.4}}, pipeline="reference")
    tol = dict(rtol=2e-5, atol=2e-6)         # §9 prints six significant digits
    np.testing.assert_allclose(d.native, native, **tol)
    np.testing.assert_allclose(d.d, written if written is not None else native, **tol)


def test_the_spec_weights_show_in_the_playground():
    """§9 T2: MGDA gamma = 0.4 on g1; Nash-MTL alpha = (0.923880, 1.306563)."""
    mgda, nash = pg.directions(["mgda", "nashmtl"], TV["T2"])
    np.testing.assert_allclose(mgda.weights, [0.4, 0.6], atol=1e-6)
    np.testing.assert_allclose(nash.weights, [0.923880, 1.306563], atol=1e-6)


@pytest.mark.parametrize("pipeline", optimizers.PIPELINES)
def test_the_playground_d_is_the_engines_first_step_on_a_landscape(pipeline):
    """Every method: the gradients and losses of one_optimum at three starts, with the landscape's loss floor, give
    the direction the engine records on its first step (aux["dir"] at record 0)."""
    land = landscapes.get("one_optimum")
    starts = np.array([[-8.0, 5.0], [3.0, -4.0], [10.0, -3.0]])
    methods = optimizers.names()
    res = trajectories.simulate(land, methods, starts, 1, pipeline=pipeline, record_every=1,
                                record=("diagnostics",))
    theta = torch.tensor(starts, dtype=torch.float32)
    w = torch.ones(3, 2, dtype=torch.float32)
    scale = torch.ones(3, dtype=torch.float32)
    L, G = land.evaluate(theta, w, scale)
    floor = land.loss_floor(w, scale)
    for m, key in enumerate(methods):
        step = probe.first_step(optimizers.get(key), G.detach(), L.detach(), pipeline=pipeline, loss_floor=floor,
                                dtype=torch.float32)
        np.testing.assert_allclose(step.d.numpy(), res.aux["dir"][m, :, 0], rtol=1e-5, atol=1e-6, err_msg=key)


def test_stateful_and_random_methods_are_labelled():
    dirs = {d.key: d for d in pg.directions(["samgs", "nashmtl", "ls", "rlw", "pcgrad"], TV["T2"])}
    assert dirs["samgs"].stateful and dirs["nashmtl"].stateful and not dirs["ls"].stateful
    assert dirs["rlw"].random and not dirs["pcgrad"].random            # PCGrad draws only to order K >= 3 tasks
    assert dirs["samgs"].note == "momentum branch"                     # §9 T2
    (t3,) = pg.directions(["samgs"], TV["T3"])
    assert t3.note == "equalisation branch"                             # §9 T3


def test_the_triad_is_cos_and_gms_of_section_3():
    t = pg.triad(TV["T2"])
    assert t["cos"] == pytest.approx(-1 / math.sqrt(2)) and t["gms"] == pytest.approx(0.942809, abs=1e-6)
    three = pg.triad([(1, 0), (0, 1), (-1, 0)])                        # pairs: cos 0, -1, 0; GMS 1, 1, 1
    assert three["cos"] == pytest.approx(-1 / 3) and three["gms"] == pytest.approx(1.0)


def test_the_loss_weighting_methods_read_the_losses():
    """Scale-invariant LS writes sum_k g_k / L_k (methods-spec.md §5.3)."""
    (d,) = pg.directions(["scaleinvls"], TV["T2"], losses=(2.0, 0.5))
    np.testing.assert_allclose(d.d, np.array([2, 0]) / 2 + np.array([-1, 1]) / 0.5)


def test_a_third_task_reaches_the_methods_that_take_it():
    dirs = pg.directions(["ls", "samgs"], [(1, 0), (0, 1), (-1, -1)])
    np.testing.assert_allclose(dirs[0].d, [0, 0], atol=1e-12)
    assert len(dirs[1].weights) == 3


@pytest.mark.parametrize("text,field", [
    ("1,0", "expected 2 or 3 vectors"), ("1,0;0,1;1,1;2,2", "expected 2 or 3"), ("1,0;0", "g2"),
    ("1,0;x,1", "g2"), ("1,0;nan,1", "g2"), ("1,0;2000,0", "g2: its norm"),
])
def test_bad_vectors_name_the_field(text, field):
    with pytest.raises(ValueError, match=field):
        pg.parse_vectors(text)


@pytest.mark.parametrize("text,field", [("1", "expected 2 or 3"), ("1,0", "L2"), ("1,-1", "L2"), ("1,inf", "L2")])
def test_bad_losses_name_the_field(text, field):
    with pytest.raises(ValueError, match=field):
        pg.parse_losses(text)


def test_vectors_round_trip_through_their_text_and_polar_form():
    vs = pg.parse_vectors("2,0;-1,1;0.25,-3")
    assert pg.parse_vectors(pg.format_vectors(vs)) == vs
    for v in vs:
        np.testing.assert_allclose(pg.from_polar(*pg.polar(v)), v, atol=1e-12)


def test_the_figure_draws_every_d_and_clips_only_what_leaves_the_view():
    dirs = pg.directions(["ls", "samgs", "mgda"], TV["T2"], pipeline="clean")
    fig = pg.build_figure(TV["T2"], dirs)
    names = [t["name"] for t in fig["data"]]
    assert names == ["LS", "SAM-GS (stateful: first step)", "MGDA"]
    R = fig["layout"]["xaxis"]["range"][1]
    samgs = fig["data"][1]                                  # clean SAM-GS: |d| = 55.3, far outside the view
    assert samgs["line"]["dash"] == "dot" and math.hypot(samgs["x"][1], samgs["y"][1]) < R
    assert fig["data"][0]["line"]["dash"] == "solid" and (fig["data"][0]["x"][1], fig["data"][0]["y"][1]) == (1, 1)
    tails = [(a["ax"], a["ay"]) for a in fig["layout"]["annotations"]]
    assert tails == [(2.0, 0.0), (-1.0, 1.0)]               # the labels, at the tips, are what the user drags
