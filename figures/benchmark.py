"""Plotly figures of benchmark jobs: basin maps, the success chart, sweep heatmaps and lines, job comparison.

Inputs are a :class:`jobs.results.JobResult` (basin maps) or its success table
(``jobs.benchmarks.success_table``), so the same figures serve the page and scripts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from jobs.benchmarks import reached_mask

from . import data, vocabulary
from .style import OPTIMUM_COLOUR, OUTCOME_COLOURS, PARETO_COLOUR, colour

VALUE_LABELS = {k: vocabulary.header(k) for k in ("reached_share", "pareto_share", "median_steps", "p90_steps",
                                                  "median_steps_pareto", "final_distance", "wall_s")}
SHARE_VALUES = ("reached_share", "pareto_share")


def basin_maps(result, *, seed=None, variants=None, cols: int | None = None, panel_px: int = 300,
               show_pareto: bool = True) -> go.Figure:
    """One panel per variant of a job: every start coloured by its outcome (figures/vocabulary.py), the Pareto
    set and the global optima drawn. ``seed``: which seed's runs
    (default: the job's first); ``variants``: ids to show (default: all)."""
    runs = result.runs
    var = result.variants.set_index("variant")
    optima = result.landscape.optima(None if not result.config.task_weights else result.config.task_weights[0],
                                     result.config.scale)
    seed = result.config.seeds[0] if seed is None else seed
    ids = list(var.index) if variants is None else [v for v in variants if v in var.index]
    sel = runs[runs["seed"] == seed]
    by_variant = {v: g.sort_values("start") for v, g in sel.groupby("variant")}
    panels = []
    for v in ids:
        g = by_variant.get(v)
        if g is None or not len(g):
            panels.append(OutcomePanel(var.loc[v, "label"], np.empty(0), np.empty(0), np.empty(0, str),
                                       np.empty(0, int), 0.0))
            continue
        panels.append(OutcomePanel(var.loc[v, "label"], g["start_x"].to_numpy(), g["start_y"].to_numpy(),
                                   g["outcome"].to_numpy().astype(str), g["optimum_step"].to_numpy(),
                                   float(reached_mask(g).mean()), g["status"].to_numpy().astype(str),
                                   g["status_step"].to_numpy() if "status_step" in g else None))
    title = f"Basin maps · {getattr(result.landscape, 'title', result.landscape.key)} · seed {seed}"
    return outcome_maps(panels, result.landscape, optima, title=title, cols=cols, panel_px=panel_px,
                        show_pareto=show_pareto)


@dataclass
class OutcomePanel:
    """One method variant's runs for an outcome map: start points, outcomes, the step each reached its optimum."""
    label: str
    x: np.ndarray
    y: np.ndarray
    outcome: np.ndarray
    optimum_step: np.ndarray
    reached: float              # share of runs that reached a global optimum
    status: np.ndarray | None = None          # how each run ended (trajectories/metrics.py codes)
    status_step: np.ndarray | None = None     # the step it ended so (turned NaN, blew up, settled)


def result_panels(result) -> list[OutcomePanel]:
    """The panels of an engine Result (the Explore page's runs)."""
    x, y = result.starts[:, 0], result.starts[:, 1]
    return [OutcomePanel(result.labels[m], x, y, result.outcome[m].astype(str), result.optimum_step[m],
                         float((result.optimum_index[m] >= 0).mean()), result.status[m].astype(str),
                         result.status_step[m]) for m in range(result.shape[0])]


def outcome_maps(panels: list[OutcomePanel], land, optima, *, title: str, cols: int | None = None,
                 panel_px: int = 300, show_pareto: bool = True) -> go.Figure:
    """Outcome (basin) maps: one panel per variant, each start coloured by where its run ended — a cell per
    start when the starts fill a regular grid, a square marker otherwise. The Benchmark page (a job's runs) and
    the Explore page (a Result) both draw with this."""
    n = max(1, len(panels))
    cols = cols or min(n, 4)
    rows = math.ceil(n / cols)
    titles = []
    for p in panels:
        if not len(p.outcome):
            titles.append(f"{p.label}<br><sup>no runs</sup>")
            continue
        pareto = ((p.outcome == "pareto") | np.char.startswith(p.outcome, "optimum")).mean()
        titles.append(f"{p.label}<br><sup>reached the optimum {p.reached:.0%} · the Pareto set {pareto:.0%}</sup>")
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles or ["(no runs)"],
                        horizontal_spacing=0.04, vertical_spacing=min(0.12, 0.35 / rows))
    codes = {name: i for i, name in enumerate(data.OUTCOME_ORDER)}
    C = len(data.OUTCOME_ORDER)
    scale = []
    for i, name in enumerate(data.OUTCOME_ORDER):
        scale += [[i / C, OUTCOME_COLOURS[name]], [(i + 1) / C, OUTCOME_COLOURS[name]]]
    seen = set()
    marked = False
    (x0, x1), (y0, y1) = land.bounds
    pareto_xy = data.pareto_polyline(land.pareto_set(), land.bounds) if show_pareto and land.n_tasks == 2 else None
    for k, p in enumerate(panels):
        r, c = k // cols + 1, k % cols + 1
        if len(p.outcome):
            seen |= set(p.outcome.tolist())
            status = p.status if p.status is not None else np.full(len(p.outcome), "")
            ends = p.status_step if p.status_step is not None else np.full(len(p.outcome), -1)
            text = [vocabulary.run_words(o, s, optimum_step=k, status_step=e, n_optima=len(optima))
                    for o, s, k, e in zip(p.outcome, status, p.optimum_step, ends)]
            grid = data.regular_grid(p.x, p.y)
            if grid is not None:
                xs, ys, ix, iy = grid
                z = np.full((len(ys), len(xs)), np.nan)
                z[iy, ix] = [codes.get(o, codes["moving"]) for o in p.outcome]
                tz = np.full((len(ys), len(xs)), "", dtype=object)
                tz[iy, ix] = text
                fig.add_trace(go.Heatmap(x=xs, y=ys, z=z, text=tz, zmin=-0.5, zmax=C - 0.5, colorscale=scale,
                                         showscale=False, hovertemplate="start (%{x:.2f}, %{y:.2f})<br>%{text}"
                                                                        "<extra></extra>"), row=r, col=c)
            else:
                size = max(3.0, min(10.0, panel_px / math.sqrt(len(p.x)) * 0.6))
                colours = [OUTCOME_COLOURS.get(o, "#999") for o in p.outcome]
                tip = "start (%{x:.2f}, %{y:.2f})<br>%{text}<extra></extra>"
                fig.add_trace(go.Scattergl(x=p.x, y=p.y, mode="markers", text=text, showlegend=False,
                                           marker=dict(size=size, symbol="square", color=colours), hovertemplate=tip)
                              if len(p.x) > 5000 else
                              go.Scatter(x=p.x, y=p.y, mode="markers", text=text, showlegend=False,
                                         marker=dict(size=size + 4, symbol="square", color=colours,
                                                     line=dict(width=0.5, color="#333")), hovertemplate=tip),
                              row=r, col=c)
            after = vocabulary.died_after_reaching(p.outcome, status)
            if after.any():     # reached the optimum (or the set), then turned NaN or blew up: marked
                marked = True
                fig.add_trace(go.Scatter(x=p.x[after], y=p.y[after], mode="markers", showlegend=False,
                                         marker=dict(symbol="x-thin", size=max(4, min(9, panel_px / 40)),
                                                     line=dict(width=1.2, color="#000000")), hoverinfo="skip"),
                              row=r, col=c)
        if pareto_xy is not None:
            fig.add_trace(go.Scatter(x=pareto_xy[0], y=pareto_xy[1], mode="lines", name="Pareto set",
                                     line=dict(color=PARETO_COLOUR, width=3), legendgroup="pareto-set",
                                     showlegend=k == 0, hoverinfo="skip"), row=r, col=c)
        fig.add_trace(go.Scatter(x=optima[:, 0], y=optima[:, 1], mode="markers", name="global optimum",
                                 marker=dict(symbol="star", size=14, color=OPTIMUM_COLOUR,
                                             line=dict(width=1, color="#000")),
                                 legendgroup="optima", showlegend=k == 0, hoverinfo="skip"), row=r, col=c)
        axis = "" if k == 0 else str(k + 1)
        fig.update_xaxes(range=[x0, x1], row=r, col=c, constrain="domain")
        fig.update_yaxes(range=[y0, y1], row=r, col=c, scaleanchor=f"x{axis}", scaleratio=1, constrain="domain")
    for name in data.OUTCOME_ORDER:   # the legend: one entry per outcome that occurs
        if name in seen:
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=data.outcome_label(name, optima),
                                     marker=dict(symbol="square", size=12, color=OUTCOME_COLOURS[name])))
    if marked:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name="× then turned NaN or blew up",
                                 marker=dict(symbol="x-thin", size=10, line=dict(width=1.5, color="#000000"))))
    height = int(rows * (panel_px + 40) + 150)
    plot_h = height - 80 - 90
    fig.update_layout(height=height + 20, margin=dict(l=40, r=20, t=100, b=90),
                      title=dict(text=title, y=1 - 12 / (height + 20), yanchor="top"),
                      legend=dict(orientation="h", yanchor="top", y=-40 / plot_h, x=0),   # below the panels
                      plot_bgcolor="#ffffff")
    return fig


