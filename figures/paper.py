"""Publication figures (matplotlib) from a ``trajectories.Result``, in the house style of ``figures/style.py``.

Builders, each ``paper_<kind>(result, style=None, size="double", **options) -> matplotlib.figure.Figure``:

* ``small_multiples``: contour of the loss with every start's path, one column per method variant (the SAM-GS
  paper's figures 2 and 4); ``rows=("contour", "loss")`` adds the loss-space view under each panel;
* ``overlay``: every variant's paths over one contour, in their colours, with a legend — Explore's overlay map;
  with ``Style(screen=True)`` the contour is filled as on screen (the Export panel's "view on screen");
* ``loss_space``: the paths in (L1, L2) with the Pareto front, one panel per variant;
* ``basin``: each start coloured by what its run reached (``Result.outcome``, in the words of
  ``figures/vocabulary.py``), one panel per variant;
* ``heatmap``: a sweep's metric over its swept values (or over variants x starts when nothing is swept);
* ``diagnostics``: per-step curves (loss, distance to the Pareto set, gradient cosine, ...), median over
  the starts with the interquartile band.

``build(kind, result, ...)`` dispatches by the CLI's kind names (``KINDS``). Sizes (``SIZES``): single column
(3.3 in), double column (6.9 in), slide (16:9, 13.33 x 7.5 in), poster. Figures are built on
``matplotlib.figure.Figure`` directly (no pyplot, no global figure registry), under the house rcParams, which
``figures/save.py`` re-applies when the file is written (fonts are chosen at save time).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import matplotlib as mpl
import numpy as np
from matplotlib.colors import LinearSegmentedColormap, ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from . import data, vocabulary
from . import style as st


# -- sizes ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Size:
    """A target medium: the figure's width, its font size, how thick lines are, at most how many panels a row."""

    key: str
    label: str
    width: float            # inches
    font: float             # points
    line: float             # multiplies Style's widths and marker sizes (which are in screen pixels)
    family: str             # "serif" (papers) or "sans" (slides, posters)
    max_columns: int
    height: float | None = None   # fixed height (slides); None: from the layout

    @property
    def rc(self) -> dict:
        return st.mpl_rc(self.font, self.family, max(self.line, 0.5) / 0.5)


SIZES = {
    "single": Size("single", "Single column (3.3 in)", 3.3, 7.0, 0.45, "serif", 3),
    "double": Size("double", "Double column (6.9 in)", 6.9, 8.0, 0.5, "serif", 9),
    "slide": Size("slide", "Slide 16:9 (13.33 x 7.5 in)", 13.333, 14.0, 1.0, "sans", 9, height=7.5),
    "poster": Size("poster", "Poster (16 in wide)", 16.0, 22.0, 1.3, "sans", 9),
}


def size_of(size) -> Size:
    if isinstance(size, Size):
        return size
    if size not in SIZES:
        raise ValueError(f"size: unknown {size!r} (known: {', '.join(SIZES)})")
    return SIZES[size]


# -- shared pieces ----------------------------------------------------------------------------------------
def _need_positions(result, kind):
    if result.positions is None:
        raise ValueError(f"{kind}: the Result has no recorded positions (run it with record including 'positions')")
    return result.positions


def _variant_weights(result, m):
    w = result.variants[m].get("task_weights")
    return None if w is None else np.asarray(w, dtype=float)


def _scale(result) -> float:
    return float(result.config.get("scale", 1.0) or 1.0)


def _levels(Z, n_levels=12, log=False):
    z = Z[np.isfinite(Z)]
    if log:
        z = np.log1p(z - z.min())
    lv = np.unique(np.quantile(z, np.linspace(0.02, 0.98, n_levels)))
    return lv


def _path_indices(n_rec, style):
    return st.decimate(n_rec, style.max_points)


def _finite_path(p):
    """The path up to its first non-finite point (a diverged run stops being drawn where it left the plane)."""
    ok = np.isfinite(p).all(-1)
    if ok.all():
        return p
    bad = np.argmin(ok)
    return p[:bad]


def _marker_sizes(style, size):
    ms = style.marker_size * size.line
    return dict(start=ms, end=ms, optimum=ms * 1.9, line=style.line_width * size.line,
                pareto=style.pareto_width * size.line)


