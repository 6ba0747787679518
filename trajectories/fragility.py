"""How fragile is a run? A ring of nudged starts and a float64 run, judged by the rule of the reference data.

The reference trajectories (``../shared/reference/README.md``) call a run *robust* when runs from starts moved by
1e-4 and the same run in float64 all end within 0.02 of it and stay within 0.05 of its path at every recorded
step; otherwise it is *sensitive*: it sits where paths split (a ridge, the gates' kink, a float32 coin-flip on a
symmetric start) and only its outcome can be compared. Published toy figures draw one path per start and so
hide which of their runs are which. This module makes it visible:

* :func:`ring` places ``n`` starts on a circle of ``radius`` around each start (angles 2πj/n; a point outside the
  landscape's box is replaced by the centre and left out of the statistics);
* :func:`cloud_configs` gives the two engine configs of a method's cloud: float32 runs from each start *and* its
  ring (the run itself is member 0, so it is computed in the same call), and the float64 runs from the starts;
* :func:`assess` turns the two Results into per-start statistics (:class:`Fragility`): the share of each outcome
  over the nudged runs and the float64 run, whether the outcome flips, how far the ends and the paths spread, and
  the verdict by the reference's rule.

The engine calls themselves are the caller's (the Explore page caches them like its other engine calls).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

END_TOL = 0.02          # the reference README's rule: ends within this of the run ...
PATH_TOL = 0.05         # ... and paths within this at every recorded step
RADIUS = 1e-4           # the reference data's nudge
RING = 64               # nudged starts per start


def ring(starts, n: int = RING, radius: float = RADIUS, bounds=None) -> tuple[np.ndarray, np.ndarray]:
    """(points[S, n, 2], inside[S, n]): ``n`` starts on a circle of ``radius`` around each start. A point outside
    ``bounds`` ((x0, x1), (y0, y1)) is replaced by its centre and marked False in ``inside``."""
    starts = np.asarray(starts, dtype=float).reshape(-1, 2)
    if not (isinstance(n, (int, np.integer)) and n >= 1):
        raise ValueError(f"ring: the number of nudged starts must be a whole number >= 1, got {n!r}")
    if not (math.isfinite(radius) and radius > 0):
        raise ValueError(f"radius: must be a positive number, got {radius!r}")
    phi = 2 * np.pi * np.arange(n) / n
    pts = starts[:, None, :] + radius * np.stack([np.cos(phi), np.sin(phi)], -1)[None]
    inside = np.ones(pts.shape[:2], bool)
    if bounds is not None:
        (x0, x1), (y0, y1) = bounds
        inside = (pts[..., 0] >= x0) & (pts[..., 0] <= x1) & (pts[..., 1] >= y0) & (pts[..., 1] <= y1)
        pts = np.where(inside[..., None], pts, starts[:, None, :])
    return pts, inside


def cloud_starts(starts, n: int = RING, radius: float = RADIUS, bounds=None) -> tuple[np.ndarray, np.ndarray]:
    """(points[S * (1 + n), 2], inside[S, n]): each start followed by its ring (the float32 call's starts)."""
    starts = np.asarray(starts, dtype=float).reshape(-1, 2)
    pts, inside = ring(starts, n, radius, bounds)
    return np.concatenate([starts[:, None, :], pts], 1).reshape(-1, 2), inside


def cloud_configs(cfg, starts, n: int = RING, radius: float = RADIUS, *, record_every: int | None = None):
    """The engine configs of one method's cloud around ``starts``: (float32 runs from every start and its ring,
    float64 runs from the starts). ``cfg``: a one-method ``trajectories.Config`` whose other settings the cloud
    keeps (pipeline, optimiser, lr, steps, hyperparameters, weights, seed); positions only are recorded."""
    from .config import Config
    if len(cfg.methods) != 1:
        raise ValueError("methods: a cloud is computed for one method at a time")
    land = cfg.land
    pts, _ = cloud_starts(starts, n, radius, land.bounds)
    base = cfg.to_dict()
    base.update(record=["positions"], starts_spec="", record_every=int(record_every or cfg.record_every))
    c32 = Config.from_dict({**base, "starts": pts.tolist(), "dtype": "float32"})
    c64 = Config.from_dict({**base, "starts": np.asarray(starts, dtype=float).reshape(-1, 2).tolist(),
                            "dtype": "float64"})
    return c32, c64


@dataclass
class Fragility:
    """Per start (arrays of length S) of one method's cloud; ``shares`` per start: {outcome: share}."""

    starts: np.ndarray              # [S, 2]
    outcome: np.ndarray             # [S]: the run's own outcome (float32, unperturbed)
    shares: list                    # [S] dicts outcome -> share of the nudged runs and the float64 run
    flips: np.ndarray               # [S] bool: some nudged run or the float64 run ends in another outcome
    end_spread: np.ndarray          # [S]: the largest distance of a cloud run's end from the run's end
    path_spread: np.ndarray         # [S]: the largest distance from the run's path at a recorded step
    robust: np.ndarray              # [S] bool: the reference's rule
    members: np.ndarray             # [S]: runs judged (nudged runs inside the box + the float64 run)
    float64_outcome: np.ndarray     # [S]


def _gap(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| over the last axis; a non-finite point (a diverged run) is infinitely far."""
    d = np.linalg.norm(a - b, axis=-1)
    return np.where(np.isfinite(d), d, np.inf)


def assess(r32, r64, n: int, inside: np.ndarray | None = None, row: int = 0) -> Fragility:
    """The per-start statistics of a cloud: ``r32`` the float32 Result of :func:`cloud_configs` (each start then
    its ``n`` nudged starts), ``r64`` the float64 Result, ``row`` the variant row of both."""
    S = r64.shape[1]
    if r32.shape[1] != S * (1 + n):
        raise ValueError(f"cloud: expected {S * (1 + n)} float32 runs ({S} starts x (1 + {n})), got {r32.shape[1]}")
    inside = np.ones((S, n), bool) if inside is None else np.asarray(inside, bool)
    out32 = r32.outcome[row].reshape(S, 1 + n)
    own, nudged = out32[:, 0], out32[:, 1:]
    fin = r32.final[row].reshape(S, 1 + n, 2)
    f64_out = r64.outcome[row]
    end = np.concatenate([_gap(fin[:, 1:], fin[:, :1]), _gap(r64.final[row], fin[:, 0])[:, None]], 1)
    mask = np.concatenate([inside, np.ones((S, 1), bool)], 1)
    end_spread = np.where(mask, end, 0.0).max(1)
    if r32.positions is not None and r64.positions is not None:
        P = r32.positions[row].astype(np.float64).reshape(S, 1 + n, -1, 2)
        P64 = r64.positions[row].astype(np.float64)
        path = np.concatenate([_gap(P[:, 1:], P[:, :1]).max(-1), _gap(P64, P[:, 0]).max(-1)[:, None]], 1)
        path_spread = np.where(mask, path, 0.0).max(1)
    else:
        path_spread = np.full(S, np.nan)
    shares, flips = [], np.zeros(S, bool)
    for s in range(S):
        members = np.concatenate([nudged[s][inside[s]], [f64_out[s]]])
        names, counts = np.unique(members.astype(str), return_counts=True)
        order = np.argsort(-counts, kind="stable")
        shares.append({str(names[i]): float(counts[i]) / len(members) for i in order})
        flips[s] = bool((members != own[s]).any())
    robust = (end_spread <= END_TOL) & (np.nan_to_num(path_spread, nan=0.0) <= PATH_TOL)
    return Fragility(starts=np.asarray(r64.starts, dtype=float), outcome=own.astype(str), shares=shares, flips=flips,
                     end_spread=end_spread, path_spread=path_spread, robust=robust,
                     members=mask.sum(1), float64_outcome=f64_out.astype(str))


def run_steps(cfg, n_starts: int, n: int) -> int:
    """Run-steps of a cloud over ``n_starts`` starts for every method variant of ``cfg`` (the page's budget)."""
    return len(cfg.variants()) * n_starts * (n + 2) * int(cfg.steps)
