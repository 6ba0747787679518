"""Plotly figures for the Explore page: the map (contour + trajectories), one panel per method, the loss space,
diagnostics over steps, and gradient arrows at one step.

The map and the loss space are *live figures* (``live_map``, ``live_loss_space`` -> ``figures.live.LiveFigure``):
a Plotly figure whose large arrays are content-addressed float32 pieces, so the browser receives each path,
contour and Pareto set once and keeps it while other things change; ``build_map`` & co. resolve them into plain
Plotly figures. Playback is described, not pre-computed: the browser moves one marker per run along the drawn
path points (figures/live.py), so there are no animation frames to send and the contour is never redrawn.

Pure builders: nothing here imports streamlit or runs the engine. Trajectories are decimated for drawing only
(``Style.max_points`` per path, fewer when there are many paths: ``POINT_BUDGET`` in all); the Result is never
changed. Above ``GL_POINTS`` drawn points the paths become WebGL (``scattergl``) traces (a browser whose WebGL is
emulated on the CPU draws those lines as SVG: static/gradscape/webgl.js). Past ``DENSE_STARTS``
starts, paths are thin and translucent, markers small, and playback markers plain dots. End markers closer than
a cell of a 1000 x 1000 grid over the box (less than a pixel) are drawn once (``data.distinct_points``).

Marks (figures/style.py): start = black dot, end = red dot, optimum = star, Pareto set = thick line. The contour
grid and the Pareto pieces come from figures/data.py, as for the paper figures.
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import data
from . import style as style_mod
from .live import LiveFigure, resolve
from .style import END_COLOUR, OPTIMUM_COLOUR, PARETO_COLOUR, START_COLOUR, Style

GL_POINTS = 40_000        # drawn path points above which paths use WebGL
POINT_BUDGET = 80_000     # total drawn path points per figure (decimation for drawing only)
PLAYBACK_RUNS = 20_000    # playback markers are drawn on a canvas: every run of the page can move
# marker traces with more points than this are WebGL too. Up to a few thousand, SVG markers reach the screen sooner
# than the WebGL bundle and canvas where WebGL is emulated on the CPU (a 50 x 50 grid's 2 500 starts, its ends
# drawn once per cell: 8.6-8.8 s against 10.0-10.4 s to the screen at 2 000, side by side; ARCHITECTURE.md)
MARKER_GL = 5_000
DENSE_STARTS = 36         # more starts than this: thin translucent paths, small markers, no rings
CONTOUR_SCALE = style_mod.SCREEN_CONTOUR


def preview_contour(land, n: int = 60) -> go.Figure:
    """A small contour of the summed loss with the landscape's preset starts (the landscape studio's preview;
    no Pareto set, which is computed only when the landscape is applied)."""
    xs, ys, Z = data.contour_grid(land, "sum", n=n)
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


# -- shared helpers ---------------------------------------------------------------------------------
def weights_of(result) -> tuple | None:
    """The task weights of the first variant (the page does not sweep weights)."""
    w = result.variants[0].get("task_weights") if result.variants else None
    return tuple(w) if w else None


def scale_of(result) -> float:
    return float(result.config.get("scale", 1.0) or 1.0)


def dense(n_starts: int) -> bool:
    """Past a few dozen starts paths are thin and translucent, markers small, playback markers plain dots."""
    return n_starts > DENSE_STARTS


def path_points(result, max_points: int):
    """Decimated record indices shared by every path (drawing only; the Result keeps every record)."""
    M, S = result.shape
    T = len(result.record_steps)
    cap = max(8, min(max_points, POINT_BUDGET // max(1, M * S)))
    return style_mod.decimate(T, cap)


def _polyline(arr: np.ndarray, idx: np.ndarray):
    """arr[S, T, 2] -> x, y with a NaN after each of the S paths (one trace draws them all)."""
    S = arr.shape[0]
    pts = arr[:, idx, :].astype(np.float32)
    flat = np.concatenate([pts, np.full((S, 1, 2), np.nan, np.float32)], 1).reshape(-1, 2)
    return flat[:, 0], flat[:, 1]


def _uid(kind: str, label: str, axis: str) -> str:
    """A trace id that stays the same across page runs (legend isolation is carried over by it) and is safe in
    a CSS selector (Plotly uses it in class names)."""
    return f"{kind}-{hashlib.blake2b(label.encode(), digest_size=6).hexdigest()}-{axis}"


def _r(a) -> np.ndarray:
    """An array for drawing: float32 (the Result keeps its precision)."""
    return np.asarray(a, dtype=np.float32)


def _l(a) -> list:
    """A small array as a plain list."""
    return [None if not math.isfinite(v) else round(v, 5) for v in np.asarray(a, dtype=float).ravel().tolist()]


def _figure(data, layout=None) -> go.Figure:
    """A Figure from plain trace dicts without Plotly's per-property validation (4x faster here)."""
    return go.Figure(data=data, layout=layout, _validate=False)