def draw_landscape(ax, land, *, weights, scale, style, size, grid_n=200):
    """Contour lines of the loss, the Pareto set (thick line) and the global optima (stars)."""
    xs, ys, Z = data.contour_grid(land, style.contour, weights, scale, grid_n)
    Zp = np.log1p(Z - np.nanmin(Z)) if style.log_contours else Z
    if style.screen:      # as the browser draws it: filled bands in its grey scale, thin lines between them
        stops = st.SCREEN_CONTOUR
        fill = LinearSegmentedColormap.from_list("gradscape_screen", [(p, c) for p, c in stops])
        z = Zp[np.isfinite(Zp)]
        levels = np.linspace(z.min(), z.max(), 26)
        ax.contourf(xs, ys, Zp, levels=levels, cmap=fill, zorder=0)
        ax.contour(xs, ys, Zp, levels=levels, colors=[(0.31, 0.31, 0.31, 0.35)], linewidths=0.3 * size.line / 0.5,
                   zorder=0)
    else:
        cmap = LinearSegmentedColormap.from_list("gradscape_contour", st.CONTOUR_CMAP)
        ax.contour(xs, ys, Zp, levels=_levels(Z, log=style.log_contours), cmap=cmap,
                   linewidths=0.6 * size.line / 0.5, alpha=0.55, zorder=0)
    sz = _marker_sizes(style, size)
    if style.show_pareto:
        _pareto(ax, land.pareto_set(), land.n_tasks, sz, land.bounds)
    if style.show_optima:
        opt = land.optima(weights, scale)
        ax.plot(opt[:, 0], opt[:, 1], ls="none", marker="*", ms=sz["optimum"], mfc=st.OPTIMUM_COLOUR, mec="black",
                mew=0.5 * size.line / 0.5, zorder=6)
    (x0, x1), (y0, y1) = land.bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_aspect("equal", adjustable="box")
    ax.xaxis.set_major_locator(MaxNLocator(3, symmetric=True, integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(3, symmetric=True, integer=True))


def _pareto(ax, pts, n_tasks, sz, bounds=None):
    """The Pareto set (or front): a thick line through its pieces for two tasks (a curve, figures/data.py); a
    cloud of points for more (a region). ``bounds``: the box the gap rule measures against (default: the
    points' own bounding box)."""
    if bounds is None and len(pts):
        bounds = ((pts[:, 0].min(), pts[:, 0].max()), (pts[:, 1].min(), pts[:, 1].max()))
    pieces = data.pareto_pieces(pts, bounds) if n_tasks == 2 and len(pts) else []
    if pieces and data.pareto_is_curve(pieces):
        x, y = data.pareto_polyline(pts, bounds)
        ax.plot(x, y, color=st.PARETO_COLOUR, lw=sz["pareto"], alpha=0.35, solid_capstyle="round", zorder=1)
    else:
        pts = pts[st.decimate(len(pts), 600)] if len(pts) > 600 else pts     # a light cloud, not a solid blob
        ax.plot(pts[:, 0], pts[:, 1], ls="none", marker="o", ms=sz["pareto"] * 0.3, mew=0,
                color=st.PARETO_COLOUR, alpha=0.15, zorder=1)


def draw_paths(ax, paths, *, colour, dash, style, size, ends=True):
    """Paths [S, T, 2] as lines in the variant's colour; start black dot, end red dot."""
    sz = _marker_sizes(style, size)
    lines = []
    for p in paths:
        p = _finite_path(p)
        if len(p) == 0:
            continue
        (ln,) = ax.plot(p[:, 0], p[:, 1], color=colour, ls=st.MPL_DASHES[dash], lw=sz["line"], zorder=3,
                        solid_capstyle="round")
        lines.append(ln)
        ax.plot(p[0, 0], p[0, 1], ls="none", marker="o", ms=sz["start"], color=st.START_COLOUR, zorder=4)
        if ends:
            ax.plot(p[-1, 0], p[-1, 1], ls="none", marker="o", ms=sz["end"] * 0.8, color=st.END_COLOUR, zorder=5)
    return lines


GHOST_COLOUR = (0.16, 0.16, 0.16, 0.4)


def _published_ghosts(result):
    from . import published
    return published.ghosts(result)


def draw_ghosts(ax, paths, size):
    """Published paths (figures/published.py) under the runs: wide, grey, dashed."""
    for p in paths:
        ax.plot(p[:, 0], p[:, 1], color=GHOST_COLOUR, lw=2.5 * size.line, ls=(0, (3, 2)), zorder=2,
                solid_capstyle="round")


def marker_legend(style, size, *, pareto=True, optimum=True, extra=(), pareto_label="Pareto set"):
    sz = _marker_sizes(style, size)
    h = [Line2D([], [], ls="none", marker="o", ms=sz["start"], color=st.START_COLOUR, label="start"),
         Line2D([], [], ls="none", marker="o", ms=sz["end"] * 0.8, color=st.END_COLOUR, label="end")]
    if optimum and style.show_optima:
        h.append(Line2D([], [], ls="none", marker="*", ms=sz["optimum"], mfc=st.OPTIMUM_COLOUR, mec="black",
                        mew=0.5, label="global optimum"))
    if pareto and style.show_pareto:
        h.append(Line2D([], [], color=st.PARETO_COLOUR, lw=sz["pareto"], alpha=0.35, label=pareto_label))
    return h + list(extra)


def _panel_title(ax, label, size, cols):
    """The panel's title, wrapped onto two lines when it would not fit the panel's width."""
    import textwrap
    chars = int(size.width / cols * 72 / (0.5 * size.font))
    if len(label) > chars and " (" in label:
        head, tail = label.split(" (", 1)
        label = head + "\n(" + tail
    if max(len(x) for x in label.split("\n")) > chars:
        label = "\n".join(textwrap.wrap(label, max(chars, 8), break_on_hyphens=False)[:3])
    ax.set_title(label)


def _grid_shape(n, size, columns, panel_rows=1):
    """(rows, columns) of a layout of ``n`` panels (each ``panel_rows`` tall): ``columns`` when given; for a
    fixed-height medium (slides) the wrap that gives the largest panels; else at most ``size.max_columns``."""
    if columns is not None:
        if not isinstance(columns, (int, np.integer)) or columns < 1:
            raise ValueError(f"columns: expected a whole number >= 1, got {columns!r}")
        cols = min(int(columns), n)
    elif size.height is not None:
        pad_w, pad_h = 3.0 * size.font / 72, 3.5 * size.font / 72
        usable_h = size.height - 3.0 * size.font / 72

        def side(blocks):
            c = math.ceil(n / blocks)
            return min(size.width / c - pad_w, usable_h / (blocks * panel_rows) - pad_h)

        best = max(range(1, n + 1), key=lambda b: (round(side(b), 3), -b))
        cols = math.ceil(n / best)
    else:
        blocks = math.ceil(n / size.max_columns)
        cols = math.ceil(n / blocks)
    return math.ceil(n / cols), cols


def _new_figure(size, rows, cols, panel_aspect=1.0, extra_in=0.0, width=None):
    """A constrained-layout Figure with ``rows x cols`` panels of the given height/width ratio."""
    W = width or size.width
    if size.height is not None:
        H = size.height
    else:
        pw = W / max(cols, 3)       # with fewer than 3 panels a row, panels stay a third of the width (centred)
        title_in = 2.4 * size.font / 72
        H = rows * (pw * panel_aspect + title_in) + extra_in
    fig = Figure(figsize=(W, H), layout="constrained")
    fig.gradscape_rc = size.rc
    return fig


def _legend_below(fig, handles, size, ncol=None):
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=ncol or min(len(handles), 6),
                   handlelength=1.6, columnspacing=1.2)


