"""What a run achieved: distance to the Pareto set, Pareto-stationarity, steps to reach, how it ended, outcome.

A run is classified from the run itself — the engine tracks every step, whatever ``record_every`` is — never
from the recorded points alone (thresholds are module constants, stated in the README):

* ``pareto_distance``: Euclidean distance in theta from the run's last finite point to the numerical Pareto set.
* ``stationarity``: |min-norm point of conv{g_1..g_K}| at the final theta (0 at Pareto-stationary points).
* ``optimum_step`` (from the engine, exact): the first step within ``TARGET_EPS`` of a global minimiser of the
  weighted sum. ``steps_to_pareto``: the first *recorded* step within ``PARETO_EPS`` of the set (resolution:
  ``record_every``; -1 if never).
* ``status``, how the run ended (codes in ``STATUSES``): ``nan`` (theta turned NaN; the engine froze the run at
  its last finite point and ``status_step`` is the step) or ``blowup`` (theta left |theta| < 1e6 or became
  infinite), each with where it happened when that was at a global minimiser or on the Pareto set
  (``nan:optimum``, ``nan:pareto``, ``blowup:optimum``, ...); else ``settled`` (every position over the last
  ``SETTLE_FRACTION`` of the steps lies within ``SETTLE_TOL`` of the final one — the engine keeps the box
  these positions span, at every step; ``status_step``: the first recorded step from which it stays there) or
  ``moving``.
* ``outcome``, what the run reached first (codes in ``OUTCOMES``): ``optimum k`` (it came within ``TARGET_EPS``
  of global minimiser k: a run that ends there, or one that got there and then turned NaN or blew up — that run
  counts as having reached it, its ``status`` says what happened next), ``pareto`` (it ends, or its last finite
  point lies, within ``PARETO_EPS`` of the Pareto set, not at an optimum), ``stalled`` (settled elsewhere),
  ``moving`` (still moving when the steps ran out), ``blowup`` or ``nan`` (before reaching either).
  ``optimum_index`` is k - 1 for ``optimum k``, else -1.

These are codes; their words, order and colours for people live with the figures (``figures/vocabulary.py``).
Results saved by earlier versions (``converged``/``diverged``) are read through :func:`upgrade`.
"""
from __future__ import annotations

import math

import numpy as np

from landscapes.pareto import distance_to_set, within

PARETO_EPS = 0.1
TARGET_EPS = 0.1
SETTLE_TOL = 0.05
SETTLE_FRACTION = 0.1


def pareto_distance(land, theta) -> np.ndarray:
    """Distance from each theta[..., 2] to the Pareto set (inf where theta is not finite)."""
    th = np.asarray(theta, dtype=float)
    flat = th.reshape(-1, 2)
    out = np.full(len(flat), np.inf)
    ok = np.isfinite(flat).all(1)
    if ok.any():
        out[ok] = distance_to_set(flat[ok], land.pareto.points, curve=_is_curve(land))
    return out.reshape(th.shape[:-1])


def within_pareto(land, theta, eps: float = PARETO_EPS) -> np.ndarray:
    """``pareto_distance(land, theta) <= eps``, decided without every exact distance (``landscapes.pareto.within``:
    a distance field for long paths)."""
    th = np.asarray(theta, dtype=float)
    return within(th.reshape(-1, 2), land.pareto.points, eps, curve=_is_curve(land)).reshape(th.shape[:-1])


def _is_curve(land) -> bool:
    return land.n_tasks == 2 and not getattr(land.pareto, "region", False)


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
    return first_true(dist <= eps, steps, stay)


def first_true(inside: np.ndarray, steps: np.ndarray, stay: bool = False) -> np.ndarray:
    """First recorded step where inside[..., T] holds (``stay``: and holds to the end); -1 if never."""
    if stay:
        # inside from index i to the end <=> reversed cumulative "all"
        inside = np.flip(np.logical_and.accumulate(np.flip(inside, -1), axis=-1), -1)
    any_in = inside.any(-1)
    idx = inside.argmax(-1)
    return np.where(any_in, steps[idx], -1)


OUTCOMES = ("optimum", "pareto", "stalled", "moving", "blowup", "nan")     # "optimum" is "optimum 1", "optimum 2" ...
STATUSES = ("settled", "moving", "nan", "blowup")                           # "nan" / "blowup" may carry ":optimum" / ":pareto"


def tail_start(steps: int) -> int:
    """The first step of the tail over which a run must stay put to count as settled."""
    return int(steps) - max(1, math.ceil(SETTLE_FRACTION * int(steps)))


def died(status) -> np.ndarray:
    """Runs that turned NaN or blew up (``status`` codes)."""
    s = np.asarray(status).astype(str)
    return np.char.startswith(s, "nan") | np.char.startswith(s, "blowup")


