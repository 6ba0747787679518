"""Plotly figures for the Explore page: the map (contour + trajectories), small multiples, the loss space,
playback frames, diagnostics over steps, and gradient arrows at one step.

Pure builders: ``build_*(result, style, ...) -> plotly.graph_objects.Figure``; nothing here imports
streamlit or runs the engine. Trajectories are decimated for drawing only (``Style.max_points`` per path,
fewer when there are many paths); the Result is never changed. Above ``GL_POINTS`` drawn points the
paths become WebGL (``Scattergl``) traces.

Marks (figures/style.py): start = black dot, end = red dot, optimum = star, Pareto set = thick line.
Playback: Plotly animation frames move one marker per run along its path (a step slider and
play / pause buttons in the figure), so scrubbing never re-runs anything on the server.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import style as style_mod
from .style import END_COLOUR, OPTIMUM_COLOUR, PARETO_COLOUR, START_COLOUR, Style

GL_POINTS = 40_000        # drawn path points above which paths use WebGL
POINT_BUDGET = 120_000    # total drawn path points per figure (decimation for drawing only)
FRAMES = 60               # playback frames (fewer when there are many runs: FRAME_POINTS markers in all)
FRAME_POINTS = 150_000
PLAYBACK_RUNS = 5_000     # above this many runs the figures have no playback (the frames would be too heavy)
MARKER_GL = 2_000         # marker traces with more points than this are WebGL too
CONTOUR_N = 120           # contour grid resolution (per axis)
CLICK_N = 51              # candidate click targets per axis on the overlay map
CONTOUR_SCALE = [[0.0, "#fbfbfb"], [0.35, "#e3e6ec"], [0.7, "#c3c9d4"], [1.0, "#9aa3b3"]]


# -- data helpers ------------------------------------------------------------------------------
_GRIDS: dict = {}        # pure-function memo: (landscape, weights, scale, n) -> (points, losses)


def loss_name(loss: str) -> str:
    """"sum" -> "weighted sum", "task2" -> "task 2 loss"."""
    return "weighted sum" if loss == "sum" else f"task {loss.removeprefix('task')} loss"


def grid_losses(land, weights=None, scale: float = 1.0, n: int = CLICK_N):
    """(points[n*n, 2], L[n*n, K]): the weighted task losses on an n x n grid over the box (x fastest)."""
    key = (land.key, repr(getattr(land, "spec", None)), None if weights is None else tuple(map(float, weights)),
           float(scale), int(n))
    if key not in _GRIDS:
        if len(_GRIDS) > 64:
            _GRIDS.clear()
        pts = land.grid(n)[2]
        _GRIDS[key] = (pts, land.losses_np(pts, weights, scale))
    return _GRIDS[key]


def contour_values(land, loss: str = "sum", weights=None, scale: float = 1.0, n: int = CONTOUR_N):
    """(xs[n], ys[n], Z[n, n]) of the chosen loss ("sum", "task1", "task2", ...) over the landscape's box."""
    _, L = grid_losses(land, weights, scale, n)
    (x0, x1), (y0, y1) = land.bounds
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    if loss == "sum":
        z = L.sum(1)
    else:
        k = int(loss.removeprefix("task")) - 1 if loss.removeprefix("task").isdigit() else -1
        if not 0 <= k < L.shape[1]:
            raise ValueError(f"loss: {loss!r} is not one of sum, task1 .. task{L.shape[1]}")
        z = L[:, k]
    return xs, ys, z.reshape(n, n)


