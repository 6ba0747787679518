"""Start points: presets, explicit lists, grids and random draws, all checked against the landscape's box.

Specs (the CLI's ``--starts``, the URL's ``starts``, job configs):

* a preset name of the landscape (``paper``, ``nashmtl``, ``cagrad`` ...);
* explicit points ``"-8,5;3,7.5"``;
* ``grid:N`` (an N x N grid over the box, x fastest; the box edges included);
* ``random:N`` or ``random:N:SEED`` (uniform in the box).

The text is parsed by ``trajectories/specs.py`` (:class:`~trajectories.specs.StartSpec`, the one parser every face
uses); this module turns a parsed spec into points and checks them against the box.
"""
from __future__ import annotations

import numpy as np

from .specs import MAX_STARTS, StartSpec


def resolve(landscape, spec) -> np.ndarray:
    """Start points [S, 2] (float64) for a spec string or an array-like; ``ValueError`` names the problem."""
    if isinstance(spec, str):
        pts = _parse(landscape, spec.strip())
    else:
        try:
            pts = np.asarray(spec, dtype=float)
        except (TypeError, ValueError, OverflowError):
            raise ValueError("starts: expected points as [[x, y], ...]") from None
        if pts.ndim == 1 and pts.size == 2:
            pts = pts[None]
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"starts: expected an array of shape [S, 2], got {list(pts.shape)}")
    if len(pts) == 0:
        raise ValueError("starts: no start points")
    if len(pts) > MAX_STARTS:
        raise ValueError(f"starts: {len(pts)} start points is over the limit of {MAX_STARTS}")
    if not np.isfinite(pts).all():
        raise ValueError("starts: every coordinate must be a finite number (found NaN or infinity)")
    inside = landscape.contains(pts)
    if not inside.all():
        bad = pts[~inside][0]
        (x0, x1), (y0, y1) = landscape.bounds
        raise ValueError(f"starts: ({bad[0]:g}, {bad[1]:g}) is outside the box "
                         f"[{x0:g}, {x1:g}] x [{y0:g}, {y1:g}] of {landscape.key}")
    return pts


def points_of(landscape, spec: StartSpec) -> np.ndarray:
    """The points a parsed spec gives on ``landscape`` (not yet checked against its box)."""
    if spec.kind == "preset":
        return np.array(landscape.presets[spec.name].points, dtype=float)
    if spec.kind == "grid":
        n = spec.n
        return landscape.grid(n)[2] if n > 1 else np.array([[np.mean(landscape.bounds[0]),
                                                               np.mean(landscape.bounds[1])]])
    if spec.kind == "random":
        (x0, x1), (y0, y1) = landscape.bounds
        r = np.random.default_rng(spec.seed)
        return np.stack([r.uniform(x0, x1, spec.n), r.uniform(y0, y1, spec.n)], 1)
    return np.array(spec.points, dtype=float).reshape(-1, 2)


def _parse(landscape, spec: str) -> np.ndarray:
    return points_of(landscape, StartSpec.parse(spec, landscape.presets))