LEGEND_PX = 150          # the right margin's share for the legend (figure pixels)
COLORBAR_PX = 80         # ... and for the colour bar, between the plot and the legend


def _legend() -> dict:
    """A vertical legend at the figure's right edge, in a margin of its own (``_margin``): it never meets the
    colour bar, which sits between it and the plot."""
    return dict(orientation="v", xref="container", x=1.0, xanchor="right", yanchor="top", y=1.0,
                bgcolor="rgba(255,255,255,0.85)", itemclick="toggle", itemdoubleclick="toggleothers")


def _margin(top: int, *, colorbar: bool, left: int = 50, bottom: int = 40) -> dict:
    return dict(l=left, r=LEGEND_PX + (COLORBAR_PX if colorbar else 0), t=top, b=bottom)


def _equal_axes(land, suffix: str = "") -> dict:
    """Layout entries for a map's axes: the landscape's box, equal scales."""
    (x0, x1), (y0, y1) = land.bounds
    return {f"xaxis{suffix}": dict(range=[x0, x1], title=dict(text="θ₁"), constrain="domain", showgrid=False,
                                   zeroline=False),
            f"yaxis{suffix}": dict(range=[y0, y1], title=dict(text="θ₂"), scaleanchor=f"x{suffix}", scaleratio=1,
                                   constrain="domain", showgrid=False, zeroline=False)}