def settled_in_tail(final, lo, hi) -> np.ndarray:
    """Whether the box [lo, hi] spanned by a run's positions over its tail lies within SETTLE_TOL of its final
    point (so does every position of the tail). A box never filled (the tail not reached) is not settled."""
    final, lo, hi = (np.asarray(a, dtype=float) for a in (final, lo, hi))
    with np.errstate(invalid="ignore"):
        far = np.sqrt((np.maximum(np.abs(final - lo), np.abs(hi - final)) ** 2).sum(-1))
    return np.isfinite(far) & (far <= SETTLE_TOL)


def nearest_optimum(land, final, weights_per_row, scale) -> tuple[np.ndarray, np.ndarray]:
    """(index, distance) of the global minimiser nearest to each final point: [M, S] each."""
    idx = np.full(final.shape[:-1], -1, dtype=np.int64)
    dist = np.full(final.shape[:-1], np.inf)
    for m, w in enumerate(weights_per_row):
        opt = land.optima(w, scale)
        if not len(opt):
            continue
        d = np.nan_to_num(np.linalg.norm(final[m][:, None, :] - opt[None], axis=-1), nan=np.inf)
        idx[m], dist[m] = d.argmin(1), d.min(1)
    return idx, dist


def optimum_index(land, final, weights_per_row, scale) -> np.ndarray:
    """Index of the global minimiser a point lies within TARGET_EPS of, or -1: [M, S]."""
    idx, dist = nearest_optimum(land, final, weights_per_row, scale)
    return np.where(dist <= TARGET_EPS, idx, -1)


def classify(*, final_pareto_distance, nearest, nearest_distance, hit, diverged_step, nan, settled):
    """(status, outcome, optimum_index) per run ([M, S] each) from what the engine tracked.

    ``nearest`` / ``nearest_distance``: the global minimiser nearest to the run's last finite point;
    ``hit``: the engine's first step within TARGET_EPS of a minimiser (-1: never); ``diverged_step``: the step
    it turned NaN or blew up (-1: never), ``nan``: whether it was NaN; ``settled``: the tail test."""
    dead = np.asarray(diverged_step) >= 0
    at_opt = np.asarray(nearest_distance) <= TARGET_EPS
    on_set = np.asarray(final_pareto_distance) <= PARETO_EPS
    # a run that ends finite is judged by where it ends; one that died, by what it had reached before
    reached = at_opt | (dead & (np.asarray(hit) >= 0))
    opt_idx = np.where(reached, nearest, -1).astype(np.int64)
    shape = opt_idx.shape
    how = np.where(np.asarray(nan, dtype=bool), "nan", "blowup")
    where = np.where(at_opt, ":optimum", np.where(on_set, ":pareto", ""))
    status = np.where(dead, np.char.add(how.astype(str), where.astype(str)),
                      np.where(settled, "settled", "moving")).astype(str)
    outcome = np.full(shape, "moving", dtype=object)
    outcome[~dead & settled] = "stalled"
    outcome[dead] = how[dead]
    outcome[on_set] = "pareto"
    for i in range(int(opt_idx.max(initial=-1)) + 1):
        outcome[opt_idx == i] = f"optimum {i + 1}"
    return status.reshape(shape), outcome.astype(str).reshape(shape), opt_idx


def settle_step(positions, record_steps, final) -> np.ndarray:
    """The first recorded step from which a run stays within SETTLE_TOL of its final point (-1: unknown)."""
    if positions is None or positions.shape[-2] < 2:
        return np.full(np.asarray(final).shape[:-1], -1, dtype=np.int64)
    to_final = np.linalg.norm(positions - np.asarray(final)[..., None, :], axis=-1)
    return first_within(np.nan_to_num(to_final, nan=np.inf), np.asarray(record_steps), SETTLE_TOL, stay=True)


LEGACY_STATUS = {"converged": "settled", "stalled": "settled", "moving": "moving", "diverged": "nan"}


def upgrade(status, outcome):
    """Codes of Results and job files saved by earlier versions (status converged/stalled/moving/diverged,
    outcome ... diverged) in today's terms. A run they called diverged turned NaN or blew up — which, they did
    not record: it is read as NaN, the common case, and its outcome stays what it was (``diverged`` maps to
    ``nan``)."""
    status = np.asarray(status).astype(str)
    outcome = np.asarray(outcome).astype(str)
    if not np.isin(status, list(LEGACY_STATUS)).any() and not (outcome == "diverged").any():
        return status, outcome
    status = np.vectorize(lambda s: LEGACY_STATUS.get(s, s), otypes=[str])(status) if status.size else status
    outcome = np.where(outcome == "diverged", "nan", outcome)
    return status, outcome