def _style(style):
    return style if style is not None else st.Style()


def _variants_to_draw(result, methods):
    """Row indices to draw: every variant, or those whose method key or label is in ``methods``."""
    if not methods:
        return list(range(len(result.variants)))
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    rows = [i for i, v in enumerate(result.variants) if v["method"] in methods or v["label"] in methods]
    if not rows:
        raise ValueError(f"methods: none of {', '.join(methods)} is in this Result "
                         f"(it has {', '.join(dict.fromkeys(result.methods))})")
    return rows


# -- small multiples (contour + paths, optional loss-space row) ---------------------------------------
def paper_small_multiples(result, style=None, size="double", *, rows=("contour",), columns=None, methods=None,
                          legend=True, title=None, ghosts=False):
    """One column per method variant: contour + every start's path (and, with ``rows=("contour", "loss")``,
    the same paths in loss space underneath), like the SAM-GS paper's figures 2 and 4. ``ghosts``: draw the
    published path (figures/published.py) under every run that has one, grey and dashed."""
    style, size = _style(style), size_of(size)
    rows = (rows,) if isinstance(rows, str) else tuple(rows)
    for r in rows:
        if r not in ("contour", "loss"):
            raise ValueError(f"rows: expected 'contour' and/or 'loss', got {r!r}")
    if not rows:
        raise ValueError("rows: choose at least one of 'contour', 'loss'")
    pos = _need_positions(result, "small-multiples")
    land = result.landscape
    sel = _variants_to_draw(result, methods)
    blocks, cols = _grid_shape(len(sel), size, columns, len(rows))
    nrows = blocks * len(rows)
    idx = _path_indices(pos.shape[2], style)
    with mpl.rc_context(size.rc):
        fig = _new_figure(size, nrows, cols, extra_in=(3.0 * size.font / 72 if legend else 0))
        axes = fig.subplots(nrows, cols, squeeze=False)
        vstyle = st.variant_style(result.variants)
        ghost_paths = _published_ghosts(result) if ghosts else None
        for j, m in enumerate(sel):
            b, c = divmod(j, cols)
            colour, dash = vstyle[m]
            w = _variant_weights(result, m)
            for r, kind in enumerate(rows):
                ax = axes[b * len(rows) + r, c]
                if kind == "contour":
                    draw_landscape(ax, land, weights=w, scale=_scale(result), style=style, size=size)
                    if ghost_paths:
                        draw_ghosts(ax, ghost_paths[m], size)
                    draw_paths(ax, pos[m][:, idx], colour=colour, dash=dash, style=style, size=size)
                    xl, yl = st.THETA_LABELS
                else:
                    _loss_panel(ax, result, m, land, idx, colour, dash, style, size)
                    xl, yl = st.loss_label(0), st.loss_label(1)
                if r == 0:
                    _panel_title(ax, result.variants[m]["label"], size, cols)
                last_in_col = (b == blocks - 1) or (j + cols >= len(sel))
                if kind == "loss" or len(rows) > 1 or last_in_col:
                    ax.set_xlabel(xl)
                if c == 0:
                    ax.set_ylabel(yl)
        for j in range(len(sel), blocks * cols):
            b, c = divmod(j, cols)
            for r in range(len(rows)):
                axes[b * len(rows) + r, c].set_visible(False)
        if title:
            fig.suptitle(title)
        if legend:
            label = "Pareto set / front" if "loss" in rows and "contour" in rows else \
                "Pareto front" if "loss" in rows else "Pareto set"
            extra = [Line2D([], [], color=GHOST_COLOUR, lw=2.5 * size.line, ls=(0, (3, 2)), label="published path")] \
                if ghost_paths and any(ghost_paths[m] for m in sel) else []
            _legend_below(fig, marker_legend(style, size, pareto_label=label, extra=extra), size)
    return fig