def image_config(filename: str, fmt: str = "png") -> dict:
    """Plotly's toolbar: the camera button downloads the figure as PNG or SVG (client-side, no kaleido)."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": fmt, "filename": filename, "scale": 2},
            "modeBarButtonsToRemove": ["lasso2d", "select2d"],
            "showSendToCloud": False}      # Plotly.js 4's "Share chart..." posts the figure to a cloud service


# -- the landscape layer --------------------------------------------------------------------------
def _contour_trace(live: LiveFigure, land, style: Style, weights, scale, *, xaxis="x", yaxis="y", n=data.CONTOUR_N,
                   zmin=None, zmax=None, colorbar=True) -> dict:
    xs, ys, Z = data.contour_grid(land, style.contour, weights, scale, n)
    name = data.loss_name(style.contour)
    return dict(type="contour", x=live.ref(xs), y=live.ref(ys), z=live.grid(Z), colorscale=CONTOUR_SCALE,
                ncontours=25, name=name, contours=dict(coloring="fill", showlines=True),
                line=dict(width=0.5, color="rgba(80,80,80,0.35)"), showscale=colorbar, zmin=zmin, zmax=zmax,
                colorbar=dict(title=dict(text=name, side="right"), thickness=12, len=0.9, x=1.01, xanchor="left"),
                hovertemplate=f"(%{{x:.2f}}, %{{y:.2f}})<br>{name} %{{z:.4g}}<extra></extra>",
                uid=f"contour{xaxis}", xaxis=xaxis, yaxis=yaxis, showlegend=False)


def _pareto_trace(live: LiveFigure, land, style: Style, *, xaxis="x", yaxis="y", legend=True) -> dict:
    """The Pareto set: a thick line through its pieces, or a light cloud where it is not a curve."""
    pts = land.pareto_set()
    pieces = data.pareto_pieces(pts, land.bounds) if land.n_tasks == 2 else []
    common = dict(name="Pareto set", legendgroup="pareto", showlegend=legend, hoverinfo="skip", xaxis=xaxis,
                  yaxis=yaxis, uid=f"pareto{xaxis}")
    if pieces and data.pareto_is_curve(pieces):
        px, py = data.pareto_polyline(pts, land.bounds)
        return dict(type="scatter", x=live.ref(px), y=live.ref(py), mode="lines",
                    line=dict(color=PARETO_COLOUR, width=style.pareto_width), **common)
    if len(pts) > 1500:
        pts = pts[style_mod.decimate(len(pts), 1500)]
    return dict(type="scatter", x=live.ref(pts[:, 0]), y=live.ref(pts[:, 1]), mode="markers",
                marker=dict(color=PARETO_COLOUR, size=3, opacity=0.35), **common)


def _optimum_trace(points, *, xaxis="x", yaxis="y", legend=True, space="θ") -> dict:
    return dict(type="scatter", x=_l(points[:, 0]), y=_l(points[:, 1]), mode="markers", name="optimum",
                legendgroup="optimum", showlegend=legend, xaxis=xaxis, yaxis=yaxis, uid=f"optimum{xaxis}",
                marker=dict(symbol="star", size=17, color=OPTIMUM_COLOUR, line=dict(color="black", width=1)),
                hovertemplate=f"optimum {space} = (%{{x:.3f}}, %{{y:.3f}})<extra></extra>")


def _landscape_traces(live, land, style, weights, scale, **kw) -> list[dict]:
    legend = kw.pop("legend", True)
    traces = [_contour_trace(live, land, style, weights, scale, **kw)]
    axes = dict(xaxis=kw.get("xaxis", "x"), yaxis=kw.get("yaxis", "y"))
    if style.show_pareto:
        traces.append(_pareto_trace(live, land, style, legend=legend, **axes))
    if style.show_optima:
        traces.append(_optimum_trace(land.optima(weights, scale), legend=legend, **axes))
    return traces


# -- runs -----------------------------------------------------------------------------------------
def _looks(S: int, style: Style) -> dict:
    """Line width, opacity and marker size for S starts (dense sets stay readable)."""
    if dense(S):
        return dict(width=min(style.line_width, 0.9), opacity=0.4, marker=3.0)
    return dict(width=style.line_width, opacity=1.0, marker=style.marker_size)


def _run_traces(live: LiveFigure, result, style: Style, m: int, idx, steps_ref, *, use_gl: bool, space="theta",
                xaxis="x", yaxis="y", legend=True) -> list[dict]:
    """Row m's paths (one trace, NaN-separated) and end markers, in θ or in loss space."""
    c, dash = style_mod.variant_style(result.variants)[m]
    label = result.variants[m]["label"]
    S = result.shape[1]
    look = _looks(S, style)
    arr = result.positions[m] if space == "theta" else result.losses[m][..., :2]
    x, y = _polyline(arr, idx)
    what = "" if space == "theta" else "L = "
    path = dict(type="scattergl" if use_gl else "scatter", x=live.ref(x), y=live.ref(y), mode="lines", name=label,
                legendgroup=f"m:{label}", showlegend=legend, uid=_uid("path", label, xaxis), opacity=look["opacity"],
                line=dict(color=c, width=look["width"], dash=dash), customdata=steps_ref,
                hovertemplate=f"{label}<br>step %{{customdata:.0f}}<br>{what}(%{{x:.3f}}, %{{y:.3f}})<extra></extra>",
                xaxis=xaxis, yaxis=yaxis)
    fin = result.final[m] if space == "theta" else result.final_losses[m][:, :2]
    fin = fin[data.distinct_points(fin, result.landscape.bounds if space == "theta" else _span(fin))]
    end = dict(type="scattergl" if len(fin) > MARKER_GL else "scatter", x=live.ref(fin[:, 0]), y=live.ref(fin[:, 1]),
               mode="markers", name=f"{label} end", legendgroup=f"m:{label}", showlegend=False,
               uid=_uid("end", label, xaxis), xaxis=xaxis, yaxis=yaxis,
               marker=dict(color=END_COLOUR, size=look["marker"], line=dict(color="white", width=0.5)),
               hovertemplate=f"{label} end<br>{what}(%{{x:.3f}}, %{{y:.3f}})<extra></extra>")
    return [path, end]


def _span(points) -> tuple:
    """The box of the finite points (loss space has no fixed box; a cell of it is finer than one of the axes)."""
    p = np.asarray(points, dtype=float)
    p = p[np.isfinite(p).all(1)]
    if not len(p):
        return (0.0, 1.0), (0.0, 1.0)
    lo, hi = p.min(0), p.max(0)
    hi = np.where(hi > lo, hi, lo + 1.0)
    return (lo[0], hi[0]), (lo[1], hi[1])


