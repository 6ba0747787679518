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
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from .dominance import nondominated


@dataclass(frozen=True)
class ParetoSet:
    points: np.ndarray     # [n, 2] theta on the Pareto set, ordered along the front
    front: np.ndarray      # [n, K] unit-weight losses there


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


def cached_pareto(landscape) -> ParetoSet:
    """compute_pareto, remembered on disk (keyed by the landscape's definition and this package's code)."""
    path = _cache_file(landscape)
    try:
        with np.load(path) as z:
            return ParetoSet(z["points"], z["front"])
    except (OSError, KeyError, ValueError):
        pass
    ps = compute_pareto(landscape)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, points=ps.points, front=ps.front)
        os.replace(tmp, path)
    except OSError:
        pass                 # a read-only cache is not an error
    return ps


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


def compute_pareto(landscape, n: int | None = None, levels: int = 3, max_points: int = 2000) -> ParetoSet:
    """The Pareto set: non-dominated grid points with zooms; for K = 2 projected onto the critical curve."""
    n = n or 300
    (x0, x1), (y0, y1) = landscape.bounds
    P, F = np.empty((0, 2)), np.empty((0, landscape.n_tasks))
    box = (x0, x1, y0, y1)
    for _ in range(levels):
        xs, ys = np.linspace(box[0], box[1], n), np.linspace(box[2], box[3], n)
        X, Y = np.meshgrid(xs, ys)
        pts, FF = _losses(landscape, np.stack([X.ravel(), Y.ravel()], 1))
        P, F = np.concatenate([P, pts]), np.concatenate([F, FF])
        keep = nondominated(F)
        P, F = P[keep], F[keep]
        dx, dy = (box[1] - box[0]) / (n - 1), (box[3] - box[2]) / (n - 1)
        box = (max(x0, P[:, 0].min() - 2 * dx), min(x1, P[:, 0].max() + 2 * dx),
               max(y0, P[:, 1].min() - 2 * dy), min(y1, P[:, 1].max() + 2 * dy))
    if landscape.n_tasks == 2:
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
    else:
        if len(P) > 20 * max_points:
            idx = np.random.default_rng(0).choice(len(P), 20 * max_points, replace=False)
            P, F = P[idx], F[idx]
        order = np.lexsort(F.T[::-1])
        P, F = P[order], F[order]
    return ParetoSet(P, F)


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


def weighted_sum_minimisers(landscape, weights=None, scale: float = 1.0, rel_tol: float = 1e-4) -> np.ndarray:
    """Minimisers of sum_k w_k L_k: every local minimum along the Pareto set within ``rel_tol`` of the best.

    Each candidate is polished by a local grid descent, so the result is accurate to ~1e-8.
    """
    pts = landscape.pareto.points
    s = landscape.losses_np(pts, weights, scale).sum(1)
    best = s.min()
    tol = rel_tol * max(1.0, abs(best))
    # local minima along the ordered set
    left = np.concatenate([[np.inf], s[:-1]])
    right = np.concatenate([s[1:], [np.inf]])
    cand = np.where((s <= left) & (s <= right) & (s <= best + tol))[0]
    polished = [_polish(landscape, pts[i], weights, scale) for i in cand]
    vals = np.array([v for _, v in polished])
    keep_tol = 1e-7 * max(1.0, abs(vals.min()))
    found = []
    for (p, v) in polished:
        if v <= vals.min() + keep_tol and not any(np.hypot(*(p - q)) < 1e-2 for q in found):
            found.append(p)
    return np.array(found)


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
