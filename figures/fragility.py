"""Figures of how fragile runs are (``trajectories/fragility.py``): the cloud of one run, and flip marks for basin maps.

* :func:`cloud_figure`: one start's run over the contour, the runs from its ring of nudged starts (thin, coloured by
  where each ended), the float64 run (black, dashed), the published path where there is one (grey, dashed), and
  every end point;
* :func:`mark_flips`: on outcome maps (``figures/benchmark.outcome_maps``), a ring around every start whose outcome
  flips under the nudge.

Pure builders (Plotly figures); the engine runs are the caller's.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from . import data
from . import style as style_mod
from .browser import CONTOUR_SCALE, GHOST_COLOUR, _equal_axes
from .style import END_COLOUR, OPTIMUM_COLOUR, OUTCOME_COLOURS, PARETO_COLOUR, START_COLOUR

FLIP_COLOUR = "#000000"


def _path(P: np.ndarray) -> np.ndarray:
    """A path up to its first non-finite point."""
    ok = np.isfinite(P).all(-1)
    return P if ok.all() else P[: int(np.argmin(ok))]


def cloud_figure(r32, r64, frag, s: int, n: int, inside, *, radius: float, colour: str, label: str, ghost=None,
                 height: int = 620, max_points: int = 300) -> go.Figure:
    """Start ``s`` of a cloud (the float32 Result ``r32`` of ``fragility.cloud_configs``: each start, then its ``n``
    nudged starts; ``r64`` its float64 runs; ``frag`` their ``fragility.assess``)."""
    land = r64.landscape
    w = r64.variants[0].get("task_weights")
    sc = float(r64.config.get("scale", 1.0) or 1.0)
    xs, ys, Z = data.contour_grid(land, "sum", tuple(w) if w else None, sc)
    traces = [go.Contour(x=xs, y=ys, z=Z, colorscale=CONTOUR_SCALE, ncontours=25, showscale=False,
                         contours=dict(coloring="fill", showlines=True), hoverinfo="skip",
                         line=dict(width=0.5, color="rgba(80,80,80,0.35)"), name="weighted sum", showlegend=False)]
    if land.n_tasks == 2:
        px, py = data.pareto_polyline(land.pareto_set(), land.bounds)
        traces.append(go.Scatter(x=px, y=py, mode="lines", name="Pareto set", hoverinfo="skip",
                                 line=dict(color=PARETO_COLOUR, width=5)))
    opt = land.optima(tuple(w) if w else None, sc)
    traces.append(go.Scatter(x=opt[:, 0], y=opt[:, 1], mode="markers", name="optimum", hoverinfo="skip",
                             marker=dict(symbol="star", size=15, color=OPTIMUM_COLOUR,
                                         line=dict(color="black", width=1))))
    if ghost is not None:
        traces.append(go.Scatter(x=ghost[:, 0], y=ghost[:, 1], mode="lines", name="published path", hoverinfo="skip",
                                 line=dict(color=GHOST_COLOUR, width=6, dash="dash")))
    T = r32.positions.shape[2]
    idx = style_mod.decimate(T, max_points)
    P = r32.positions[0].reshape(-1, 1 + n, T, 2)[s]
    outs = r32.outcome[0].reshape(-1, 1 + n)[s]
    ends = r32.final[0].reshape(-1, 1 + n, 2)[s]
    groups = {}
    for j in range(1, n + 1):
        if inside[j - 1]:
            groups.setdefault(str(outs[j]), []).append(j)
    order = sorted(groups, key=lambda name: -len(groups[name]))       # the rare outcomes drawn last, on top
    end_traces = []
    for name in order:
        members = groups[name]
        sep = np.full((1, 2), np.nan)
        xy = np.concatenate([a for j in members for a in (_path(P[j][idx]), sep)])
        c = OUTCOME_COLOURS.get(name, "#999999")
        traces.append(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="lines", opacity=0.85, line=dict(color=c, width=1.6),
                                 name=f"nudged → {name} ({len(members)})", legendgroup=f"cloud:{name}",
                                 hoverinfo="skip"))
        end_traces.append(go.Scatter(x=ends[members, 0], y=ends[members, 1], mode="markers", showlegend=False,
                                     legendgroup=f"cloud:{name}",
                                     marker=dict(color=c, size=10, line=dict(color="black", width=1)),
                                     hovertemplate=f"nudged run ends ({name})<br>(%{{x:.4f}}, %{{y:.4f}})"
                                                   f"<extra></extra>"))
    p64 = _path(r64.positions[0, s][style_mod.decimate(r64.positions.shape[2], max_points)].astype(float))
    traces.append(go.Scatter(x=p64[:, 0], y=p64[:, 1], mode="lines", name=f"float64 → {frag.float64_outcome[s]}",
                             line=dict(color="#000000", width=1.8, dash="dash"), hoverinfo="skip"))
    own = _path(P[0][idx].astype(float))
    traces.append(go.Scatter(x=own[:, 0], y=own[:, 1], mode="lines", name=f"{label} → {frag.outcome[s]}",
                             line=dict(color=colour, width=3), hoverinfo="skip"))
    traces.append(go.Scatter(x=[ends[0, 0]], y=[ends[0, 1]], mode="markers", name="end", hoverinfo="skip",
                             marker=dict(color=END_COLOUR, size=10, line=dict(color="white", width=1))))
    traces += end_traces[::-1] if len(end_traces) > 1 else end_traces
    st0 = frag.starts[s]
    traces.append(go.Scatter(x=[st0[0]], y=[st0[1]], mode="markers", name="start", marker=dict(color=START_COLOUR,
                                                                                               size=9),
                             hovertemplate="start (%{x:.4g}, %{y:.4g})<extra></extra>"))
    layout = dict(height=height, margin=dict(l=50, r=20, t=50, b=40), plot_bgcolor="white", hovermode="closest",
                  legend=dict(orientation="v", x=1.02, xanchor="left", y=1.0), uirevision="fragility",
                  title=dict(text=f"{label} from ({st0[0]:g}, {st0[1]:g}): {n} starts {radius:g} away and the float64 "
                                  f"run", x=0.01),
                  **_equal_axes(land))
    return go.Figure(data=traces, layout=layout)


def mark_flips(fig: go.Figure, frags: list, *, cols: int) -> go.Figure:
    """Ring every start whose outcome flips under the nudge, on the panels of ``outcome_maps`` (one panel per entry
    of ``frags``, in order, ``cols`` a row). Adds one legend entry."""
    shown = False
    for k, fr in enumerate(frags):
        if fr is None or not fr.flips.any():
            continue
        r, c = k // cols + 1, k % cols + 1
        pts = fr.starts[fr.flips]
        tip = ["flips: " + ", ".join(f"{o} {v:.0%}" for o, v in fr.shares[i].items())
               for i in np.flatnonzero(fr.flips)]
        fig.add_trace(go.Scatter(x=pts[:, 0], y=pts[:, 1], mode="markers", name="outcome flips under the nudge",
                                 legendgroup="flips", showlegend=not shown, text=tip,
                                 marker=dict(symbol="circle-open", size=13, color=FLIP_COLOUR, line=dict(width=2.2)),
                                 hovertemplate="start (%{x:.3g}, %{y:.3g})<br>%{text}<extra></extra>"), row=r, col=c)
        shown = True
    return fig