def _starts_trace(live: LiveFigure, points, S: int, style: Style, *, xaxis="x", yaxis="y", legend=True,
                  space="theta") -> dict:
    look = _looks(S, style)
    tip = "start (%{x:.3f}, %{y:.3f})" + ("<br>click: remove" if space == "theta" else "")
    return dict(type="scattergl" if len(points) > MARKER_GL else "scatter", x=live.ref(points[:, 0]),
                y=live.ref(points[:, 1]), mode="markers", name="start", legendgroup="start", showlegend=legend,
                uid=f"start{xaxis}", xaxis=xaxis, yaxis=yaxis, marker=dict(color=START_COLOUR, size=look["marker"] + 1),
                hovertemplate=tip + "<extra></extra>")


def _end_legend(style: Style) -> dict:
    """A legend entry for the end marker (each method's ends are grouped with its path)."""
    return dict(type="scatter", x=[None], y=[None], mode="markers", name="end", uid="end-legend",
                marker=dict(color=END_COLOUR, size=style.marker_size, line=dict(color="white", width=0.5)),
                hoverinfo="skip")


def playback_ok(result) -> bool:
    M, S = result.shape
    return M * S <= PLAYBACK_RUNS


def _playback(live: LiveFigure, result, idx, path_traces: list[int], colours: list[str]) -> dict:
    """What the browser animates: the path traces' points t of every run (P points per run, then a NaN)."""
    S = result.shape[1]
    return dict(steps=live.ref(np.asarray(result.record_steps)[idx]), P=int(len(idx)), S=int(S),
                rows=[dict(trace=t, color=c) for t, c in zip(path_traces, colours)],
                ring=not dense(S), size=3.0 if dense(S) else 9.0)


def _steps_ref(live, result, idx):
    S = result.shape[1]
    steps = np.asarray(result.record_steps)[idx].astype(np.float32)
    return live.ref(np.tile(np.concatenate([steps, [np.nan]]), S))


# -- under the runs: published paths (ghosts) and direction fields ------------------------------------
GHOST_COLOUR = "rgba(40,40,40,0.42)"
FIELD_HEAD = 0.32          # arrowhead length as a share of the arrow
FIELD_HEAD_ANGLE = 0.45    # radians either side of the shaft


def _ghost_trace(live: LiveFigure, paths: list, *, xaxis="x", yaxis="y", legend=True) -> dict:
    """Published paths [T_i, 2] (figures/published.py) as one wide, grey, dashed trace: a run that reproduces its
    published path is drawn inside a grey dashed band."""
    sep = np.full((1, 2), np.nan, np.float32)
    pts = np.concatenate([a for p in paths for a in (np.asarray(p, np.float32), sep)])
    return dict(type="scatter", x=live.ref(pts[:, 0]), y=live.ref(pts[:, 1]), mode="lines", name="published path",
                legendgroup="published", showlegend=legend, uid=f"published{xaxis}", xaxis=xaxis, yaxis=yaxis,
                line=dict(color=GHOST_COLOUR, width=5, dash="dash"),
                hovertemplate="published path<br>(%{x:.3f}, %{y:.3f})<extra></extra>")


