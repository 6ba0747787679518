"""What a run achieved: distance to the Pareto set, Pareto-stationarity, steps to reach, status, outcome.

Definitions (thresholds are module constants, stated in the README):

* ``pareto_distance``: Euclidean distance in theta to the landscape's numerical Pareto set.
* ``stationarity``: |min-norm point of conv{g_1..g_K}| at the final theta (0 at Pareto-stationary points).
* ``steps_to_pareto``: the first recorded step at which the run is within ``PARETO_EPS`` of the set
  (resolution: ``record_every``); ``optimum_step`` (from the engine): the first step within ``TARGET_EPS`` of
  a global minimiser of the weighted sum (exact, tracked every step).
* ``status``: ``diverged`` (theta went non-finite or beyond 1e6; frozen at its last finite value; step =
  the step it happened), ``converged`` (ends within ``PARETO_EPS`` of the Pareto set; step = when it
  entered for good), ``stalled`` (ends elsewhere but has stopped: within ``SETTLE_TOL`` of its final
  point over the last ``SETTLE_FRACTION`` of the run; step = when it settled), ``moving`` (still moving
  when the budget ran out).
* ``outcome`` (basin maps): ``optimum 1``/``optimum 2``... (ends within ``TARGET_EPS`` of that global
  minimiser), ``pareto`` (elsewhere on the set), ``stalled``, ``moving``, ``diverged``.
"""
from __future__ import annotations

import numpy as np

from landscapes.pareto import distance_to_set

PARETO_EPS = 0.1
TARGET_EPS = 0.1
SETTLE_TOL = 0.05
SETTLE_FRACTION = 0.1


def pareto_distance(land, theta, cap: float | None = None) -> np.ndarray:
    """Distance from each theta[..., 2] to the Pareto set.

    ``cap``: only distances up to ``cap`` need to be exact; points farther than ``cap`` from the set's
    bounding box get their distance to that box (a lower bound, still > ``cap``), which spares the exact
    search for most points of a long trajectory.
    """
    th = np.asarray(theta, dtype=float)
    flat = th.reshape(-1, 2)
    out = np.full(len(flat), np.inf)
    ok = np.isfinite(flat).all(1)
    pts = land.pareto.points
    if cap is not None and ok.any():
        lo, hi = pts.min(0), pts.max(0)
        box = np.linalg.norm(np.maximum(0, np.maximum(lo - flat, flat - hi)), axis=1)
        far = ok & (box > cap)
        out[far] = box[far]
        ok &= ~far
    if ok.any():
        out[ok] = distance_to_set(flat[ok], pts, curve=land.n_tasks == 2)
    return out.reshape(th.shape[:-1])


def min_norm_weights(G: np.ndarray, iters: int = 300) -> np.ndarray:
    """argmin_w |sum_k w_k g_k| over the simplex for G[N, K, D] (K = 2 exactly; else projected gradient)."""
    N, K, _ = G.shape
    if K == 2:
        a = (G[:, 0] ** 2).sum(-1)
        b = (G[:, 1] ** 2).sum(-1)
        c = (G[:, 0] * G[:, 1]).sum(-1)
        den = a + b - 2 * c
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.where(den > 0, (b - c) / den, 0.5)
        g = np.clip(np.nan_to_num(g, nan=0.5), 0, 1)
        return np.stack([g, 1 - g], 1)
    M = np.einsum("nkd,njd->nkj", G, G)
    w = np.full((N, K), 1.0 / K)
    step = 1.0 / np.maximum(np.trace(M, axis1=1, axis2=2), 1e-300)
    for _ in range(iters):
        w = _project_simplex(w - step[:, None] * np.einsum("nkj,nj->nk", M, w))
    return w


def _project_simplex(v: np.ndarray) -> np.ndarray:
    u = -np.sort(-v, axis=1)
    css = np.cumsum(u, axis=1) - 1
    idx = np.arange(1, v.shape[1] + 1)
    rho = (u - css / idx > 0).sum(1)
    tau = css[np.arange(len(v)), rho - 1] / rho
    return np.maximum(v - tau[:, None], 0)