# -- one panel, every method (Explore's overlay map) ------------------------------------------------------
def paper_overlay(result, style=None, size="double", *, methods=None, legend=True, title=None):
    """Every variant's paths from every start over one contour, in the variants' colours (and dashes), with a
    legend naming them — the figure Explore's overlay map shows."""
    style, size = _style(style), size_of(size)
    pos = _need_positions(result, "overlay")
    land = result.landscape
    sel = _variants_to_draw(result, methods)
    idx = _path_indices(pos.shape[2], style)
    vstyle = st.variant_style(result.variants)
    with mpl.rc_context(size.rc):
        W = size.width
        H = size.height or min(W * 0.72, 9.0)
        fig = Figure(figsize=(W, H), layout="constrained")
        fig.gradscape_rc = size.rc
        ax = fig.subplots(1, 1)
        draw_landscape(ax, land, weights=_variant_weights(result, sel[0]), scale=_scale(result), style=style,
                       size=size)
        handles = []
        for m in sel:
            colour, dash = vstyle[m]
            draw_paths(ax, pos[m][:, idx], colour=colour, dash=dash, style=style, size=size)
            handles.append(Line2D([], [], color=colour, ls=st.MPL_DASHES[dash], lw=_marker_sizes(style, size)["line"],
                                  label=result.variants[m]["label"]))
        ax.set_xlabel(st.THETA_LABELS[0])
        ax.set_ylabel(st.THETA_LABELS[1])
        if title:
            ax.set_title(title)
        if legend:
            fig.legend(handles=handles + marker_legend(style, size), loc="outside right upper", frameon=False)
    return fig


# -- loss space -------------------------------------------------------------------------------------------
def _losses_of(result, m, idx):
    if result.losses is not None:
        return result.losses[m][:, idx]
    pos = _need_positions(result, "loss-space")[m][:, idx]
    flat = pos.reshape(-1, 2)
    out = np.full((len(flat), result.final_losses.shape[-1]), np.nan)
    ok = np.isfinite(flat).all(1)
    out[ok] = result.landscape.losses_np(flat[ok], _variant_weights(result, m), _scale(result))
    return out.reshape(pos.shape[:2] + (-1,))


def _loss_panel(ax, result, m, land, idx, colour, dash, style, size):
    if land.n_tasks < 2:
        raise ValueError("loss-space: needs at least two tasks")
    w, sc = _variant_weights(result, m), _scale(result)
    sz = _marker_sizes(style, size)
    if style.show_pareto:
        _pareto(ax, land.pareto_front(None, w, sc), land.n_tasks, sz)     # K > 2: its (L1, L2) projection
    if style.show_optima:
        ol = land.losses_np(land.optima(w, sc), w, sc)
        ax.plot(ol[:, 0], ol[:, 1], ls="none", marker="*", ms=sz["optimum"], mfc=st.OPTIMUM_COLOUR, mec="black",
                mew=0.5, zorder=6)
    L = _losses_of(result, m, idx)
    draw_paths(ax, L[..., :2], colour=colour, dash=dash, style=style, size=size)
    ax.set_box_aspect(1)
    ax.spines[["top", "right"]].set_visible(False)
    ax.xaxis.set_major_locator(MaxNLocator(3))
    ax.yaxis.set_major_locator(MaxNLocator(3))


