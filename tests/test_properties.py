"""Property-based tests (hypothesis) over the engine's validators (and over every method's step:
tests/test_method_contract.py).

* ``Config.make`` (what ``simulate``, the pages, the CLI and job configs all go through) on arbitrary values:
  either a valid config, or a ValueError whose message names the field.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import trajectories

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
    from jobs.config import JobConfig
    d = {"methods": ["ls"], "starts": "grid:2", "steps": 10, field: value}
    try:
        cfg = JobConfig.from_dict(d)
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
