"""Numerical Pareto sets of two-parameter landscapes.

The Pareto set does not change under positive task weights or a positive task scale, so it is computed
once per landscape at unit weights, by dense non-dominance filtering with successive zooms:

1. evaluate the losses on an n x n grid over the box and keep the non-dominated points
   (K = 2: sort by L1 and keep the strict running minima of L2; K > 2: a chunked pairwise test);
2. re-grid the bounding box of the survivors (padded by two cells) and filter again, merging the
   candidates of every level;
3. K = 2: a grid leaves a band a few cells thick (moving off the set costs both losses only to second
   order), so every candidate is projected by Newton's method onto the Pareto-critical curve
   cross(g1, g2) = 0 (with g1 . g2 <= 0), and the projected points are filtered for non-dominance again;
   the set is then ordered along the front and thinned evenly by arc length. For K > 2 the set is a
   region in the plane and the non-dominated grid points are kept as they are.
Works for any K >= 2 (``tests/test_landscapes.py`` checks the one- and two-optimum sets against
methods-spec.md §2).

Degenerate and slow landscapes (user-defined ones can be either) are answered, not waited for:

* for K = 2 the set is a curve, so a first grid on which more than ``REGION_SHARE`` of the points are
  non-dominated means the set is a region (tasks ``x1`` and ``-x1``: every point is Pareto-optimal): it is kept as
  every non-dominated point of the first grid (``ParetoSet.region``) with a ``note`` saying so, without zooms
  or projection;
* ``deadline`` (a ``time.monotonic()`` value) stops refining when the time is up and keeps what was found, with a
  note; ``progress(fraction, text)`` is told as the work advances; ``cancel()`` returning True stops it with
  :class:`Cancelled`;
* a weighted sum that is flat along the set (more than ``MAX_OPTIMA`` tied minimisers) has no isolated global
  minimiser: :func:`weighted_sum_minimisers` returns none, and "reached the optimum" does not apply there.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from .dominance import nondominated

REGION_SHARE = 0.2      # K = 2: more non-dominated grid points than this share means the set is a region
MAX_OPTIMA = 16         # more tied minimisers of the weighted sum than this: it is flat along the set


class Cancelled(RuntimeError):
    """The computation was cancelled (its ``cancel()`` returned True)."""


@dataclass(frozen=True)
class ParetoSet:
    points: np.ndarray     # [n, 2] theta on the Pareto set, ordered along the front
    front: np.ndarray      # [n, K] unit-weight losses there
    region: bool = False   # K = 2 but a region (degenerate): drawn as points, distances to the points
    note: str = ""         # what is special about it (degenerate, cut short by the time budget), for the page


def _cache_file(landscape):
    import hashlib
    import json
    from pathlib import Path
    root = Path(os.environ.get("GRADSCAPE_CACHE") or Path.home() / ".cache" / "gradscape") / "pareto"
    h = hashlib.sha256(json.dumps([landscape.key, getattr(landscape, "spec", None)], sort_keys=True,
                                  default=str).encode())
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return root / f"{landscape.key}-{h.hexdigest()[:20]}.npz"


def cached_pareto(landscape, **kw) -> ParetoSet:
    """compute_pareto, remembered on disk (keyed by the landscape's definition and this package's code).
    ``kw`` (deadline, progress, cancel) go to :func:`compute_pareto`; a set cut short by the deadline is not
    stored, so a later call without one computes it in full."""
    path = _cache_file(landscape)
    try:
        with np.load(path) as z:
            note = str(z["note"]) if "note" in z.files else ""
            region = bool(z["region"]) if "region" in z.files else False
            return ParetoSet(z["points"], z["front"], region, note)
    except (OSError, KeyError, ValueError):
        pass
    ps = compute_pareto(landscape, **kw)
    if ps.note.startswith(_SHORT):
        return ps
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, points=ps.points, front=ps.front, region=np.array(ps.region), note=np.array(ps.note))
        os.replace(tmp, path)
    except OSError:
        pass                 # a read-only cache is not an error
    return ps


_SHORT = "Computed to a coarser resolution"


def _losses(landscape, pts):
    F = landscape.losses_np(pts)
    ok = np.isfinite(F).all(1)
    return pts[ok], F[ok]


def _cross(landscape, pts: np.ndarray):
    """c = g1 x g2 (2-D cross product) and g1 . g2 at pts [n, 2]: the K = 2 Pareto-critical set is c = 0, dot <= 0."""
    G = landscape.grads_np(pts)
    c = G[:, 0, 0] * G[:, 1, 1] - G[:, 0, 1] * G[:, 1, 0]
    return c, (G[:, 0] * G[:, 1]).sum(1)


def _project_critical(landscape, pts: np.ndarray, iters: int = 40) -> np.ndarray:
    """Newton steps theta <- theta - c grad(c) / |grad(c)|^2 onto the zero set of the cross product.

    grad(c) by central differences; points that do not converge, or end where the gradients agree
    (dot > 0), are dropped.
    """
    p = pts.copy()
    h = 1e-6
    for _ in range(iters):
        c, _ = _cross(landscape, p)
        cx = (_cross(landscape, p + [h, 0])[0] - _cross(landscape, p - [h, 0])[0]) / (2 * h)
        cy = (_cross(landscape, p + [0, h])[0] - _cross(landscape, p - [0, h])[0]) / (2 * h)
        n2 = cx * cx + cy * cy
        with np.errstate(divide="ignore", invalid="ignore"):
            step = np.where(n2 > 0, c / n2, 0.0)
        step = np.clip(np.nan_to_num(step), -1.0, 1.0)
        p = p - np.stack([step * cx, step * cy], 1)
    c, dot = _cross(landscape, p)
    scale = np.abs(_cross(landscape, pts)[0]).max() + 1e-300
    ok = np.isfinite(p).all(1) & (np.abs(c) <= 1e-9 * scale) & (dot <= 0) & landscape.contains(p)
    return p[ok]


def _spread(P: np.ndarray, bounds, limit: int) -> np.ndarray:
    """At most ``limit`` points, spread evenly in space: one per cell of a lattice coarse enough."""
    cell = max(bounds[0][1] - bounds[0][0], bounds[1][1] - bounds[1][0]) / 2000
    while len(P) > limit:
        _, idx = np.unique(np.floor(P / cell).astype(np.int64), axis=0, return_index=True)
        P = P[np.sort(idx)]
        cell *= 1.5
    return P


def _thin(P: np.ndarray, F: np.ndarray, max_points: int):
    """Order along the front (by the first loss) and keep points spaced evenly along the path in theta."""
    order = np.lexsort((F[:, 1], F[:, 0]))
    P, F = P[order], F[order]
    if len(P) <= max_points:
        return P, F
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(P, axis=0), axis=1))])
    idx = np.unique(np.searchsorted(arc, np.linspace(0, arc[-1], max_points)).clip(0, len(P) - 1))
    return P[idx], F[idx]


def compute_pareto(landscape, n: int | None = None, levels: int = 3, max_points: int = 2000, *,
                   deadline: float | None = None, progress=None, cancel=None) -> ParetoSet:
    """The Pareto set: non-dominated grid points with zooms; for K = 2 projected onto the critical curve.
    ``deadline``/``progress``/``cancel``: see the module docstring."""
    n = n or 300
    (x0, x1), (y0, y1) = landscape.bounds
    P, F = np.empty((0, 2)), np.empty((0, landscape.n_tasks))
    box = (x0, x1, y0, y1)
    short = False

    def step(frac, text):
        if cancel is not None and cancel():
            raise Cancelled("cancelled")
        if progress is not None:
            progress(frac, text)

    for level in range(levels):
        step(0.1 + 0.5 * level / levels, f"non-dominated points, grid {level + 1} of {levels}")
        xs, ys = np.linspace(box[0], box[1], n), np.linspace(box[2], box[3], n)
        X, Y = np.meshgrid(xs, ys)
        pts, FF = _losses(landscape, np.stack([X.ravel(), Y.ravel()], 1))
        P, F = np.concatenate([P, pts]), np.concatenate([F, FF])
        keep = nondominated(F)
        P, F = P[keep], F[keep]
        if level == 0 and landscape.n_tasks == 2 and len(P) > REGION_SHARE * max(1, len(pts)):
            order = np.lexsort(F.T[::-1])      # every non-dominated grid point: distances to the set stay
            # accurate to the grid's half-diagonal (drawings thin the cloud themselves)
            share = len(np.flatnonzero(keep)) / max(1, len(pts))
            return ParetoSet(P[order], F[order], region=True,
                             note=f"The Pareto set covers much of the box ({share:.0%} of a {n} × {n} grid is "
                                  f"Pareto-optimal: the tasks do not trade off along a curve). It is drawn as points; "
                                  f"distances are to those points.")
        if deadline is not None and time.monotonic() > deadline:
            short = True
            break
        dx, dy = (box[1] - box[0]) / (n - 1), (box[3] - box[2]) / (n - 1)
        box = (max(x0, P[:, 0].min() - 2 * dx), min(x1, P[:, 0].max() + 2 * dx),
               max(y0, P[:, 1].min() - 2 * dy), min(y1, P[:, 1].max() + 2 * dy))
    if landscape.n_tasks == 2 and not (short and deadline is not None and time.monotonic() > deadline):
        step(0.7, "projecting onto the critical curve")
        P = _spread(P, landscape.bounds, 3000)
        ends = np.array([_polish(landscape, P[np.argmin(landscape.losses_np(P)[:, k])], None, 1.0,
                                 task=k)[0] for k in range(2)])
        proj = np.concatenate([_project_critical(landscape, P), ends])
        if len(proj):
            pts, FF = _losses(landscape, proj)
            F = landscape.losses_np(P)
            allP, allF = np.concatenate([P, pts]), np.concatenate([F, FF])
            keep = nondominated(allF)
            from_proj = np.arange(len(allP)) >= len(P)
            sel = keep & from_proj
            if sel.sum() >= 2:
                P, F = allP[sel], allF[sel]
        P, F = _thin(P, F, max_points)
    elif landscape.n_tasks == 2:
        P, F = _thin(P, F, max_points)
    else:
        if len(P) > 20 * max_points:
            idx = np.random.default_rng(0).choice(len(P), 20 * max_points, replace=False)
            P, F = P[idx], F[idx]
        order = np.lexsort(F.T[::-1])
        P, F = P[order], F[order]
    step(1.0, "done")
    return ParetoSet(P, F, note=f"{_SHORT} (the time budget ran out before the last refinement)." if short else "")


def distance_to_set(theta: np.ndarray, points: np.ndarray, curve: bool = True, max_seg: float = 0.25) -> np.ndarray:
    """Euclidean distance from each theta[N, 2] to a Pareto set given as points[n, 2].

    The nearest vertex comes from a k-d tree (scipy); for a curve (K = 2, points ordered along it) the
    distance is then refined to the two polyline segments at that vertex (segments longer than
    ``max_seg`` are gaps of a disconnected set and are not bridged).
    """
    from scipy.spatial import cKDTree

    theta = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
    pts = np.asarray(points, dtype=np.float64)
    if len(theta) == 0:
        return np.empty(0)
    d, j = cKDTree(pts).query(theta)
    n = len(pts)
    if curve and n > 1:
        for lo in (j - 1, j):
            lo = np.clip(lo, 0, n - 2)
            a, ab = pts[lo], pts[lo + 1] - pts[lo]
            l2 = (ab * ab).sum(1)
            u = np.clip(((theta - a) * ab).sum(1) / np.maximum(l2, 1e-300), 0, 1)
            ds = np.linalg.norm(theta - (a + u[:, None] * ab), axis=1)
            d = np.where(np.sqrt(l2) <= max_seg, np.minimum(d, ds), d)
    return d


FIELD_MIN_POINTS = 20_000   # from this many points a decision "within eps?" looks up a distance field first
FIELD_NODES = 2 ** 18       # the field's nodes at most; its cell is eps / 8 where that keeps to this
_FIELDS: dict = {}          # (points' bytes, eps) -> (origin, cell, vertex distances[nx, ny]); a few


def within(theta: np.ndarray, points: np.ndarray, eps: float, curve: bool = True,
           max_seg: float = 0.25) -> np.ndarray:
    """``distance_to_set(theta, points, curve, max_seg) <= eps`` for each theta[N, 2]: the same booleans, cheaper.

    For many points (runs' whole recorded paths) the distance to the nearest *vertex*, d_v, is looked up on a grid
    around the set, computed once and kept for the next call. d_v is 1-Lipschitz, so at a point p whose nearest
    grid node is c, d_v(p) lies within |p - c| of d_v(c). The set's distance d (``distance_to_set``) is at most d_v
    and at least d_v - L/2 (L: the longest segment it bridges; 0 for points): p is inside when
    d_v(c) + |p - c| <= eps, outside when d_v(c) - |p - c| - L/2 > eps (1e-9 of margin for rounding both ways), and
    only the points between get d itself. A point off the grid, which covers the set's bounding box widened by
    more than eps, is outside. Few points: d for each.
    """
    theta = np.asarray(theta, dtype=np.float64).reshape(-1, 2)
    pts = np.asarray(points, dtype=np.float64)
    out = np.zeros(len(theta), dtype=bool)
    ok = np.isfinite(theta).all(1)
    if not len(pts) or not ok.any():
        return out
    if ok.sum() < FIELD_MIN_POINTS:
        out[ok] = distance_to_set(theta[ok], pts, curve, max_seg) <= eps
        return out
    seg = np.hypot(*np.diff(pts, axis=0).T) if curve and len(pts) > 1 else np.zeros(0)
    half = float(seg[seg <= max_seg].max(initial=0.0)) / 2
    origin, cell, field = _vertex_field(pts, eps)
    tok = theta[ok]
    idx = np.rint((tok - origin) / cell)
    on_grid = ((idx >= 0) & (idx < field.shape)).all(1)
    res = np.zeros(len(tok), dtype=bool)
    if on_grid.any():
        p = tok[on_grid]
        i = idx[on_grid].astype(np.int64)
        d_node = field[i[:, 0], i[:, 1]]
        r = np.hypot(*(p - (origin + i * cell)).T)
        sure_in = d_node + r <= eps - 1e-9
        unsure = ~sure_in & (d_node - r - half <= eps + 1e-9)
        if unsure.any():
            sure_in[unsure] = distance_to_set(p[unsure], pts, curve, max_seg) <= eps
        res[on_grid] = sure_in
    out[ok] = res
    return out


def _vertex_field(pts: np.ndarray, eps: float):
    """Distances to the nearest of ``pts`` at the nodes of a grid covering their box widened by eps + 2 cells."""
    from scipy.spatial import cKDTree

    key = (pts.tobytes(), pts.shape, eps)
    hit = _FIELDS.get(key)
    if hit is None:
        lo, hi = pts.min(0), pts.max(0)
        w, h = hi - lo + 2.5 * eps
        cell = max(eps / 8, float(np.sqrt(w * h / FIELD_NODES)))
        margin = eps + 2 * cell            # every point within eps of the set rounds to a node of the grid
        origin = lo - margin
        n = np.ceil((hi - lo + 2 * margin) / cell).astype(int) + 1
        gx, gy = np.meshgrid(origin[0] + np.arange(n[0]) * cell, origin[1] + np.arange(n[1]) * cell, indexing="ij")
        d = cKDTree(pts).query(np.stack([gx.ravel(), gy.ravel()], 1))[0].reshape(n)
        if len(_FIELDS) >= 8:
            _FIELDS.clear()
        hit = _FIELDS[key] = (origin, cell, d)
    return hit


def weighted_sum_minimisers(landscape, weights=None, scale: float = 1.0, rel_tol: float = 1e-4) -> np.ndarray:
    """Minimisers of sum_k w_k L_k: every local minimum along the Pareto set within ``rel_tol`` of the best.

    Each candidate is polished by a local grid descent, so the result is accurate to ~1e-8. More than
    ``MAX_OPTIMA`` tied candidates mean the sum is flat along the set (no isolated minimiser): none is returned
    (an empty [0, 2] array)."""
    pts = landscape.pareto.points
    if not len(pts):
        return np.empty((0, 2))
    s = landscape.losses_np(pts, weights, scale).sum(1)
    best = s.min()
    tol = rel_tol * max(1.0, abs(best))
    # local minima along the ordered set
    left = np.concatenate([[np.inf], s[:-1]])
    right = np.concatenate([s[1:], [np.inf]])
    cand = np.where((s <= left) & (s <= right) & (s <= best + tol))[0]
    if getattr(landscape.pareto, "region", False):
        cand = np.flatnonzero(s <= best + tol)
    # candidates close together are one minimiser found several times (a region's set is not ordered along a
    # curve): keep the best of each cluster; many clusters apart mean the sum is flat along the set
    (x0, x1), (y0, y1) = landscape.bounds
    radius = 0.02 * float(np.hypot(x1 - x0, y1 - y0))
    reps: list[int] = []
    for i in cand[np.argsort(s[cand], kind="stable")]:
        if not any(np.hypot(*(pts[i] - pts[j])) < radius for j in reps):
            reps.append(int(i))
            if len(reps) > MAX_OPTIMA:
                return np.empty((0, 2))
    polished = [_polish(landscape, pts[i], weights, scale) for i in sorted(reps)]     # in the set's order
    vals = np.array([v for _, v in polished])
    keep_tol = 1e-7 * max(1.0, abs(vals.min()))
    found = []
    for (p, v) in polished:
        if v <= vals.min() + keep_tol and not any(np.hypot(*(p - q)) < 1e-2 for q in found):
            found.append(p)
    return np.array(found).reshape(-1, 2)


def _polish(landscape, p, weights, scale, h: float = 0.05, task: int | None = None):
    """Local grid descent on the weighted sum (or on one task's loss): recentre until the best point is
    interior, then zoom."""
    p = np.asarray(p, dtype=float)
    g = np.linspace(-1.0, 1.0, 21)
    for _ in range(60):
        X, Y = np.meshgrid(p[0] + h * g, p[1] + h * g)
        loc = np.stack([X.ravel(), Y.ravel()], 1)
        F = landscape.losses_np(loc, weights, scale)
        v = F.sum(1) if task is None else F[:, task]
        i = int(np.nanargmin(v))
        p, best = loc[i], float(v[i])
        r, c = divmod(i, len(g))
        if 0 < r < len(g) - 1 and 0 < c < len(g) - 1:
            h /= 10
            if h < 1e-9:
                break
    return p, best