def paper_loss_space(result, style=None, size="double", *, columns=None, methods=None, legend=True, title=None):
    """Each variant's paths in loss space (L1, L2), with the Pareto front (thick line) and the optimum's losses."""
    style, size = _style(style), size_of(size)
    pos_or_losses = result.losses if result.losses is not None else _need_positions(result, "loss-space")
    land = result.landscape
    sel = _variants_to_draw(result, methods)
    nrows, cols = _grid_shape(len(sel), size, columns)
    idx = _path_indices(pos_or_losses.shape[2], style)
    with mpl.rc_context(size.rc):
        fig = _new_figure(size, nrows, cols, extra_in=(3.0 * size.font / 72 if legend else 0))
        axes = fig.subplots(nrows, cols, squeeze=False)
        vstyle = st.variant_style(result.variants)
        for j, m in enumerate(sel):
            ax = axes[divmod(j, cols)]
            colour, dash = vstyle[m]
            _loss_panel(ax, result, m, land, idx, colour, dash, style, size)
            _panel_title(ax, result.variants[m]["label"], size, cols)
            ax.set_xlabel(st.loss_label(0))
            if j % cols == 0:
                ax.set_ylabel(st.loss_label(1))
        for j in range(len(sel), nrows * cols):
            axes[divmod(j, cols)].set_visible(False)
        if title:
            fig.suptitle(title)
        if legend:
            _legend_below(fig, marker_legend(style, size, pareto_label="Pareto front"), size)
    return fig


# -- basin maps -------------------------------------------------------------------------------------------
def _edges(v):
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def paper_basin(result, style=None, size="double", *, columns=None, methods=None, legend=True, title=None):
    """Where each start's run ended (``Result.outcome``), one panel per variant: a cell per start when the
    starts form a grid (``starts="grid:N"``), a dot per start otherwise."""
    style, size = _style(style), size_of(size)
    land = result.landscape
    sel = _variants_to_draw(result, methods)
    nrows, cols = _grid_shape(len(sel), size, columns)
    present = [o for o in data.OUTCOME_ORDER if (result.outcome[sel] == o).any()]
    present += sorted(set(np.unique(result.outcome[sel]).tolist()) - set(present))
    codes = {o: i for i, o in enumerate(present)}
    cmap = ListedColormap([st.OUTCOME_COLOURS.get(o, "#BBBBBB") for o in present])
    grid = data.regular_grid(result.starts[:, 0], result.starts[:, 1])
    sz = _marker_sizes(style, size)
    marked = False
    optima = land.optima(_variant_weights(result, sel[0]) if sel else None, _scale(result))
    with mpl.rc_context(size.rc):
        fig = _new_figure(size, nrows, cols, extra_in=(3.0 * size.font / 72 if legend else 0))
        axes = fig.subplots(nrows, cols, squeeze=False)
        for j, m in enumerate(sel):
            ax = axes[divmod(j, cols)]
            code = np.array([codes[o] for o in result.outcome[m]], dtype=float)
            if grid is not None:
                xs, ys, ix, iy = grid
                img = np.full((len(ys), len(xs)), np.nan)
                img[iy, ix] = code
                ax.pcolormesh(_edges(xs), _edges(ys), img, cmap=cmap, vmin=-0.5, vmax=len(present) - 0.5,
                              rasterized=False, zorder=0, linewidth=0)
            else:
                ax.scatter(result.starts[:, 0], result.starts[:, 1], c=code, cmap=cmap, vmin=-0.5,
                           vmax=len(present) - 0.5, s=(sz["start"] * 1.6) ** 2, edgecolors="black",
                           linewidths=0.3, zorder=4)
            after = vocabulary.died_after_reaching(result.outcome[m], result.status[m])
            if after.any():     # reached the optimum (or the set), then turned NaN or blew up: marked
                marked = True
                ax.plot(result.starts[after, 0], result.starts[after, 1], ls="none", marker="x",
                        ms=sz["start"] * 0.7, mew=0.6 * size.line / 0.5, color="black", zorder=5)
            draw_landscape(ax, land, weights=_variant_weights(result, m), scale=_scale(result), style=style, size=size)
            _panel_title(ax, result.variants[m]["label"], size, cols)
            ax.set_xlabel(st.THETA_LABELS[0])
            if j % cols == 0:
                ax.set_ylabel(st.THETA_LABELS[1])
        for j in range(len(sel), nrows * cols):
            axes[divmod(j, cols)].set_visible(False)
        if title:
            fig.suptitle(title)
        if legend:
            patches = [Patch(facecolor=st.OUTCOME_COLOURS.get(o, "#BBBBBB"), edgecolor="none",
                             label=vocabulary.outcome_label(o, optima)) for o in present]
            if marked:
                patches.append(Line2D([], [], ls="none", marker="x", ms=sz["start"] * 0.7, color="black",
                                      label="then turned NaN or blew up"))
            _legend_below(fig, patches + marker_legend(style, size)[2:], size, ncol=min(len(patches) + 2, 4))
    return fig


