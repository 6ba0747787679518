"""Figure data, backend-neutral: what every figure draws, defined once for the Plotly and matplotlib builders.

* ``loss_grid`` / ``contour_grid``: the landscape's task losses (or their weighted sum) on an n x n grid over
  its box — the contour of every map, memoised per (landscape, weights, scale, n);
* ``pareto_pieces`` / ``pareto_polyline``: the Pareto set (K = 2, an ordered curve) cut into its connected
  pieces. A cut is a gap longer than ``PARETO_GAP`` of the box's diagonal: the set's points are unevenly
  spaced (refined near kinks, thinned by arc length elsewhere), so a rule relative to the median gap cuts a
  smooth curve into hundreds of bits wherever the points bunch up. A set whose order along the front jumps
  between symmetric copies (most points alone in their piece) is drawn as a cloud of points instead
  (``pareto_is_curve``);
* ``regular_grid``: whether start points fill a full regular grid (basin maps draw cells, not dots);
* ``distinct_points``: the end markers a map draws, one per cell of a fine grid over its box (closer ends look the
  same on screen);
* ``OUTCOME_ORDER`` / ``outcome_label``: the order and names of per-run outcomes on maps and legends — defined in
  ``figures/vocabulary.py`` (the one vocabulary of outcomes) and re-exported here.

Nothing here imports Plotly, matplotlib or Streamlit.
"""
from __future__ import annotations

import numpy as np

from .vocabulary import OUTCOME_ORDER, outcome_label  # noqa: F401  (the outcome vocabulary, re-exported)

CONTOUR_N = 120           # contour grid resolution per axis (browser maps)
MARKER_CELLS = 1000        # ends within the same 1/1000 x 1/1000 cell of the box are drawn once (below a pixel)
PARETO_GAP = 0.02         # a gap longer than this share of the box's diagonal separates two pieces of the set


_GRIDS: dict = {}          # memo: (landscape identity, weights, scale, n) -> (xs, ys, L[n, n, K])


def _land_key(land) -> tuple:
    return land.key, repr(getattr(land, "spec", None))


def loss_grid(land, weights=None, scale: float = 1.0, n: int = CONTOUR_N):
    """(xs[n], ys[n], L[n, n, K]): the weighted task losses on an n x n grid over the box (row = y, column = x)."""
    key = (_land_key(land), None if weights is None else tuple(map(float, weights)), float(scale), int(n))
    if key not in _GRIDS:
        if len(_GRIDS) > 64:
            _GRIDS.clear()
        xs, ys, pts = land.grid(n)
        L = land.losses_np(pts, weights, scale)
        _GRIDS[key] = (xs, ys, L.reshape(n, n, -1))
    return _GRIDS[key]


def contour_index(loss: str, n_tasks: int) -> int | None:
    """None for the weighted sum ("sum"), else the 0-based task of "task1", "task2", ... (ValueError otherwise)."""
    if loss == "sum":
        return None
    k = loss.removeprefix("task")
    if loss.startswith("task") and k.isdigit() and 1 <= int(k) <= n_tasks:
        return int(k) - 1
    raise ValueError(f"loss: {loss!r} is not one of sum, task1 .. task{n_tasks}")


def contour_grid(land, loss: str = "sum", weights=None, scale: float = 1.0, n: int = CONTOUR_N):
    """(xs[n], ys[n], Z[n, n]) of the chosen loss ("sum" = the weighted sum, or "task1", "task2", ...)."""
    xs, ys, L = loss_grid(land, weights, scale, n)
    k = contour_index(loss, L.shape[-1])
    return xs, ys, (L.sum(-1) if k is None else L[..., k])


def loss_name(loss: str) -> str:
    """"sum" -> "weighted sum", "task2" -> "task 2 loss"."""
    return "weighted sum" if loss == "sum" else f"task {loss.removeprefix('task')} loss"


