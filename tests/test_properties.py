"""Property-based tests (hypothesis) over every method's step and the engine's validators.

* Every method, both pipelines, K = 2 and 3: on batches mixing zero, tiny (1e-30), ordinary and huge (1e30)
  gradients, equal / opposite / parallel pairs and any losses, a step never raises, and each run's output
  depends on that run alone (a row computed in a batch equals the same row computed by itself: a
  non-finite run can never spoil another). On ordinary input (norms in [1e-3, 1e3], losses in [1, 50]) the
  direction is finite. (Non-finite output is what the engine freezes and flags: tests/test_engine.py.)
* ``Config.make`` (what ``simulate``, the pages, the CLI and job configs all go through) on arbitrary values:
  either a valid config, or a ValueError whose message names the field.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import optimizers
import trajectories
from optimizers.base import Context

SCALES = [0.0, 1e-30, 1e-8, 1e-3, 1.0, 1e3, 1e8, 1e30]
SETTINGS = dict(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _hp(m, B, dtype):
    return {h.name: torch.full((B,), float(h.default), dtype=dtype) for h in m.hparams if not h.static}


def _static(m):
    return {h.name: h.default for h in m.hparams if h.static}


def _step(m, G, L, pipeline, key):
    B, K, D = G.shape
    hp = {**_hp(m, B, G.dtype), **_static(m)}
    state = m.init(B, K, D, hp, dtype=G.dtype, device="cpu")
    ctx = Context(pipeline, torch.ones(B, dtype=G.dtype), key, torch.full((B, K), -60.0, dtype=G.dtype))
    with torch.no_grad():
        d, new, aux = m.step(G, L, state, hp, ctx)
    return d, new


@st.composite
def batches(draw, K):
    """G[B, K, 2] rows from a mix of scales and special configurations, and losses L[B, K]."""
    B = draw(st.integers(2, 6))
    rows, losses = [], []
    for _ in range(B):
        kind = draw(st.sampled_from(["random", "equal", "opposite", "parallel", "zero-one"]))
        angles = [draw(st.floats(0, 2 * math.pi)) for _ in range(K)]
        scales = [draw(st.sampled_from(SCALES)) for _ in range(K)]
        g = np.array([[math.cos(a) * s, math.sin(a) * s] for a, s in zip(angles, scales)])
        if kind == "equal":
            g[1:] = g[0]
        elif kind == "opposite":
            g[1] = -g[0]
        elif kind == "parallel":
            g[1] = g[0] * draw(st.sampled_from([1e-3, 0.5, 2.0, 1e3]))
        elif kind == "zero-one":
            g[0] = 0.0
        rows.append(g)
        losses.append([draw(st.one_of(st.sampled_from([0.0, -1.0, 1e-30, -50.0, 50.0]),
                                      st.floats(-60, 60))) for _ in range(K)])
    return np.array(rows), np.array(losses)


METHODS = optimizers.names()


@pytest.mark.parametrize("K", [2, 3])
@pytest.mark.parametrize("pipeline", optimizers.PIPELINES)
@pytest.mark.parametrize("key", METHODS)
def test_each_run_depends_on_itself_alone_and_ordinary_input_gives_finite_steps(key, pipeline, K):
    m = optimizers.get(key)
    if K < m.min_tasks:
        pytest.fail(f"{key} needs {m.min_tasks} tasks")  # (no shipped method needs more than 2)

    @settings(**SETTINGS)
    @given(batches(K))
    def check(batch):
        Gn, Ln = batch
        G, L = torch.tensor(Gn, dtype=torch.float64), torch.tensor(Ln, dtype=torch.float64)
        keys = torch.arange(len(G), dtype=torch.int64) * 7919
        d, new = _step(m, G, L, pipeline, keys)
        assert d.shape == (len(G), 2)
        for i in range(len(G)):
            di, newi = _step(m, G[i:i + 1], L[i:i + 1], pipeline, keys[i:i + 1])
            torch.testing.assert_close(di[0], d[i], equal_nan=True, rtol=1e-9, atol=0)
            for name in new:
                torch.testing.assert_close(newi[name][0], new[name][i], equal_nan=True, rtol=1e-9, atol=0)

    check()

    @settings(**SETTINGS)
    @given(st.integers(1, 6), st.data())
    def ordinary(B, data):
        norms = data.draw(st.lists(st.floats(1e-3, 1e3), min_size=B * K, max_size=B * K))
        angles = data.draw(st.lists(st.floats(0, 2 * math.pi), min_size=B * K, max_size=B * K))
        Ls = data.draw(st.lists(st.floats(1.0, 50.0), min_size=B * K, max_size=B * K))
        G = torch.tensor([[n * math.cos(a), n * math.sin(a)] for n, a in zip(norms, angles)],
                         dtype=torch.float64).reshape(B, K, 2)
        L = torch.tensor(Ls, dtype=torch.float64).reshape(B, K)
        d, _ = _step(m, G, L, pipeline, torch.arange(B))
        assert torch.isfinite(d).all(), (G, L, d)

    ordinary()


FIELDS = ("lr", "steps", "starts", "task_weights", "scale", "momentum", "seed", "record_every", "methods",
          "hparams", "pipeline", "optimizer", "dtype")
ANY = st.one_of(st.none(), st.booleans(), st.integers(-10 ** 12, 10 ** 12),
                st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
                st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=3))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(FIELDS), ANY)
def test_config_make_accepts_or_names_the_field(field, value):
    kw = dict(landscape="one_optimum", methods=["ls"], starts="paper", steps=10)
    if field in kw:
        kw[field] = value
    else:
        kw[field] = value
    args = [kw.pop("landscape"), kw.pop("methods"), kw.pop("starts"), kw.pop("steps")]
    try:
        cfg = trajectories.Config.make(*args, **kw)
    except ValueError as e:
        msg = str(e)
        words = {"hparams": ("hparams", "ls"), "methods": ("method",), "optimizer": ("optimizer", "outer"),
                 "starts": ("starts", "point", "start")}.get(field, (field,))
        assert any(w in msg for w in words), (field, value, msg)
    except KeyError as e:                          # unknown names are KeyErrors that still name the thing
        assert field in ("methods", "optimizer") and str(value) in str(e), (field, value, e)
    else:
        assert cfg.steps >= 1 and all(0 < lr <= 100 for lr in cfg.lrs)
        pts = np.asarray(cfg.starts, dtype=float)
        assert np.isfinite(pts).all()


JOB_FIELDS = ("name", "landscape", "methods", "starts", "steps", "pipeline", "optimizer", "lr", "momentum",
              "task_weights", "scale", "seeds", "hparams", "sweep", "record_every", "early_exit", "dtype",
              "chunk_mb", "chunk_runs", "landscape_spec")


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(JOB_FIELDS), ANY)
def test_job_configs_accept_or_name_the_field(field, value):
    """A benchmark job config (the page's form, `bench CONFIG` files) with one arbitrary field."""
    from trajectories import jobs
    d = {"methods": ["ls"], "starts": "grid:2", "steps": 10, field: value}
    try:
        cfg = jobs.JobConfig.from_dict(d)
    except ValueError as e:
        msg = str(e)
        alias = {"seeds": ("seed",), "methods": ("method",), "landscape": ("landscape",),
                 "starts": ("start", "grid", "point"), "optimizer": ("optimizer", "outer"),
                 "hparams": ("hparams", "ls"), "sweep": ("sweep",), "landscape_spec": ("landscape",)}
        assert any(w in msg for w in alias.get(field, (field,))), (field, value, msg)
    except KeyError as e:                          # an unknown registry name
        assert field in ("methods", "landscape", "optimizer"), (field, value, e)
    else:
        assert cfg.steps >= 1 and len(cfg.plan()) >= 1