# -- sweep heatmaps -----------------------------------------------------------------------------------------
METRICS = {
    # name: (label, per-run value from the Result, aggregate over starts, colormap, lower is better)
    "optimum": ("reached the optimum (share)", lambda r: (r.optimum_index >= 0).astype(float),
                np.nanmean, "Blues", False),
    "converged": ("reached the Pareto set (share)",
                  lambda r: ((r.optimum_index >= 0) | (np.asarray(r.outcome).astype(str) == "pareto")).astype(float),
                  np.nanmean, "Greens", False),
    "pareto_distance": ("final distance to the Pareto set", lambda r: np.where(np.isfinite(r.pareto_distance),
                                                                               r.pareto_distance, np.nan),
                        np.nanmedian, "viridis_r", True),
    "steps_to_optimum": ("steps to a global optimum", lambda r: np.where(r.optimum_step >= 0, r.optimum_step,
                                                                         np.nan).astype(float),
                         np.nanmedian, "magma_r", True),
    "final_loss": (r"final $\sum_k " + st.LOSS_SYMBOL + r"_k$", lambda r: r.final_losses.sum(-1),
                   np.nanmean, "viridis_r", True),
    "stationarity": ("Pareto-stationarity at the end", lambda r: r.stationarity, np.nanmedian, "viridis_r", True),
}


def _sweep_table(result, rows, metric):
    """(row labels, column labels, values[R, C], x name, y name) for the variants ``rows`` of one method."""
    label, per_run, agg, _, _ = METRICS[metric]
    vals = per_run(result)
    vs = [result.variants[i] for i in rows]
    swept = list(vs[0].get("swept") or [])

    def value_of(v, name):
        if name == "lr":
            return v["lr"]
        if name == "task_weights":
            return tuple(v["task_weights"])
        return v["hparams"][name]

    def fmt(x):
        if isinstance(x, (tuple, list)):
            return "(" + ", ".join(fmt(y) for y in x) + ")"
        return f"{x:g}" if isinstance(x, float) else str(x)

    if len(swept) == 0:
        return ([fmt(tuple(p)) for p in result.starts.round(2).tolist()], [v["label"] for v in vs],
                vals[rows].T, "variant", "start")
    if len(swept) == 1:
        xname = swept[0]
        xv = [value_of(v, xname) for v in vs]
        return ([fmt(tuple(p)) for p in result.starts.round(2).tolist()], [fmt(x) for x in xv], vals[rows].T,
                xname, "start")
    xname, yname = swept[0], swept[1]
    xv = list(dict.fromkeys(value_of(v, xname) for v in vs))
    yv = list(dict.fromkeys(value_of(v, yname) for v in vs))
    cells: dict = {}
    for i, v in zip(rows, vs):
        cells.setdefault((yv.index(value_of(v, yname)), xv.index(value_of(v, xname))), []).append(vals[i])
    table = np.full((len(yv), len(xv)), np.nan)
    for (a, b), lst in cells.items():
        with np.errstate(all="ignore"):
            table[a, b] = agg(np.concatenate(lst)) if np.isfinite(np.concatenate(lst)).any() else np.nan
    return [fmt(y) for y in yv], [fmt(x) for x in xv], table, xname, yname


_AXIS_NAMES = {"lr": r"learning rate $\eta$", "task_weights": r"task weights $(w_1, w_2)$",
               "gamma": r"$\gamma$", "beta1": r"$\beta_1$", "beta2": r"$\beta_2$", "c": r"$c$", "alpha": r"$\alpha$"}