def preview_contour(land, n: int = 60) -> go.Figure:
    """A small contour of the summed loss with the landscape's preset starts (the landscape studio's preview;
    no Pareto set, which is computed only when the landscape is applied)."""
    xs, ys, Z = contour_values(land, "sum", n=n)
    finite = Z[np.isfinite(Z)]
    lo, hi = (np.percentile(finite, [1, 95]) if finite.size else (0.0, 1.0))
    fig = go.Figure(go.Contour(x=xs, y=ys, z=np.clip(Z, lo, hi), colorscale=CONTOUR_SCALE, showscale=False,
                               ncontours=18, line={"width": 0.5}, hoverinfo="skip"))
    for preset in land.presets.values():
        p = np.asarray(preset.points, dtype=float).reshape(-1, 2)
        fig.add_trace(go.Scatter(x=p[:, 0], y=p[:, 1], mode="markers", name=preset.label,
                                 marker={"color": START_COLOUR, "size": 6}, showlegend=False))
    fig.update_layout(height=220, margin={"l": 30, "r": 10, "t": 10, "b": 30},
                      xaxis={"title": "θ₁"}, yaxis={"title": "θ₂", "scaleanchor": "x"})
    return fig


def weights_of(result) -> tuple | None:
    """The task weights of the first variant (the page does not sweep weights)."""
    w = result.variants[0].get("task_weights") if result.variants else None
    return tuple(w) if w else None


def scale_of(result) -> float:
    return float(result.config.get("scale", 1.0) or 1.0)


