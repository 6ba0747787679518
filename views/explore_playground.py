"""Explore's aggregator playground: drag two or three task gradients and see what every chosen method makes of them.

Widgets (angle and length of each g_k, the losses, the pipeline; a §9 test vector as a preset) -> the page state
(``pg``, ``pgl``, ``pgpipe`` in the address) -> each method's first step from a fresh state
(``figures.playground.directions``, which calls ``optimizers.probe.first_step``) -> the figure (the draggable
chart, ``views/playground_drag.py``) and a table of d, |d|, its cosine with each g_k and the weights. The chosen
methods and their hyperparameters are the sidebar's.
"""
from __future__ import annotations

import math

import numpy as np
import streamlit as st

import optimizers
from figures import playground as pgfig
from views import common, playground_drag

STATE_KEY = "explore"
W = "x.pg."
CHART_KEY = "explore_playground"
NEW_TASK = (0.0, -1.0)


def _state() -> dict:
    return st.session_state[STATE_KEY]


def _forget() -> None:
    for k in [k for k in st.session_state.keys() if isinstance(k, str) and k.startswith(W)]:
        del st.session_state[k]


def _set_vectors(vectors) -> None:
    state = _state()
    state["pg"] = tuple(vectors)
    losses = tuple(state["pgl"])[: len(vectors)]
    state["pgl"] = losses + (1.0,) * (len(vectors) - len(losses))
    _forget()


# -- callbacks (run before the page script) -------------------------------------------------------------
def _on_polar(k: int):
    def callback() -> None:
        state = _state()
        vs = list(state["pg"])
        vs[k] = pgfig.from_polar(float(st.session_state[f"{W}a{k}"]), float(st.session_state[f"{W}n{k}"]))
        state["pg"] = tuple(vs)
    return callback


def _on_loss(k: int):
    def callback() -> None:
        state = _state()
        ls = list(state["pgl"])
        ls[k] = float(st.session_state[f"{W}l{k}"])
        state["pgl"] = tuple(ls)
    return callback


def _on_preset() -> None:
    name = st.session_state.get(f"{W}preset")
    if name in pgfig.TEST_VECTORS:
        _set_vectors(pgfig.TEST_VECTORS[name][1])


def _on_third() -> None:
    vs = list(_state()["pg"])
    _set_vectors(vs + [NEW_TASK] if st.session_state.get(f"{W}third") else vs[:2])


def _on_pipe() -> None:
    _state()["pgpipe"] = st.session_state[f"{W}pipe"]


def _on_drag() -> None:
    hit = playground_drag.drag_of(CHART_KEY)
    if hit is None:
        return
    k, x, y = hit
    vs = list(_state()["pg"])
    if 0 <= k < len(vs):
        scale = pgfig.MAX_NORM / max(pgfig.MAX_NORM, math.hypot(x, y))
        vs[k] = (round(x * scale, 4) + 0.0, round(y * scale, 4) + 0.0)
        _set_vectors(vs)


# -- the view --------------------------------------------------------------------------------------------
def _controls(state: dict) -> None:
    K = len(state["pg"])
    c = st.columns([3, 2, 2])
    c[0].selectbox("Load a test vector (methods-spec.md §9)", ["—"] + list(pgfig.TEST_VECTORS), key=f"{W}preset",
                   on_change=_on_preset, format_func=lambda n: n if n == "—" else
                   f"{n}: {pgfig.TEST_VECTORS[n][0]}")
    common.seed(f"{W}third", K == 3)
    c[1].checkbox("Third task (g₃)", key=f"{W}third", on_change=_on_third)
    common.seed(f"{W}pipe", state["pgpipe"])
    c[2].radio("Pipeline", list(optimizers.PIPELINES), key=f"{W}pipe", horizontal=True, on_change=_on_pipe,
               help="reference: × K and norm clipping as the published toy code; clean: each method as its paper "
                    "defines it")
    cols = st.columns(K)
    for k, v in enumerate(state["pg"]):
        angle, length = pgfig.polar(v)
        common.seed(f"{W}a{k}", round(angle, 6))
        common.seed(f"{W}n{k}", round(length, 6))
        common.seed(f"{W}l{k}", float(state["pgl"][k]) if k < len(state["pgl"]) else 1.0)
        box = cols[k]
        a, n, lo = box.columns(3)
        a.number_input(f"g{k + 1} angle (°)", min_value=-360.0, max_value=360.0, step=5.0, format="%g",
                       key=f"{W}a{k}", on_change=_on_polar(k))
        n.number_input(f"g{k + 1} length", min_value=0.0, max_value=pgfig.MAX_NORM, step=0.1, format="%g",
                       key=f"{W}n{k}", on_change=_on_polar(k))
        lo.number_input(f"L{k + 1} (loss)", min_value=1e-6, max_value=pgfig.MAX_NORM, step=0.5, format="%g",
                        key=f"{W}l{k}", on_change=_on_loss(k),
                        help="the task's loss: loss-based methods weight by it (the default 1 weights every task "
                             "alike)")