def stationarity(land, theta, weights=None, scale: float = 1.0) -> np.ndarray:
    th = np.asarray(theta, dtype=float)
    flat = th.reshape(-1, 2)
    out = np.full(len(flat), np.nan)
    ok = np.isfinite(flat).all(1)
    if ok.any():
        G = land.grads_np(flat[ok], weights, scale)
        w = min_norm_weights(G)
        out[ok] = np.linalg.norm(np.einsum("nk,nkd->nd", w, G), axis=1)
    return out.reshape(th.shape[:-1])


def first_within(dist: np.ndarray, steps: np.ndarray, eps: float, stay: bool = False) -> np.ndarray:
    """First recorded step where dist[..., T] <= eps (``stay``: and stays so to the end); -1 if never."""
    inside = dist <= eps
    if stay:
        # inside from index i to the end <=> reversed cumulative "all"
        inside = np.flip(np.logical_and.accumulate(np.flip(inside, -1), axis=-1), -1)
    any_in = inside.any(-1)
    idx = inside.argmax(-1)
    return np.where(any_in, steps[idx], -1)


def classify(land, positions, record_steps, final, diverged_step, optimum_index, steps, path_distance=None):
    """Status, status step and outcome per run (arrays of shape [M, S]).

    ``path_distance[M, S, T]``: the Pareto distance of ``positions`` when already computed."""
    dist_final = pareto_distance(land, final)
    status = np.full(final.shape[:-1], "moving", dtype=object)
    status_step = np.full(final.shape[:-1], -1, dtype=np.int64)
    outcome = np.full(final.shape[:-1], "moving", dtype=object)
    T = positions.shape[-2] if positions is not None else 0
    if positions is not None and T > 1:
        to_final = np.linalg.norm(positions - final[..., None, :], axis=-1)
        settle_step = first_within(to_final, record_steps, SETTLE_TOL, stay=True)
        tail = max(1, int(np.ceil(SETTLE_FRACTION * T)))
        settled = np.nan_to_num(to_final[..., -tail:], nan=np.inf).max(-1) <= SETTLE_TOL
        pd = pareto_distance(land, positions, cap=PARETO_EPS) if path_distance is None else path_distance
        enter_step = first_within(pd, record_steps, PARETO_EPS, stay=True)
    else:
        settle_step = np.full(final.shape[:-1], steps)
        settled = np.ones(final.shape[:-1], bool)
        enter_step = np.full(final.shape[:-1], steps)
    conv = dist_final <= PARETO_EPS
    status[settled & ~conv] = "stalled"
    status_step[settled & ~conv] = settle_step[settled & ~conv]
    status[conv] = "converged"
    status_step[conv] = enter_step[conv]
    outcome[settled & ~conv] = "stalled"
    outcome[conv] = "pareto"
    for i in range(int(optimum_index.max(initial=-1)) + 1):
        outcome[optimum_index == i] = f"optimum {i + 1}"
    div = diverged_step >= 0
    status[div] = "diverged"
    status_step[div] = diverged_step[div]
    outcome[div] = "diverged"
    return status.astype(str), status_step, outcome.astype(str), dist_final


def optimum_index(land, final, weights_per_row, scale) -> np.ndarray:
    """Index of the global minimiser a run ends within TARGET_EPS of, or -1: [M, S]."""
    out = np.full(final.shape[:-1], -1, dtype=np.int64)
    for m, w in enumerate(weights_per_row):
        opt = land.optima(w, scale)
        d = np.linalg.norm(final[m][:, None, :] - opt[None], axis=-1)
        near = np.nan_to_num(d, nan=np.inf).min(1) <= TARGET_EPS
        out[m] = np.where(near, d.argmin(1) if len(opt) else -1, -1)
    return out