def success_chart(table, *, values=SHARE_VALUES) -> go.Figure:
    """Horizontal bars per variant: the share of runs reaching a global optimum and the Pareto set."""
    labels = list(table["label"])
    fig = go.Figure()
    palette = {"reached_share": "#0072B2", "pareto_share": "#009E73"}
    for v in values:
        fig.add_trace(go.Bar(y=labels, x=table[v], orientation="h", name=VALUE_LABELS.get(v, v),
                             marker_color=palette.get(v), text=[f"{x:.0%}" for x in table[v]],
                             textposition="auto", hovertemplate="%{y}: %{x:.1%}<extra></extra>"))
    fig.update_layout(barmode="group", height=max(260, 28 * len(labels) * len(values) + 120),
                      xaxis=dict(range=[0, 1], tickformat=".0%", title="share of runs"),
                      yaxis=dict(autorange="reversed"), margin=dict(l=10, r=20, t=90, b=40),
                      legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0),     # between title and plot
                      title=dict(text="Success per method", y=0.99, yanchor="top"))
    return fig


def _axis_values(col):
    vals = list(dict.fromkeys(col.tolist()))
    try:
        return sorted(vals)
    except TypeError:
        return vals


def sweep_heatmap(table, x: str, y: str, value: str = "reached_share", *, method: str | None = None) -> go.Figure:
    """``value`` over two swept settings ``x`` and ``y`` of one method (the mean over any other swept
    setting, which the caller may filter out first)."""
    t = table if method is None else table[table["method"] == method]
    t = t.dropna(subset=[x, y])
    pv = t.groupby([y, x])[value].mean().unstack(x)
    xs, ys = _axis_values(pv.columns), _axis_values(pv.index)
    pv = pv.reindex(index=ys, columns=xs)
    share = value in SHARE_VALUES
    z = pv.to_numpy(dtype=float)
    text = [[("" if not np.isfinite(c) else f"{c:.0%}" if share else f"{c:.3g}") for c in row] for row in z]
    name = (t["name"].iloc[0] if len(t) else (method or ""))
    fig = go.Figure(go.Heatmap(x=[str(v) for v in xs], y=[str(v) for v in ys], z=z, text=text,
                               texttemplate="%{text}", colorscale="Viridis",
                               zmin=0 if share else None, zmax=1 if share else None,
                               colorbar=dict(title=dict(text=VALUE_LABELS.get(value, value), side="right"),
                                             tickformat=".0%" if share else None),
                               hovertemplate=f"{x}=%{{x}}<br>{y}=%{{y}}<br>%{{text}}<extra></extra>"))
    fig.update_layout(title=f"{name}: {VALUE_LABELS.get(value, value)} over {x} × {y}",
                      xaxis=dict(title=x, type="category"), yaxis=dict(title=y, type="category"),
                      height=max(360, 40 * len(ys) + 160), margin=dict(l=60, r=20, t=60, b=50))
    return fig


