"""Start points: presets, explicit lists, grids and random draws, all checked against the landscape's box.

Specs (the CLI's ``--starts``, the URL's ``starts``, job configs):

* a preset name of the landscape (``paper``, ``nashmtl``, ``cagrad`` ...);
* explicit points ``"-8,5;3,7.5"``;
* ``grid:N`` (an N x N grid over the box, x fastest; the box edges included);
* ``random:N`` or ``random:N:SEED`` (uniform in the box).
"""
from __future__ import annotations

import numpy as np

MAX_STARTS = 1_000_000


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


def _int(text: str, what: str, hi: int) -> int:
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"starts: {what} must be a whole number, got {text!r}") from None
    if not 1 <= n <= hi:
        raise ValueError(f"starts: {what} must be between 1 and {hi}, got {n}")
    return n


def _parse(landscape, spec: str) -> np.ndarray:
    if spec in landscape.presets:
        return np.array(landscape.presets[spec].points, dtype=float)
    if spec.startswith("grid:"):
        n = _int(spec[5:], "the grid size N of grid:N", 1000)
        return landscape.grid(n)[2] if n > 1 else np.array([[np.mean(landscape.bounds[0]),
                                                               np.mean(landscape.bounds[1])]])
    if spec.startswith("random:"):
        parts = spec.split(":")
        n = _int(parts[1], "the count N of random:N", MAX_STARTS)
        seed = _int(parts[2], "the seed of random:N:SEED", 2 ** 31) if len(parts) > 2 else 0
        (x0, x1), (y0, y1) = landscape.bounds
        r = np.random.default_rng(seed)
        return np.stack([r.uniform(x0, x1, n), r.uniform(y0, y1, n)], 1)
    pts = []
    for item in spec.split(";"):
        item = item.strip()
        if not item:
            continue
        xy = item.split(",")
        if len(xy) != 2:
            known = ", ".join(landscape.presets)
            raise ValueError(f"starts: cannot read {item!r}: expected 'x,y' pairs separated by ';', "
                             f"a preset ({known}), grid:N or random:N")
        try:
            pts.append((float(xy[0]), float(xy[1])))
        except ValueError:
            raise ValueError(f"starts: {item!r} is not a pair of numbers") from None
    return np.array(pts, dtype=float).reshape(-1, 2)
