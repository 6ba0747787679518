"""What Explore's map can draw under the runs: the published paths (ghosts) and each method's first-step direction
field. Both travel in the live figure (``figures.browser.live_map(ghosts=..., field=...)``).

* ``ghosts=1``: under every run that has a published path (``figures/published.py``: same landscape, method,
  hyperparameters, start, the reference pipeline, Adam lr 1e-3, float32, no more steps than published), that path,
  grey and dashed; a caption gives the largest distance between each run and its path, measured at every point of
  the published path (every 100th step) on an engine run of those starts that records them.
* ``field=1``: over an ``fieldn`` × ``fieldn`` grid of θ (cell centres), each method's d on its first step from a
  fresh state — the engine's own first step (one step of every grid start, its recorded ``dir``) — drawn as arrows
  along −d (where the step goes), all of one length.

Engine calls are cached per method and config for every session, as the page's own.
"""
from __future__ import annotations

import hashlib
import json

import numpy as np
import streamlit as st

import trajectories
from figures import browser, published
from views import common

W = "x."
FIELD_N = 13
FIELD_MIN, FIELD_MAX = 3, 31


@st.cache_resource(max_entries=48, show_spinner=False)
def _run(cfg_json: str):
    return trajectories.run(trajectories.Config.from_dict(json.loads(cfg_json)))


def controls(state: dict, container=st) -> None:
    """The map's overlay toggles (one row)."""
    c = container.columns([2, 2, 2, 3])
    common.seed(W + "ghosts", bool(state["ghosts"]))
    state["ghosts"] = bool(c[0].toggle("Published paths", key=W + "ghosts",
                                       help="the SAM-GS authors' published path under every run that has one "
                                            "(grey, dashed; reference pipeline only)"))
    common.seed(W + "field", bool(state["field"]))
    state["field"] = bool(c[1].toggle("Direction field", key=W + "field",
                                      help="each method's first-step direction over a grid of θ (arrows along −d)"))
    if state["field"]:
        common.seed(W + "fieldn", int(state["fieldn"]))
        state["fieldn"] = int(c[2].number_input("Field grid (n × n)", min_value=FIELD_MIN, max_value=FIELD_MAX,
                                                step=2, key=W + "fieldn"))


# -- the direction field --------------------------------------------------------------------------------
def field_points(land, n: int) -> np.ndarray:
    """The centres of an n × n grid of cells over the box (x fastest)."""
    (x0, x1), (y0, y1) = land.bounds
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n
    X, Y = np.meshgrid(xs, ys)
    return np.stack([X.ravel(), Y.ravel()], 1)


def field_result(cfg, n: int):
    """The first step of every method of ``cfg`` from every grid point (one cached engine call per method)."""
    land = cfg.land
    pts = field_points(land, n)
    base = cfg.to_dict()
    base.update(starts=pts.tolist(), starts_spec="", steps=1, record_every=1, record=["diagnostics"])
    one = trajectories.Config.from_dict(base)
    parts = [_run(one.for_method(m).to_json()) for m in one.methods]
    return trajectories.Result.stack(parts, one.to_dict()), pts


def field_arrows(result_cfg, n: int) -> list:
    """Per row, the arrows (x, y, u, v) of its direction field."""
    res, pts = field_result(result_cfg, n)
    land = result_cfg.land
    (x0, x1), _ = land.bounds
    length = 0.8 * (x1 - x0) / n
    return [browser.field_arrows(pts, res.aux["dir"][m, :, 0], length) for m in range(res.shape[0])]