def path_points(result, max_points: int):
    """Decimated record indices shared by every path, and the per-path point cap actually used."""
    M, S = result.shape
    T = len(result.record_steps)
    cap = max(8, min(max_points, POINT_BUDGET // max(1, M * S)))
    return style_mod.decimate(T, cap)


def _polyline(arr: np.ndarray, idx: np.ndarray):
    """arr[S, T, 2] -> x, y with NaN separators between the S paths (one trace draws them all)."""
    S = arr.shape[0]
    pts = arr[:, idx, :].astype(float)
    sep = np.full((S, 1, 2), np.nan)
    flat = np.concatenate([pts, sep], 1).reshape(-1, 2)
    return _r(flat[:, 0]), _r(flat[:, 1])


def _steps_column(result, idx: np.ndarray, S: int) -> np.ndarray:
    steps = np.asarray(result.record_steps)[idx].astype(float)
    return np.tile(np.concatenate([steps, [np.nan]]), S)


def _pareto_polyline(points: np.ndarray):
    """The ordered Pareto set with gaps (disconnected parts) broken where consecutive points jump."""
    if len(points) < 2:
        return points[:, 0], points[:, 1]
    gaps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    cut = gaps > max(5 * np.median(gaps), 1e-9)
    out = []
    for i, p in enumerate(points):
        out.append(p)
        if i < len(cut) and cut[i]:
            out.append([np.nan, np.nan])
    arr = np.array(out, dtype=float)
    return arr[:, 0], arr[:, 1]


def _figure(data, layout=None, frames=None) -> go.Figure:
    """A Figure from plain trace/frame dicts without Plotly's per-property validation (4x faster here)."""
    return go.Figure(data=data, layout=layout, frames=frames, _validate=False)


def _r(a) -> np.ndarray:
    """A big array for drawing: float32 (Plotly sends it as a compact typed array; the Result keeps its precision)."""
    return np.asarray(a, dtype=np.float32)


def _l(a) -> list:
    """A small array as a plain list (per-array overhead of Plotly's typed-array encoding dominates for these)."""
    return [None if not math.isfinite(v) else round(v, 5) for v in np.asarray(a, dtype=float).ravel().tolist()]


def _path_trace(use_gl: bool, **kw):
    return dict(type="scattergl" if use_gl else "scatter", **kw)


# -- the map -------------------------------------------------------------------------------------
def _static_map_traces(land, style: Style, weights, scale, *, xaxis="x", yaxis="y", legend=True, zmin=None,
                       zmax=None, contour_n=CONTOUR_N, with_colorbar=True):
    xs, ys, Z = contour_values(land, style.contour, weights, scale, contour_n)
    name = loss_name(style.contour)
    traces = [dict(type="contour", x=xs, y=ys, z=_r(Z), colorscale=CONTOUR_SCALE, ncontours=25, name=name,
                   contours=dict(coloring="fill", showlines=True), line=dict(width=0.5, color="rgba(80,80,80,0.35)"),
                   showscale=with_colorbar, zmin=zmin, zmax=zmax,
                   colorbar=dict(title=dict(text=name, side="right"), thickness=12, len=0.8, x=1.01, xanchor="left"),
                   hoverinfo="skip", xaxis=xaxis, yaxis=yaxis, showlegend=False)]
    if style.show_pareto:
        px, py = _pareto_polyline(land.pareto_set())
        traces.append(dict(type="scatter", x=_r(px), y=_r(py), mode="lines", name="Pareto set", legendgroup="pareto",
                           line=dict(color=PARETO_COLOUR, width=style.pareto_width), hoverinfo="skip",
                           xaxis=xaxis, yaxis=yaxis, showlegend=legend))
    if style.show_optima:
        opt = land.optima(weights, scale)
        traces.append(dict(type="scatter", x=_l(opt[:, 0]), y=_l(opt[:, 1]), mode="markers", name="optimum",
                           legendgroup="optimum", showlegend=legend, xaxis=xaxis, yaxis=yaxis,
                           marker=dict(symbol="star", size=17, color=OPTIMUM_COLOUR, line=dict(color="black", width=1)),
                           hovertemplate="optimum (%{x:.3f}, %{y:.3f})<extra></extra>"))
    return traces


def _run_traces(result, style: Style, rows, idx, use_gl, *, xaxis="x", yaxis="y", legend=True, space="theta"):
    """Paths, ends and playback markers for the given rows; returns (traces, marker_slot_per_row)."""
    colours = style_mod.variant_style(result.variants)
    arr_all = result.positions if space == "theta" else result.losses[..., :2]
    S = arr_all.shape[1]
    steps_col = _steps_column(result, idx, S)
    paths, ends, markers = [], [], []
    for m in rows:
        c, dash = colours[m]
        label = result.variants[m]["label"]
        x, y = _polyline(arr_all[m], idx)
        paths.append(_path_trace(
            use_gl, x=x, y=y, mode="lines", name=label, legendgroup=f"run{m}", showlegend=legend,
            line=dict(color=c, width=style.line_width, dash=dash), customdata=steps_col,
            hovertemplate=f"{label}<br>step %{{customdata:.0f}}<br>(%{{x:.3f}}, %{{y:.3f}})<extra></extra>",
            xaxis=xaxis, yaxis=yaxis))
        fin = arr_all[m][:, -1, :] if space != "theta" else result.final[m]
        ends.append(dict(type="scattergl" if S > MARKER_GL else "scatter", x=_l(fin[:, 0]), y=_l(fin[:, 1]),
                         mode="markers", name=f"{label} end", legendgroup=f"run{m}", showlegend=False,
                         xaxis=xaxis, yaxis=yaxis,
                         marker=dict(color=END_COLOUR, size=style.marker_size, line=dict(color="white", width=0.5)),
                         hovertemplate=f"{label} end<br>(%{{x:.3f}}, %{{y:.3f}})<extra></extra>"))
        first = arr_all[m][:, idx[0], :]
        markers.append(dict(type="scatter", x=_l(first[:, 0]), y=_l(first[:, 1]), mode="markers", name=f"{label} now",
                            legendgroup=f"run{m}", showlegend=False, hoverinfo="skip", xaxis=xaxis, yaxis=yaxis,
                            marker=dict(symbol="circle-open", color=c, size=style.marker_size + 8,
                                        line=dict(color=c, width=2.5))))
    return paths, ends, markers


def _starts_trace(points, style: Style, *, xaxis="x", yaxis="y", legend=True):
    return dict(type="scattergl" if len(points) > MARKER_GL else "scatter", x=_l(points[:, 0]), y=_l(points[:, 1]),
                mode="markers", name="start",
                legendgroup="start", showlegend=legend, xaxis=xaxis, yaxis=yaxis,
                marker=dict(color=START_COLOUR, size=style.marker_size + 1),
                hovertemplate="start (%{x:.3f}, %{y:.3f})<br>click: remove<extra></extra>")


def click_targets(land, n: int = CLICK_N, weights=None, scale: float = 1.0):
    """An invisible dense grid of points over the box: clicking one selects its (x, y) (Plotly selection)."""
    pts, L = grid_losses(land, weights, scale, n)
    losses = ", ".join(f"L{k + 1} = %{{customdata[{k}]:.3g}}" for k in range(L.shape[1]))
    return dict(type="scatter", x=_r(pts[:, 0]), y=_r(pts[:, 1]), mode="markers", name="click targets",
                showlegend=False, marker=dict(size=9, color="rgba(0,0,0,0)", opacity=0), customdata=_r(L),
                hovertemplate="(%{x:.2f}, %{y:.2f})<br>" + losses +
                              "<br><i>click: add a start (near one: remove it)</i><extra></extra>")


def playback_ok(result) -> bool:
    M, S = result.shape
    return M * S <= PLAYBACK_RUNS


def _frames(result, idx, marker_traces: list[int], rows_per_marker: list[int], space="theta"):
    """Frames that move each run's marker along its path; slider + play/pause controls."""
    arr = result.positions if space == "theta" else result.losses[..., :2]
    T = len(result.record_steps)
    M, S = result.shape
    n_frames = int(np.clip(FRAME_POINTS // max(1, M * S), 10, FRAMES))
    sel = np.unique(np.linspace(0, T - 1, min(n_frames, T)).round().astype(int))
    frames, steps = [], []
    for f, t in enumerate(sel):
        data = [dict(type="scatter", x=_l(arr[m][:, t, 0]), y=_l(arr[m][:, t, 1])) for m in rows_per_marker]
        name = str(int(result.record_steps[t]))
        frames.append(dict(data=data, traces=marker_traces, name=name))
        steps.append(dict(method="animate", label=name,
                          args=[[name], dict(mode="immediate", frame=dict(duration=0, redraw=False),
                                             transition=dict(duration=0))]))
    slider = dict(active=0, steps=steps, x=0.12, len=0.88, y=0, yanchor="top", pad=dict(t=45, b=5),
                  currentvalue=dict(prefix="step ", font=dict(size=12)), transition=dict(duration=0))
    buttons = dict(type="buttons", direction="left", x=0.0, y=0, xanchor="left", yanchor="top",
                   pad=dict(t=52, r=10), showactive=False,
                   buttons=[dict(label="▶", method="animate",
                                 args=[None, dict(frame=dict(duration=80, redraw=False), fromcurrent=True,
                                                  transition=dict(duration=0), mode="immediate")]),
                            dict(label="❚❚", method="animate",
                                 args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate",
                                                    transition=dict(duration=0))])])
    return frames, slider, buttons


def _equal_axes(land) -> dict:
    """Layout entries for the map's axes: the landscape's box, equal scales."""
    (x0, x1), (y0, y1) = land.bounds
    return dict(xaxis=dict(range=[x0, x1], title=dict(text="θ₁"), constrain="domain", showgrid=False,
                           zeroline=False),
                yaxis=dict(range=[y0, y1], title=dict(text="θ₂"), scaleanchor="x", scaleratio=1, constrain="domain",
                           showgrid=False, zeroline=False))


def _legend() -> dict:
    """A vertical legend right of the plot (and of the colour bar)."""
    return dict(orientation="v", yanchor="top", y=1.0, x=1.12, xanchor="left", bgcolor="rgba(255,255,255,0.8)")


def _with_playback(layout: dict, result, idx, marker_traces, rows, space="theta"):
    frames, slider, buttons = _frames(result, idx, marker_traces, rows, space=space)
    layout.update(sliders=[slider], updatemenus=[buttons])
    return frames


def build_map(result, style: Style = Style(), *, clickable: bool = True, playback: bool = True) -> go.Figure:
    """Overlay view: contour of ``style.contour`` with every run's path, starts, ends, optima, the Pareto set.

    ``clickable`` adds the invisible grid of click targets (trace name "click targets") that the page turns
    into add/remove-a-start events.
    """
    playback = playback and playback_ok(result)
    land = result.landscape
    w, sc = weights_of(result), scale_of(result)
    M, S = result.shape
    idx = path_points(result, style.max_points)
    use_gl = M * S * len(idx) > GL_POINTS
    traces = _static_map_traces(land, style, w, sc)
    rows = list(range(M))
    paths, ends, markers = _run_traces(result, style, rows, idx, use_gl)
    traces += paths + ends
    traces.append(_starts_trace(result.starts, style))
    first_marker = len(traces)
    traces += markers
    if clickable:
        traces.append(click_targets(land, CLICK_N, w, sc))
    layout = dict(height=660, margin=dict(l=50, r=20, t=40, b=110 if playback else 40),
                  title=dict(text=f"{land.title}: {loss_name(style.contour)}", x=0.01),
                  legend=_legend(), hovermode="closest", hoverdistance=12, plot_bgcolor="white",
                  uirevision="map", **_equal_axes(land))
    markers_at = list(range(first_marker, first_marker + M))
    frames = _with_playback(layout, result, idx, markers_at, rows) if playback else None
    return _figure(traces, layout, frames)


def build_small_multiples(result, style: Style = Style(), *, playback: bool = True,
                          cols: int | None = None) -> go.Figure:
    """One panel per method variant over the same contour, shared axes (the SAM-GS paper's figures 2 and 4)."""
    playback = playback and playback_ok(result)
    land = result.landscape
    w, sc = weights_of(result), scale_of(result)
    M, S = result.shape
    cols = cols or min(4, M)
    nrows = math.ceil(M / cols)
    grid = make_subplots(rows=nrows, cols=cols, shared_xaxes="all", shared_yaxes="all",
                         subplot_titles=[v["label"] for v in result.variants],
                         horizontal_spacing=0.02, vertical_spacing=0.08 / max(1, nrows - 1) if nrows > 1 else 0.0)
    layout = grid.layout.to_plotly_json()
    idx = path_points(result, style.max_points)
    use_gl = M * S * len(idx) > GL_POINTS
    _, _, Z = contour_values(land, style.contour, w, sc, 80)
    zmin, zmax = float(np.nanmin(Z)), float(np.nanmax(Z))
    traces, marker_slots = [], []
    for m in range(M):
        n = m + 1
        xa, ya = ("x" if n == 1 else f"x{n}"), ("y" if n == 1 else f"y{n}")
        traces += _static_map_traces(land, style, w, sc, xaxis=xa, yaxis=ya, legend=(m == 0), zmin=zmin, zmax=zmax,
                                     contour_n=80, with_colorbar=(m == 0))
        paths, ends, markers = _run_traces(result, style, [m], idx, use_gl, xaxis=xa, yaxis=ya, legend=False)
        traces += paths + ends
        traces.append(_starts_trace(result.starts, style, xaxis=xa, yaxis=ya, legend=(m == 0)))
        marker_slots.append(len(traces))
        traces.append(markers[0])
    (x0, x1), (y0, y1) = land.bounds
    for key in list(layout):
        if key.startswith("xaxis"):
            layout[key].update(range=[x0, x1], showgrid=False, zeroline=False)
        elif key.startswith("yaxis"):
            layout[key].update(range=[y0, y1], showgrid=False, zeroline=False)
    layout.update(height=300 * nrows + (130 if playback else 60), plot_bgcolor="white", hovermode="closest",
                  margin=dict(l=40, r=20, t=60, b=110 if playback else 40), legend=dict(_legend(), y=1.03),
                  title=dict(text=f"{land.title}: one panel per method", x=0.01), uirevision="multiples")
    frames = _with_playback(layout, result, idx, marker_slots, list(range(M))) if playback else None
    return _figure(traces, layout, frames)


# -- loss space ----------------------------------------------------------------------------------
def build_loss_space_3d(result, style: Style = Style()) -> go.Figure:
    """Three tasks or more: (L1, L2, L3) in 3-D, the Pareto front as a point cloud, every run's path, its start
    (black) and end (red). Drag to rotate; no playback."""
    land = result.landscape
    w, sc = weights_of(result), scale_of(result)
    M, S = result.shape
    if result.losses is None:
        raise ValueError("the loss-space view needs recorded losses")
    if result.losses.shape[-1] < 3:
        raise ValueError("the 3-D loss-space view needs three tasks")
    idx = path_points(result, style.max_points)
    front = land.pareto_front(None, w, sc)[:, :3]
    traces = [dict(type="scatter3d", x=_r(front[:, 0]), y=_r(front[:, 1]), z=_r(front[:, 2]), mode="markers",
                   name="Pareto front", marker=dict(color=PARETO_COLOUR, size=2, opacity=0.5), hoverinfo="skip")]
    styles = style_mod.variant_style(result.variants)
    for m in range(M):
        colour, _ = styles[m]
        P = result.losses[m][:, idx, :3]                       # [S, T, 3]
        pad = np.full((S, 1, 3), np.nan)
        xyz = np.concatenate([P, pad], 1).reshape(-1, 3)       # NaN breaks the line between runs
        traces.append(dict(type="scatter3d", x=_r(xyz[:, 0]), y=_r(xyz[:, 1]), z=_r(xyz[:, 2]), mode="lines",
                           name=result.labels[m], line=dict(color=colour, width=3), connectgaps=False,
                           hoverinfo="name"))
        end = result.losses[m][:, -1, :3]
        traces.append(dict(type="scatter3d", x=_r(end[:, 0]), y=_r(end[:, 1]), z=_r(end[:, 2]), mode="markers",
                           name=f"{result.labels[m]} end", showlegend=False,
                           marker=dict(color=END_COLOUR, size=3)))
    L0 = result.losses[0][:, 0, :3]
    traces.append(dict(type="scatter3d", x=_r(L0[:, 0]), y=_r(L0[:, 1]), z=_r(L0[:, 2]), mode="markers",
                       name="start", marker=dict(color=START_COLOUR, size=4)))
    layout = dict(height=680, margin=dict(l=0, r=0, t=40, b=0), legend=_legend(), uirevision="loss3d",
                  title=dict(text="Loss space: (L₁, L₂, L₃)", x=0.01),
                  scene=dict(xaxis=dict(title=dict(text="L₁")), yaxis=dict(title=dict(text="L₂")),
                             zaxis=dict(title=dict(text="L₃"))))
    return _figure(traces, layout)


def build_loss_space(result, style: Style = Style(), *, playback: bool = True) -> go.Figure:
    """L1 against L2 (the first two tasks): the Pareto front and every run's path in loss space."""
    playback = playback and playback_ok(result)
    land = result.landscape
    w, sc = weights_of(result), scale_of(result)
    M, S = result.shape
    if result.losses is None:
        raise ValueError("the loss-space view needs recorded losses")
    idx = path_points(result, style.max_points)
    use_gl = M * S * len(idx) > GL_POINTS
    front = land.pareto_front(None, w, sc)
    traces = [dict(type="scatter", x=_r(front[:, 0]), y=_r(front[:, 1]), mode="lines", name="Pareto front",
                   line=dict(color=PARETO_COLOUR, width=style.pareto_width), hoverinfo="skip")]
    if style.show_optima:
        opt = land.losses_np(land.optima(w, sc), w, sc)
        traces.append(dict(type="scatter", x=_l(opt[:, 0]), y=_l(opt[:, 1]), mode="markers", name="optimum",
                           marker=dict(symbol="star", size=17, color=OPTIMUM_COLOUR, line=dict(color="black", width=1)),
                           hovertemplate="optimum L = (%{x:.3f}, %{y:.3f})<extra></extra>"))
    paths, ends, markers = _run_traces(result, style, list(range(M)), idx, use_gl, space="loss")
    traces += paths + ends
    L0 = result.losses[0][:, 0, :2]
    traces.append(dict(type="scatter", x=_l(L0[:, 0]), y=_l(L0[:, 1]), mode="markers", name="start",
                       marker=dict(color=START_COLOUR, size=style.marker_size + 1),
                       hovertemplate="start L = (%{x:.3f}, %{y:.3f})<extra></extra>"))
    first_marker = len(traces)
    traces += markers
    # a range that shows the front and the starts even when a run diverges far away
    alive = result.status != "diverged"
    pts = [front, L0]
    if alive.any():
        pts.append(result.losses[..., -1, :2][alive])
    allp = np.concatenate(pts)
    allp = allp[np.isfinite(allp).all(1)]
    lo, hi = allp.min(0), allp.max(0)
    pad = 0.06 * np.maximum(hi - lo, 1e-6)
    layout = dict(xaxis=dict(title=dict(text="L₁ (task 1)"), range=[lo[0] - pad[0], hi[0] + pad[0]],
                             gridcolor="#eee", zerolinecolor="#ccc"),
                  yaxis=dict(title=dict(text="L₂ (task 2)"), range=[lo[1] - pad[1], hi[1] + pad[1]],
                             gridcolor="#eee", zerolinecolor="#ccc"),
                  height=620, plot_bgcolor="white", hovermode="closest", uirevision="loss",
                  margin=dict(l=60, r=20, t=40, b=110 if playback else 40), legend=_legend(),
                  title=dict(text="Loss space: L₁ against L₂", x=0.01))
    frames = _with_playback(layout, result, idx, list(range(first_marker, first_marker + M)), list(range(M)),
                            space="loss") if playback else None
    return _figure(traces, layout, frames)


# -- diagnostics -----------------------------------------------------------------------------------
def build_diagnostics(result, row: int, start: int, style: Style = Style(), *,
                      mark_step: int | None = None) -> go.Figure:
    """Over the steps of one run: task losses, cos conflict, GMS, the curvature measure, task weights, SAM-GS branch."""
    aux = result.aux
    steps = np.asarray(result.record_steps)
    idx = style_mod.decimate(len(steps), 2000)
    x = steps[idx]
    panels = [("losses", "task losses")]
    for key, title in (("cos", "cos(g₁, g₂)"), ("gms", "GMS"), ("curv", "curvature measure"),
                       ("weights", "task weights")):
        if key in aux:
            panels.append((key, title))
    branch = aux.get("branch")
    if branch is not None and np.isfinite(branch[row, start]).any():
        panels.append(("branch", "SAM-GS: equalisation fired"))
    fig = make_subplots(rows=len(panels), cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        subplot_titles=[t for _, t in panels])
    task_colours = ["#0072B2", "#D55E00", "#009E73", "#CC79A7"]
    for i, (key, _) in enumerate(panels, start=1):
        if key == "losses":
            L = result.losses[row, start]
            for k in range(L.shape[-1]):
                fig.add_trace(dict(type="scatter", x=x, y=L[idx, k], name=f"L{k + 1}", mode="lines",
                                   line=dict(color=task_colours[k % 4])), row=i, col=1)
        elif key == "weights":
            W = aux["weights"][row, start]
            for k in range(W.shape[-1]):
                fig.add_trace(dict(type="scatter", x=x, y=W[idx, k], name=f"w{k + 1}", mode="lines",
                                   line=dict(color=task_colours[k % 4], dash="dot")), row=i, col=1)
        elif key == "branch":
            fig.add_trace(dict(type="scatter", x=x, y=branch[row, start][idx], name="equalise", mode="lines",
                               line=dict(color="#882255", shape="hv"), showlegend=False), row=i, col=1)
        else:
            y = np.asarray(aux[key][row, start], dtype=float)[idx]
            fig.add_trace(dict(type="scatter", x=x, y=y, name=key, mode="lines", line=dict(color="#444"),
                               showlegend=False), row=i, col=1)
            if key == "curv":
                fig.update_yaxes(type="log", row=i, col=1)
    if mark_step is not None:
        fig.add_vline(x=mark_step, line=dict(color="#D62728", width=1, dash="dash"))
    label = result.variants[row]["label"]
    s = result.starts[start]
    fig.update_layout(height=150 * len(panels) + 80, showlegend=True, plot_bgcolor="white", hovermode="x unified",
                      margin=dict(l=60, r=20, t=60, b=40),
                      title=dict(text=f"{label} from ({s[0]:g}, {s[1]:g}): diagnostics over steps", x=0.01))
    fig.update_xaxes(gridcolor="#eee")
    fig.update_yaxes(gridcolor="#eee")
    fig.update_xaxes(title="step", row=len(panels), col=1)
    return fig


def nearest_record(result, step: int) -> int:
    """Index of the recorded step nearest to ``step``."""
    return int(np.abs(np.asarray(result.record_steps) - step).argmin())


def build_arrows(result, row: int, start: int, t: int, style: Style = Style()) -> go.Figure:
    """One run's path on the map and, at record ``t``, arrows for −g₁, −g₂ and −d (downhill, one scale)."""
    land = result.landscape
    w, sc = weights_of(result), scale_of(result)
    pos = result.positions[row, start]
    p = pos[t].astype(float)
    G = result.aux["grad"][row, start, t].astype(float)       # [K, 2]
    d = result.aux["dir"][row, start, t].astype(float)         # [2]
    vecs = [(f"−g{k + 1}", -G[k], c) for k, c in zip(range(G.shape[0]), ["#0072B2", "#D55E00", "#009E73", "#CC79A7"])]
    vecs.append(("−d (applied)", -d, "#000000"))
    (x0, x1), (y0, y1) = land.bounds
    longest = max((np.linalg.norm(v) for _, v, _ in vecs if np.isfinite(v).all()), default=0.0)
    factor = 0.22 * (x1 - x0) / longest if longest > 0 else 0.0
    traces = _static_map_traces(land, style, w, sc, contour_n=90, with_colorbar=False)
    c, _ = style_mod.variant_style(result.variants)[row]
    idx = style_mod.decimate(len(pos), 600)
    traces.append(dict(type="scatter", x=_r(pos[idx, 0]), y=_r(pos[idx, 1]), mode="lines", hoverinfo="skip",
                       name=result.variants[row]["label"], line=dict(color=c, width=style.line_width)))
    traces.append(dict(type="scatter", x=[p[0]], y=[p[1]], mode="markers", name=f"step {int(result.record_steps[t])}",
                       marker=dict(color=c, size=12, line=dict(color="black", width=1))))
    fig = _figure(traces)
    for name, v, colour in vecs:
        if not np.isfinite(v).all() or factor == 0:
            continue
        tip = p + factor * v
        fig.add_annotation(x=tip[0], y=tip[1], ax=p[0], ay=p[1], xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=3, arrowsize=1.2, arrowwidth=2.5, arrowcolor=colour, text="")
        fig.add_annotation(x=tip[0], y=tip[1], text=f"{name} |{np.linalg.norm(v):.3g}|", showarrow=False,
                           font=dict(color=colour, size=12), xanchor="left", yanchor="bottom",
                           bgcolor="rgba(255,255,255,0.7)")
    fig.update_layout(height=560, margin=dict(l=50, r=20, t=50, b=40), plot_bgcolor="white", showlegend=False,
                      **_equal_axes(land),
                      title=dict(text=f"{result.variants[row]['label']}: gradients at step "
                                      f"{int(result.record_steps[t])}", x=0.01))
    return fig


def image_config(filename: str, fmt: str = "png") -> dict:
    """Plotly's toolbar: the camera button downloads the figure as PNG or SVG (client-side, no kaleido)."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": fmt, "filename": filename, "scale": 2},
            "modeBarButtonsToRemove": ["lasso2d", "select2d"]}