def field_arrows(points, d, length: float):
    """Arrows of a direction field: from each point, ``length`` along −d (where a step along d goes: the outer
    optimiser descends). A zero or non-finite d gives no arrow. Returns (x, y, u, v)."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    d = np.asarray(d, dtype=float).reshape(-1, 2)
    n = np.linalg.norm(d, axis=1)
    ok = np.isfinite(n) & (n > 0)
    uv = np.where(ok[:, None], -d / np.where(ok, n, 1.0)[:, None] * length, np.nan)
    return p[:, 0], p[:, 1], uv[:, 0], uv[:, 1]


def _field_trace(live: LiveFigure, arrows, colour: str, label: str, *, xaxis="x", yaxis="y") -> dict:
    """Arrows (x, y, u, v) as one line trace: a shaft and two head strokes each, NaN-separated."""
    x, y, u, v = (np.asarray(a, dtype=float) for a in arrows)
    tip = np.stack([x + u, y + v], 1)
    back = -np.stack([u, v], 1) * FIELD_HEAD
    c, s = np.cos(FIELD_HEAD_ANGLE), np.sin(FIELD_HEAD_ANGLE)
    h1 = tip + np.stack([c * back[:, 0] - s * back[:, 1], s * back[:, 0] + c * back[:, 1]], 1)
    h2 = tip + np.stack([c * back[:, 0] + s * back[:, 1], -s * back[:, 0] + c * back[:, 1]], 1)
    nan = np.full_like(tip, np.nan)
    seg = np.stack([np.stack([x, y], 1), tip, h1, nan, tip, h2, nan], 1)
    seg = seg[np.isfinite(u) & np.isfinite(v)].reshape(-1, 2)
    return dict(type="scatter", x=live.ref(seg[:, 0]), y=live.ref(seg[:, 1]), mode="lines",
                name=f"{label} first-step direction", legendgroup=f"m:{label}", showlegend=False,
                uid=_uid("field", label, xaxis), xaxis=xaxis, yaxis=yaxis, hoverinfo="skip", opacity=0.8,
                line=dict(color=colour, width=1.3))


def _first_ghost_row(ghosts) -> int | None:
    """The first row with published paths (its panel carries the legend entry)."""
    return next((m for m, g in enumerate(ghosts or []) if g), None)


def _under_runs(live: LiveFigure, result, rows, ghosts, field, *, legend=True, xaxis="x", yaxis="y") -> list[dict]:
    """The published paths and direction-field arrows of ``rows``, drawn before (under) their runs."""
    out = []
    if ghosts is not None:
        paths = [p for m in rows for p in ghosts[m]]
        if paths:
            out.append(_ghost_trace(live, paths, xaxis=xaxis, yaxis=yaxis, legend=legend))
    if field is not None:
        styles = style_mod.variant_style(result.variants)
        for m in rows:
            if field[m] is not None:
                out.append(_field_trace(live, field[m], styles[m][0], result.variants[m]["label"], xaxis=xaxis,
                                        yaxis=yaxis))
    return out


# -- the map --------------------------------------------------------------------------------------
def live_map(result, style: Style = Style(), *, layout: str = "overlay", playback: bool = True,
             height: int | None = None, image: dict | None = None, title: bool = True, ghosts=None,
             field=None) -> LiveFigure:
    """The map for the browser: ``layout="overlay"`` (every method over one contour) or ``"multiples"`` (one
    panel per method variant, shared axes: the SAM-GS paper's figures 2 and 4). Clicks on the map add or remove
    starts (the page handles them); playback moves a marker per run along its path in the browser.

    ``ghosts``: per row, the published paths to draw under its runs (``figures.published.ghosts``): grey, dashed,
    one legend entry. ``field``: per row, a direction field ``(x, y, u, v)`` of arrows from (x, y) to
    (x + u, y + v) (:func:`field_arrows`), drawn under the runs in the row's colour and grouped with it in the
    legend (hiding a method hides its arrows)."""
    if layout not in ("overlay", "multiples"):
        raise ValueError(f"layout: {layout!r} is not overlay or multiples")
    playback = playback and playback_ok(result)
    land = result.landscape
    w, sc = weights_of(result), scale_of(result)
    M, S = result.shape
    idx = path_points(result, style.max_points)
    use_gl = M * S * len(idx) > GL_POINTS
    live = LiveFigure(figure={}, config=image or image_config(f"gradscape-{land.key}-{layout}"),
                      meta=dict(clickable=True))
    steps_ref = _steps_ref(live, result, idx)
    colours = [c for c, _ in style_mod.variant_style(result.variants)]
    traces, paths = [], []
    if layout == "overlay":
        traces += _landscape_traces(live, land, style, w, sc)
        traces += _under_runs(live, result, range(M), ghosts, field)
        ends = []
        for m in range(M):
            paths.append(len(traces))
            path, end = _run_traces(live, result, style, m, idx, steps_ref, use_gl=use_gl)
            traces.append(path)
            ends.append(end)
        traces += ends              # every method's ends over every method's paths (a dense grid buried them)
        traces.append(_starts_trace(live, result.starts, S, style))
        traces.append(_end_legend(style))
        lay = dict(height=height or 660, margin=_margin(40 if title else 12, colorbar=True),
                   title=dict(text=f"{land.title}: {data.loss_name(style.contour)}" if title else "", x=0.01),
                   **_equal_axes(land))
    else:
        cols = min(4, M)
        nrows = math.ceil(M / cols)
        grid = make_subplots(rows=nrows, cols=cols, shared_xaxes="all", shared_yaxes="all",
                             subplot_titles=[v["label"] for v in result.variants], horizontal_spacing=0.02,
                             vertical_spacing=0.08 / max(1, nrows - 1) if nrows > 1 else 0.0)
        lay = grid.layout.to_plotly_json()
        _, _, Z = data.contour_grid(land, style.contour, w, sc, 80)
        zmin, zmax = float(np.nanmin(Z)), float(np.nanmax(Z))
        for m in range(M):
            n = "" if m == 0 else str(m + 1)
            ax = dict(xaxis=f"x{n}", yaxis=f"y{n}")
            traces += _landscape_traces(live, land, style, w, sc, n=80, zmin=zmin, zmax=zmax, colorbar=m == 0,
                                        legend=m == 0, **ax)
            traces += _under_runs(live, result, [m], ghosts, field, legend=m == _first_ghost_row(ghosts), **ax)
            paths.append(len(traces))
            traces += _run_traces(live, result, style, m, idx, steps_ref, use_gl=use_gl, legend=True, **ax)
            traces.append(_starts_trace(live, result.starts, S, style, legend=m == 0, **ax))
        traces.append(_end_legend(style))
        (x0, x1), (y0, y1) = land.bounds
        for key in list(lay):
            if key.startswith("xaxis"):
                lay[key].update(range=[x0, x1], showgrid=False, zeroline=False)
            elif key.startswith("yaxis"):
                lay[key].update(range=[y0, y1], showgrid=False, zeroline=False)
        lay.update(height=height or 300 * nrows + 90, margin=_margin(60, colorbar=True, left=40),
                   title=dict(text=f"{land.title}: one panel per method" if title else "", x=0.01))
    lay.update(legend=_legend(), hovermode="closest", hoverdistance=12, plot_bgcolor="white",
               uirevision=f"map-{layout}")
    live.figure = dict(data=traces, layout=lay)
    live.playback = _playback(live, result, idx, paths, colours) if playback else None
    if layout == "overlay":       # the browser sizes the figure to its square plot area (and colour bar)
        (x0, x1), (y0, y1) = land.bounds
        live.meta.update(aspect=(x1 - x0) / (y1 - y0))
    return live


def live_loss_space(result, style: Style = Style(), *, playback: bool = True, height: int | None = None,
                    image: dict | None = None, title: bool = True) -> LiveFigure:
    """L1 against L2 (the first two tasks): the Pareto front and every run's path in loss space."""
    if result.losses is None:
        raise ValueError("the loss-space view needs recorded losses")
    playback = playback and playback_ok(result)
    land = result.landscape
    w, sc = weights_of(result), scale_of(result)
    M, S = result.shape
    idx = path_points(result, style.max_points)
    use_gl = M * S * len(idx) > GL_POINTS
    live = LiveFigure(figure={}, config=image or image_config(f"gradscape-{land.key}-loss-space"),
                      meta=dict(clickable=False))
    steps_ref = _steps_ref(live, result, idx)
    front = land.pareto_front(None, w, sc)
    traces = [dict(type="scatter", x=live.ref(front[:, 0]), y=live.ref(front[:, 1]), mode="lines",
                   name="Pareto front", uid="front", line=dict(color=PARETO_COLOUR, width=style.pareto_width),
                   hoverinfo="skip")]
    if style.show_optima:
        traces.append(_optimum_trace(land.losses_np(land.optima(w, sc), w, sc), space="L"))
    paths, ends = [], []
    for m in range(M):
        paths.append(len(traces))
        path, end = _run_traces(live, result, style, m, idx, steps_ref, use_gl=use_gl, space="loss")
        traces.append(path)
        ends.append(end)
    traces += ends                  # every method's ends over every method's paths
    L0 = result.losses[0][:, 0, :2]
    traces.append(_starts_trace(live, L0, S, style, space="loss"))
    traces.append(_end_legend(style))
    # a range that shows the front and the starts even when a run diverges far away
    alive = result.diverged_step < 0
    pts = [front[:, :2], L0]
    if alive.any():
        pts.append(result.losses[..., -1, :2][alive])
    allp = np.concatenate(pts)
    allp = allp[np.isfinite(allp).all(1)]
    lo, hi = allp.min(0), allp.max(0)
    pad = 0.06 * np.maximum(hi - lo, 1e-6)
    lay = dict(xaxis=dict(title=dict(text="L₁ (task 1)"), range=[lo[0] - pad[0], hi[0] + pad[0]], gridcolor="#eee",
                          zerolinecolor="#ccc"),
               yaxis=dict(title=dict(text="L₂ (task 2)"), range=[lo[1] - pad[1], hi[1] + pad[1]], gridcolor="#eee",
                          zerolinecolor="#ccc"),
               height=height or 620, plot_bgcolor="white", hovermode="closest", uirevision="loss",
               margin=_margin(40 if title else 12, colorbar=False, left=60), legend=_legend(),
               title=dict(text="Loss space: L₁ against L₂" if title else "", x=0.01))
    live.figure = dict(data=traces, layout=lay)
    colours = [c for c, _ in style_mod.variant_style(result.variants)]
    live.playback = _playback(live, result, idx, paths, colours) if playback else None
    return live


def build_map(result, style: Style = Style(), **kw) -> go.Figure:
    """The overlay map as a plain Plotly figure (``live_map`` resolved)."""
    return resolve(live_map(result, style, layout="overlay", **kw))


def build_small_multiples(result, style: Style = Style(), **kw) -> go.Figure:
    return resolve(live_map(result, style, layout="multiples", **kw))


def build_loss_space(result, style: Style = Style(), **kw) -> go.Figure:
    return resolve(live_loss_space(result, style, **kw))


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


def build_arrows(result, row: int, start: int, t: int, style: Style = Style(), *, height: int = 560) -> go.Figure:
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
    live = LiveFigure(figure={})
    traces = _landscape_traces(live, land, style, w, sc, n=90, colorbar=False)
    c, _ = style_mod.variant_style(result.variants)[row]
    idx = style_mod.decimate(len(pos), 600)
    traces.append(dict(type="scatter", x=_r(pos[idx, 0]), y=_r(pos[idx, 1]), mode="lines", hoverinfo="skip",
                       name=result.variants[row]["label"], line=dict(color=c, width=style.line_width)))
    traces.append(dict(type="scatter", x=[p[0]], y=[p[1]], mode="markers", name=f"step {int(result.record_steps[t])}",
                       marker=dict(color=c, size=12, line=dict(color="black", width=1))))
    fig = resolve(LiveFigure(figure=dict(data=traces), pieces=live.pieces))
    drawn = [(name, v, colour) for name, v, colour in vecs if np.isfinite(v).all() and factor != 0]
    px = (height - 90) / (y1 - y0)        # pixels per unit: equal axes, the plot's height binds
    texts = [f"{name} |{np.linalg.norm(v):.3g}|" for name, v, _ in drawn]
    tips = np.array([p + factor * v for _, v, _ in drawn]).reshape(-1, 2)
    # labels beyond each arrow's tip, on its side, pushed apart where they would overlap (figures/data.py)
    corners = data.place_labels(tips * px, [v for _, v, _ in drawn], [(7.2 * len(t) + 6, 18) for t in texts]) / px
    for (name, v, colour), tip, corner, text in zip(drawn, tips, corners, texts):
        fig.add_annotation(x=tip[0], y=tip[1], ax=p[0], ay=p[1], xref="x", yref="y", axref="x", ayref="y",
                           showarrow=True, arrowhead=3, arrowsize=1.2, arrowwidth=2.5, arrowcolor=colour, text="")
        fig.add_annotation(x=corner[0], y=corner[1], text=text, showarrow=False, font=dict(color=colour, size=12),
                           xanchor="left", yanchor="bottom", bgcolor="rgba(255,255,255,0.8)")
    fig.update_layout(height=height, margin=dict(l=50, r=20, t=50, b=40), plot_bgcolor="white", showlegend=False,
                      **_equal_axes(land),
                      title=dict(text=f"{result.variants[row]['label']}: gradients at step "
                                      f"{int(result.record_steps[t])}", x=0.01))
    return fig