# -- published paths --------------------------------------------------------------------------------
def distances(result) -> list[dict]:
    """Per matched run: the largest distance to its published path, at every published point (every 100th step),
    from this view's run where it was recorded there, else from a cached engine run of those starts that is."""
    ms = published.matches(result)
    if not ms:
        return []
    steps = int(result.config["steps"])
    rec = np.asarray(result.record_steps)
    cfg = trajectories.Config.from_dict(result.config)
    out = []
    by_row: dict = {}
    for mt in ms:
        by_row.setdefault(mt.row, []).append(mt)
    for row, group in by_row.items():
        stride = group[0].run.stride
        if np.isin(np.arange(0, steps + 1, stride), rec).all():     # this view recorded every published point
            pos, rsteps, idx = result.positions[row], rec, [mt.start for mt in group]
        else:
            starts = result.starts[[mt.start for mt in group]]
            base = cfg.for_method(result.variants[row]["method"]).to_dict()
            base.update(starts=starts.tolist(), starts_spec="", record_every=stride, record=["positions"])
            r = _run(trajectories.Config.from_dict(base).to_json())
            pos, rsteps, idx = r.positions[0], r.record_steps, list(range(len(group)))
        for mt, i in zip(group, idx):
            d = published.largest_distance(mt.run, pos[i], rsteps, steps)
            out.append({"method": result.labels[mt.row], "start": f"({result.starts[mt.start, 0]:g}, "
                                                                   f"{result.starts[mt.start, 1]:g})",
                        "published label": mt.run.label, "largest distance": d,
                        "ends here in": str(result.outcome[mt.row, mt.start]),
                        "published outcomes allowed": ", ".join(mt.run.outcomes),
                        "source": "authors' code" if mt.run.source == "paper" else "re-implementation (grid)"})
    return out


def extras(result, state) -> tuple[dict, str]:
    """The live map's ``ghosts`` / ``field`` for this view, and a key that tells them apart (for the cache)."""
    kw, key = {}, []
    if state["ghosts"]:
        g = published.ghosts(result)
        if any(g):
            kw["ghosts"] = g
            key.append(f"ghosts{len(published.matches(result))}")
    if state["field"]:
        cfg = trajectories.Config.from_dict(result.config)
        kw["field"] = field_arrows(cfg, int(state["fieldn"]))
        key.append(f"field{int(state['fieldn'])}")
    digest = hashlib.blake2b("|".join(key).encode(), digest_size=6).hexdigest() if key else ""
    return kw, digest


def notes(result, state) -> None:
    """Under the map: what the ghosts cover and how far each run is from its published path."""
    if state["field"]:
        st.caption(f"Direction field: each method's d on its first step from a fresh state, at the centres of a "
                   f"{int(state['fieldn'])} × {int(state['fieldn'])} grid; arrows point along −d (where Adam steps), "
                   f"all of one length. Stateful methods (SAM-GS, Nash-MTL, …) turn differently once they have a "
                   f"history.")
    if not state["ghosts"]:
        return
    why = published.why_none(result.config)
    if why:
        st.caption(f"No published paths here: {why}.")
        return
    rows = distances(result)
    notes_ = published.row_notes(result)
    extra = "; ".join(f"{result.labels[m]}: {why}" for m, why in notes_.items())
    if not rows:
        st.caption("No run of this view has a published path (the paper preset and the reference grid of starts "
                   "have them)" + (f" — {extra}." if extra else "."))
        return
    worst = {}
    for r in rows:
        worst[r["method"]] = max(worst.get(r["method"], 0.0), r["largest distance"])
    st.caption(f"Published paths under {len(rows)} run(s) (grey, dashed). Largest distance to the published path: "
               + " · ".join(f"{m} {d:.2g}" for m, d in worst.items())
               + ". A robust run (see Fragility) should stay within 0.05; a sensitive one may go elsewhere."
               + (f" Without: {extra}." if extra else ""))
    with st.expander("Each run against its published path"):
        st.dataframe(rows, hide_index=True, width="stretch",
                     column_config={"largest distance": st.column_config.NumberColumn(format="%.3g")})
        st.caption("Distances at every published point (every 100th step). Published paths come from the SAM-GS "
                   "authors' toy code (the paper's starts) and from an independent re-implementation of their "
                   "pipeline that reproduces every published run bit for bit (the 25-start grid).")