def paper_heatmap(result, style=None, size="double", *, metric="pareto_distance", columns=None, methods=None,
                  annotate=True, title=None, legend=True):
    """A sweep's ``metric`` as a heatmap, one panel per method: over the two swept settings (aggregated over the
    starts), over one swept setting x the starts, or (nothing swept) over the variants x the starts."""
    style, size = _style(style), size_of(size)
    if metric not in METRICS:
        raise ValueError(f"metric: unknown {metric!r} (known: {', '.join(METRICS)})")
    label, _, _, cmap, _ = METRICS[metric]
    sel = _variants_to_draw(result, methods)
    swept_any = any(result.variants[i].get("swept") for i in sel)
    groups: dict = {}
    for i in sel:
        key = result.variants[i]["method"] if swept_any else "all"
        groups.setdefault(key, []).append(i)
    tables = [(k, _sweep_table(result, rows, metric)) for k, rows in groups.items()]
    nrows, cols = _grid_shape(len(tables), size, columns)
    ymax = max(len(t[0]) for _, t in tables)
    xmax = max(len(t[1]) for _, t in tables)
    # cells about square, but the whole figure no taller than it is wide
    aspect = min(max(ymax / max(xmax, 1), 0.35), max(0.35, (size.width * 0.9) / (nrows * size.width / cols)))
    finite = np.concatenate([t[2][np.isfinite(t[2])].ravel() for _, t in tables] + [np.array([])])
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    norm = None
    if metric in ("pareto_distance", "stationarity") and vmin > 0 and vmax / vmin > 100:
        norm = LogNorm(vmin, vmax)      # distances span decades (1e-6 on the set, 10 in a valley)
    with mpl.rc_context(size.rc):
        fig = _new_figure(size, nrows, cols, panel_aspect=aspect, extra_in=4.0 * size.font / 72)
        axes = fig.subplots(nrows, cols, squeeze=False)
        im = None
        for j, (key, (ylabels, xlabels, table, xname, yname)) in enumerate(tables):
            ax = axes[divmod(j, cols)]
            masked = np.ma.masked_invalid(table)
            im = ax.imshow(masked, cmap=cmap, norm=norm or Normalize(vmin, vmax), aspect="auto",
                           interpolation="nearest")
            ax.set_xticks(range(len(xlabels)), xlabels, rotation=45 if len(xlabels) > 4 else 0,
                          ha="right" if len(xlabels) > 4 else "center")
            ax.set_yticks(range(len(ylabels)), ylabels)
            ax.set_xlabel(_AXIS_NAMES.get(xname, xname))
            ax.set_ylabel(_AXIS_NAMES.get(yname, yname))
            if key != "all":
                ax.set_title(_method_name(key))
            if annotate and table.size <= 120:
                for (a, b), v in np.ndenumerate(table):
                    if np.isfinite(v):
                        frac = norm(v) if norm is not None else (v - vmin) / (vmax - vmin)
                        dark = frac > 0.55      # every METRICS colormap darkens towards its high end
                        ax.text(b, a, f"{v:.2g}", ha="center", va="center", fontsize=size.font * 0.7,
                                color="white" if dark else "black")
        for j in range(len(tables), nrows * cols):
            axes[divmod(j, cols)].set_visible(False)
        if im is not None:
            fig.colorbar(im, ax=axes.ravel().tolist(), label=label, location="bottom", shrink=0.6, aspect=30)
        if title:
            fig.suptitle(title)
    return fig


def _method_name(key):
    try:
        import optimizers
        return optimizers.get(key).name
    except Exception:   # a method from a newer registry: show its key
        return key


# -- diagnostics curves ---------------------------------------------------------------------------------------
DIAGNOSTICS = {
    "loss": "total loss",
    "pareto_distance": "distance to the Pareto set",
    "cos": r"$\cos(g_1, g_2)$",
    "gms": r"$\mathrm{GMS}(g_1, g_2)$",
    "curv": "curvature bound",
    "dnorm": r"$\|d\|$ (applied direction)",
    "weight1": r"task-1 weight $w_1$",
    "branch": "SAM-GS equalisation (share of steps)",
}


def _diagnostic_label(name, result):
    if name == "loss":
        K = result.final_losses.shape[-1]
        return "$" + " + ".join(f"{st.LOSS_SYMBOL}_{{{k + 1}}}" for k in range(K)) + "$" if K <= 3 else \
            r"$\sum_k " + st.LOSS_SYMBOL + "_k$"
    return DIAGNOSTICS[name]


def _diagnostic(result, m, name, idx):
    """[S, T'] values of one diagnostic for variant ``m`` at the recorded indices ``idx``."""
    aux = result.aux
    if name == "loss":
        return _losses_of(result, m, idx).sum(-1)
    if name == "pareto_distance":
        from trajectories import metrics
        return metrics.pareto_distance(result.landscape, _need_positions(result, "diagnostics")[m][:, idx])
    if name in ("cos", "gms", "curv"):
        return aux[name][m][:, idx] if name in aux else None
    if name == "dnorm":
        return np.linalg.norm(aux["dir"][m][:, idx], axis=-1) if "dir" in aux else None
    if name == "weight1":
        return aux["weights"][m][:, idx, 0] if "weights" in aux else None
    if name == "branch":
        if "branch" not in aux:
            return None
        b = aux["branch"][m]
        if not np.isfinite(b).any():
            return None
        csum = np.nancumsum(b, axis=1)
        return (csum / np.arange(1, b.shape[1] + 1))[:, idx]
    raise ValueError(f"fields: unknown {name!r} (known: {', '.join(DIAGNOSTICS)})")