def _table(dirs, vectors) -> list[dict]:
    rows = []
    for x in dirs:
        n = float(np.linalg.norm(x.d))
        kind = "; ".join([s for s in ("stateful: its first step" if x.stateful else "",
                                      "random: one draw" if x.random else "", x.note) if s])
        row = {"method": x.label, "first step": kind or "stateless", "d": f"({x.d[0]:.4g}, {x.d[1]:.4g})", "|d|": n}
        for k, g in enumerate(vectors):
            row[f"cos(d, g{k + 1})"] = pgfig.cosine(x.d, np.asarray(g, dtype=float))
        row["weights"] = ", ".join(f"{w:.4g}" for w in x.weights)
        row["native d"] = f"({x.native[0]:.4g}, {x.native[1]:.4g})"
        rows.append(row)
    return rows


def show(state: dict, presenting: bool = False) -> None:
    """The playground view (the page state holds its controls; the sidebar chooses the methods)."""
    vectors, losses = tuple(state["pg"]), tuple(state["pgl"])
    if len(losses) != len(vectors):
        st.error(f"pgl: expected {len(vectors)} losses (one per task gradient), got {len(losses)}; using 1 for each.")
        losses = (1.0,) * len(vectors)
        state["pgl"] = losses
    if not presenting:
        _controls(state)
    methods = list(state["methods"])
    hp = {m: {h.name: state[f"{m}.{h.name}"] for h in optimizers.get(m).hparams} for m in methods}
    try:
        dirs = pgfig.directions(methods, vectors, losses, hparams=hp, pipeline=state["pgpipe"],
                                seed=int(state["seed"]))
    except ValueError as e:
        st.error(f"Cannot compute the directions: {e}")
        return
    skipped = [optimizers.get(m).name for m in methods if m not in {d.key for d in dirs}]
    tri = pgfig.triad(vectors)
    st.caption(f"cos(g₁, g₂{', g₃' if len(vectors) == 3 else ''}) = {tri['cos']:.3f} · GMS = {tri['gms']:.3f}"
               f"{' (means over the pairs)' if len(vectors) == 3 else ''} · losses "
               f"{', '.join(f'{x:g}' for x in losses)} · {state['pgpipe']} pipeline · each method's **first step** "
               f"from a fresh state: the stateful ones (SAM-GS's momentum, Nash-MTL's previous weights, …) behave "
               f"differently once they have a history.")
    fig = pgfig.build_figure(vectors, dirs)
    config = {"displaylogo": False, "edits": {"annotationTail": True}, "scrollZoom": False,
              "toImageButtonOptions": {"format": state["img"], "filename": "gradscape-playground", "scale": 2},
              "modeBarButtonsToRemove": ["lasso2d", "select2d", "zoom2d", "pan2d"]}
    left, right = st.columns([1, 1]) if not presenting else (st.container(), None)
    with left:
        playground_drag.show(fig, config, key=CHART_KEY, on_drag=_on_drag)
    if not presenting:
        right.caption("Drag the label g₁, g₂ (or g₃) at the tip of a task gradient — or type its angle and length "
                      "above. Each coloured arrow is a method's d: the vector its pipeline hands to Adam, which then "
                      "steps along −d. A dotted arrow is longer than the view (its true length is in the table).")
        right.dataframe(_table(dirs, vectors), hide_index=True, width="stretch",
                        column_config={k: st.column_config.NumberColumn(format="%.3g")
                                       for k in ("|d|", "cos(d, g1)", "cos(d, g2)", "cos(d, g3)")})
        right.caption("d: what the pipeline hands to Adam; native d: the method's own output, before the reference "
                      "pipeline's × K and clipping to norm 1. Weights: the method's task weights (the least-norm "
                      "weights of d where it has none).")
    if skipped:
        st.caption(f"Not shown ({len(vectors)} tasks): {', '.join(skipped)}.")