def sweep_line(table, x: str, value: str = "reached_share") -> go.Figure:
    """``value`` against one swept setting ``x``, one line per method."""
    fig = go.Figure()
    share = value in SHARE_VALUES
    numeric = all(isinstance(v, (int, float, np.number)) for v in table[x].dropna())
    for i, (method, g) in enumerate(table.dropna(subset=[x]).groupby("method", sort=False)):
        g = g.groupby(x, sort=True)[value].mean().reset_index()
        fig.add_trace(go.Scatter(x=g[x] if numeric else g[x].astype(str), y=g[value], mode="lines+markers",
                                 name=str(table.loc[table["method"] == method, "name"].iloc[0]),
                                 line=dict(color=colour(method, i), width=2)))
    positive = numeric and len(table[x].dropna()) and (table[x].dropna() > 0).all()
    spread = positive and table[x].max() / max(table[x].min(), 1e-300) > 50
    fig.update_layout(title=f"{VALUE_LABELS.get(value, value)} against {x}",
                      xaxis=dict(title=x, type="log" if spread else None),
                      yaxis=dict(title=VALUE_LABELS.get(value, value), tickformat=".0%" if share else None,
                                 range=[0, 1.02] if share else None),
                      height=420, margin=dict(l=60, r=20, t=60, b=50))
    return fig


def compare_chart(table_a, table_b, name_a: str, name_b: str, value: str = "reached_share") -> go.Figure:
    """Two jobs side by side: ``value`` per variant label (labels present in either job)."""
    labels = list(dict.fromkeys(list(table_a["label"]) + list(table_b["label"])))
    fig = go.Figure()
    share = value in SHARE_VALUES
    for t, name, col in ((table_a, name_a, "#0072B2"), (table_b, name_b, "#E69F00")):
        m = dict(zip(t["label"], t[value]))
        ys = [m.get(lb, np.nan) for lb in labels]
        fig.add_trace(go.Bar(y=labels, x=ys, orientation="h", name=name, marker_color=col,
                             text=[("" if not np.isfinite(v) else f"{v:.0%}" if share else f"{v:.3g}") for v in ys],
                             textposition="auto"))
    fig.update_layout(barmode="group", title=dict(text=f"{VALUE_LABELS.get(value, value)}: {name_a} vs {name_b}",
                                                  y=0.99, yanchor="top"),
                      xaxis=dict(title=VALUE_LABELS.get(value, value), tickformat=".0%" if share else None,
                                 range=[0, 1] if share else None),
                      yaxis=dict(autorange="reversed"), height=max(300, 44 * len(labels) + 160),
                      legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0),     # between title and plot
                      margin=dict(l=10, r=20, t=100, b=40))
    return fig