# -- the Pareto set ------------------------------------------------------------------------------------
def pareto_pieces(points, bounds) -> list[np.ndarray]:
    """The ordered Pareto set (K = 2) split into its connected pieces, each [n_i, 2] with n_i >= 1."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    if len(p) < 2:
        return [p] if len(p) else []
    gaps = np.hypot(*np.diff(p, axis=0).T)
    (x0, x1), (y0, y1) = bounds
    cut = gaps > PARETO_GAP * float(np.hypot(x1 - x0, y1 - y0))
    return np.split(p, np.flatnonzero(cut) + 1)


def pareto_is_curve(pieces) -> bool:
    """Whether the pieces read as lines: most points lie in pieces of three points or more."""
    total = sum(len(q) for q in pieces)
    return total > 0 and sum(len(q) for q in pieces if len(q) >= 3) >= 0.8 * total


def pareto_polyline(points, bounds) -> tuple[np.ndarray, np.ndarray]:
    """x, y of the pieces joined by NaN separators (one line trace draws them all)."""
    pieces = pareto_pieces(points, bounds)
    if not pieces:
        return np.empty(0), np.empty(0)
    sep = np.full((1, 2), np.nan)
    joined = np.concatenate([a for piece in pieces for a in (piece, sep)][:-1])
    return joined[:, 0], joined[:, 1]


# -- start grids and outcomes --------------------------------------------------------------------------
def regular_grid(x, y, decimals: int = 9):
    """(xs, ys, ix, iy) when the points (x[i], y[i]) fill a full regular lattice once each, else None."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    xs, ix = np.unique(np.round(x, decimals), return_inverse=True)
    ys, iy = np.unique(np.round(y, decimals), return_inverse=True)
    if len(xs) < 2 or len(ys) < 2 or len(xs) * len(ys) != len(x):
        return None
    if len(np.unique(iy * len(xs) + ix)) != len(x):
        return None
    return xs, ys, ix, iy


def distinct_points(points, bounds, cells: int = MARKER_CELLS) -> np.ndarray:
    """Indices (in the points' order) of one point per occupied cell of a ``cells`` x ``cells`` grid laid over the
    box ``bounds`` and continued beyond it; non-finite points are left out (nothing draws them).

    For drawing only: a map's box spans ~600 px, so two points in one cell are less than a pixel apart and draw the
    same dot. A dense grid's runs end in a few places (an optimum, stretches of the Pareto set): a 50 x 50 grid's
    20 000 end markers are 4 000-5 000 distinct dots on the toy landscapes, and each SVG marker costs the browser
    its own element and style."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    keep = np.flatnonzero(np.isfinite(p).all(1))
    if len(keep) == 0:
        return keep
    (x0, x1), (y0, y1) = bounds
    size = np.array([(x1 - x0) / cells, (y1 - y0) / cells])
    cell = np.floor((p[keep] - [x0, y0]) / size)
    _, first = np.unique(cell, axis=0, return_index=True)
    return keep[np.sort(first)]


# -- labels ----------------------------------------------------------------------------------------------------
def place_labels(anchors, directions, sizes, *, gap: float = 4.0, iterations: int = 50) -> np.ndarray:
    """Label boxes that do not overlap: each label sits just beyond its anchor (an arrow's tip, in pixels, y up),
    on the side its arrow points to, and labels that would overlap are pushed apart vertically.

    ``anchors[n, 2]`` and ``directions[n, 2]`` in pixels, ``sizes[n, 2]`` (width, height) in pixels. Returns the
    lower-left corners ``[n, 2]`` of the boxes. Greedy and deterministic: a box that overlaps an earlier-placed
    one moves up or down, whichever is the smaller move, until it is clear."""
    anchors = np.asarray(anchors, dtype=float).reshape(-1, 2)
    directions = np.asarray(directions, dtype=float).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=float).reshape(-1, 2)
    w, h = sizes[:, 0], sizes[:, 1]
    right = directions[:, 0] >= 0
    up = directions[:, 1] >= 0
    x = np.where(right, anchors[:, 0] + gap, anchors[:, 0] - gap - w)
    y = np.where(up, anchors[:, 1] + gap, anchors[:, 1] - gap - h)
    placed: list[int] = []
    for i in np.argsort(-np.hypot(*directions.T), kind="stable"):     # the longest arrow keeps its place
        for _ in range(iterations):
            hit = [j for j in placed if x[i] < x[j] + w[j] and x[j] < x[i] + w[i]
                   and y[i] < y[j] + h[j] and y[j] < y[i] + h[i]]
            if not hit:
                break
            j = hit[0]
            up_move = y[j] + h[j] + 1 - y[i]
            down_move = y[i] + h[i] + 1 - y[j]
            y[i] += up_move if up_move <= down_move else -down_move
        placed.append(int(i))
    return np.stack([x, y], 1)