def paper_diagnostics(result, style=None, size="double", *, fields=("loss", "pareto_distance", "cos", "dnorm"),
                      start=None, methods=None, columns=None, legend=True, title=None):
    """Per-step curves, one panel per field, one line per variant: the median over the starts with the
    interquartile band, or one start's curve (``start`` = its index)."""
    style, size = _style(style), size_of(size)
    fields = (fields,) if isinstance(fields, str) else tuple(fields)
    for f in fields:
        if f not in DIAGNOSTICS:
            raise ValueError(f"fields: unknown {f!r} (known: {', '.join(DIAGNOSTICS)})")
    if not fields:
        raise ValueError("fields: choose at least one")
    S = result.starts.shape[0]
    if start is not None and not (isinstance(start, (int, np.integer)) and 0 <= start < S):
        raise ValueError(f"start: expected an index in [0, {S - 1}], got {start!r}")
    sel = _variants_to_draw(result, methods)
    idx = _path_indices(len(result.record_steps), style)
    steps = result.record_steps[idx]
    nrows, cols = _grid_shape(len(fields), size, columns if columns is not None else min(len(fields), 2))
    vstyle = st.variant_style(result.variants)
    sz = _marker_sizes(style, size)
    with mpl.rc_context(size.rc):
        fig = _new_figure(size, nrows, cols, panel_aspect=0.62, extra_in=(4.0 * size.font / 72 if legend else 0))
        axes = fig.subplots(nrows, cols, squeeze=False, sharex=True)
        for j, f in enumerate(fields):
            ax = axes[divmod(j, cols)]
            shown = False
            for m in sel:
                vals = _diagnostic(result, m, f, idx)
                if vals is None or not np.isfinite(vals).any():
                    continue
                colour, dash = vstyle[m]
                with np.errstate(all="ignore"), _quiet():
                    if start is None:
                        mid = np.nanmedian(vals, 0)
                        lo, hi = np.nanpercentile(vals, 25, 0), np.nanpercentile(vals, 75, 0)
                        ax.fill_between(steps, lo, hi, color=colour, alpha=0.15, lw=0)
                    else:
                        mid = vals[start]
                ax.plot(steps, mid, color=colour, ls=st.MPL_DASHES[dash], lw=sz["line"] * 0.8,
                        label=result.variants[m]["label"])
                shown = True
            if f == "pareto_distance" and shown:
                ax.set_yscale("symlog", linthresh=1e-2)
            if not shown:
                ax.text(0.5, 0.5, "not recorded for these methods", transform=ax.transAxes, ha="center",
                        va="center", color="0.4")
            ax.set_ylabel(_diagnostic_label(f, result))
            if f == "dnorm" and shown:
                ax.set_yscale("log")
            ax.spines[["top", "right"]].set_visible(False)
            if j >= len(fields) - cols:
                ax.set_xlabel("step")
        for j in range(len(fields), nrows * cols):
            axes[divmod(j, cols)].set_visible(False)
        if title:
            fig.suptitle(title)
        if legend:
            h = [Line2D([], [], color=vstyle[m][0], ls=st.MPL_DASHES[vstyle[m][1]], lw=sz["line"],
                        label=result.variants[m]["label"]) for m in sel]
            _legend_below(fig, h, size, ncol=min(len(h), 5 if size.width < 5 else 8))
    return fig


class _quiet:
    """Silence numpy's all-NaN-slice warnings inside a block."""

    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)


# -- dispatch -------------------------------------------------------------------------------------------------
KINDS = {
    "small-multiples": paper_small_multiples,
    "overlay": paper_overlay,
    "loss-space": paper_loss_space,
    "basin": paper_basin,
    "heatmap": paper_heatmap,
    "diagnostics": paper_diagnostics,
}


def build(kind, result, style=None, size="double", **options) -> Figure:
    """The ``kind`` figure of ``result`` (see ``KINDS``); unknown kinds and options raise ValueError."""
    if kind not in KINDS:
        raise ValueError(f"kind: unknown {kind!r} (known: {', '.join(KINDS)})")
    fn = KINDS[kind]
    import inspect
    allowed = [p.name for p in inspect.signature(fn).parameters.values() if p.kind == p.KEYWORD_ONLY]
    for k in options:
        if k not in allowed:
            raise ValueError(f"options: {kind} has no option {k!r} (known: {', '.join(allowed)})")
    if isinstance(style, dict):
        style = style_from_dict(style)
    return fn(result, style, size, **options)


def style_from_dict(d: dict) -> st.Style:
    import dataclasses
    known = {f.name for f in dataclasses.fields(st.Style)}
    bad = sorted(set(d) - known)
    if bad:
        raise ValueError(f"style: unknown field(s) {', '.join(bad)} (known: {', '.join(sorted(known))})")
    return st.Style(**d)
