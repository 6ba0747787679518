"""Batched, fixed-work, traceable solvers over the probability simplex (MGDA, CAGrad, Nash-MTL).

Every function works on a batch of ``B`` independent problems given by their Gram matrices
``M[B, K, K] = G G^T`` and obeys the step rules of ``optimizers/base.py``: element-wise torch ops,
reductions over the task axes, Python loops whose counts depend only on shapes / static arguments,
``torch.where`` instead of branching, no ``torch.linalg``, no sort, no tensor indexing, no in-place op.

Problems (methods-spec.md §4, §5.8, §5.10, §5.11):

* ``min_norm_simplex``: ``argmin_{w in simplex} w^T M w`` (the MGDA min-norm point).
* ``cagrad_weights``: ``argmin_{w in simplex} w^T M b + c' |g_w|`` with ``b = 1/K`` and
  ``c' = c sqrt(mean(M) + 1e-8) + 1e-8`` (the CAGrad dual).
* ``nash_weights``: the ``alpha > 0`` with ``M alpha = 1/alpha`` (the Nash bargaining weights).

Algorithms

* ``K = 2``: the exact closed forms of the spec (``min_norm_2``, ``cagrad_2``, ``nash_2``).
* ``K > 2`` (``*_general``), MGDA and CAGrad: an **exact active-set enumeration**. The optimum of
  either problem (both depend on ``w`` only through ``g_w = sum_k w_k g_k``) is attained in the
  relative interior of the simplex of some affinely independent subset ``S`` of the gradients
  (Caratheodory), hence at the minimiser over the affine hull of ``g_S``, which has a closed form
  (one small SPD solve in Gram coordinates, ``|S| - 1`` unknowns). Every subset of size
  ``<= max_support`` (pass ``D + 1``: more than ``D + 1`` points in ``R^D`` are never affinely
  independent) gives a candidate; candidates whose weights leave the simplex, or whose system is
  singular, are discarded, and the candidate with the lowest objective *evaluated honestly at its
  weights* wins. Because every kept candidate is a feasible point, round-off can only cost
  objective accuracy, never produce an infeasible or non-finite answer; single vertices are always
  candidates. The work is fixed (``sum_{s <= max_support} C(K, s)`` tiny solves: 7 for K = 3, 14 for
  K = 4 with D = 2). When that count exceeds ``max_candidates`` the solvers fall back to ``iters``
  steps of pairwise Frank-Wolfe with exact line search, started from the best vertex.
* Nash-MTL, any K > 2: damped Newton on the self-concordant ``phi(b) = b^T C b / 2 - sum log b``
  with ``C`` the gradients' cosine matrix (``alpha_k = b_k / n_k``; the stationary point of ``phi``
  is ``C b = 1/b``, i.e. ``M alpha = 1/alpha``), in the scaled variables ``b <- b (1 + delta)``, with
  the self-concordant damping ``1 / (1 + lambda)`` while the Newton decrement ``lambda > 1/4`` and a
  fixed number (1) of positivity-preserving step halvings done with ``torch.where`` (a safeguard
  against round-off only: since the scaled Hessian is >= I, every |delta_k| <= lambda, so the damped
  step keeps b > 0 and the full step is taken only when lambda <= 1/4); ``iters`` (20) steps from the
  best (lowest phi after the optimal rescaling) of the warm start, ``1`` and ``1/(u_k.d_mn)`` with
  d_mn the unit gradients' min-norm point (20 steps reach 1e-8 relative on 50 000 random cold
  starts with K = 3, 4 and norm ratios up to 1e3). A run is
  *infeasible* (no positive solution exists iff a gradient is zero or 0 lies in the convex hull of
  the gradients) when the unit gradients' hull comes within ``sqrt(nash_mn_eps)`` of 0 (exact
  min-norm enumeration on ``C``), or Newton did not reach ``max_k |b_k (C b)_k - 1| < tol``
  (1e-8 in float64, 1.2e-2 in float32), or
  anything is non-finite; the caller then reuses its previous weights (as the published code does
  when its solver fails).
"""
from __future__ import annotations

import itertools
import math

import torch

# ---------------------------------------------------------------------------------------------
# Small helpers.


def gram_exact(G: torch.Tensor) -> torch.Tensor:
    """M = G G^T [B, K, K] as an element-wise product and a sum over D.

    Unlike a (b)mm it is exactly symmetric, and equal gradient rows give bitwise-equal entries
    (M_12 == M_11 when g1 == g2), which the published MGDA tie rules compare with ``>=``.
    """
    return (G[:, :, None, :] * G[:, None, :, :]).sum(-1)


def _safe(den: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """den where ok, else 1 (keeps divisions in the unselected lanes of a where finite)."""
    return torch.where(ok, den, torch.ones_like(den))


def _quad(w: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
    """w^T M w for w[B, K], M[B, K, K] -> [B]."""
    return (w[:, :, None] * M * w[:, None, :]).sum((-1, -2))


def _mv(M: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """M w -> [B, K]."""
    return (M * w[:, None, :]).sum(-1)


def _diag(M: torch.Tensor) -> torch.Tensor:
    """The diagonal of M[B, K, K] as [B, K] (an element-wise product with the identity)."""
    K = M.shape[-1]
    idx = torch.arange(K, device=M.device)
    return (M * (idx[:, None] == idx[None, :]).to(M.dtype)).sum(-1)


def _onehot(K: int, k: int, like: torch.Tensor) -> torch.Tensor:
    """e_k as [1, K] in like's dtype/device."""
    return (torch.arange(K, device=like.device) == k).to(like.dtype)[None, :]


def _first_true(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """One-hot [B, K] of the first True of each row (all-zero row if none); sort- and index-free."""
    K = mask.shape[-1]
    m = mask.to(dtype)
    idx = torch.arange(K, device=mask.device)
    upper = (idx[:, None] <= idx[None, :]).to(m.dtype)       # cumsum as a matmul
    cum = m @ upper
    return m * (cum == 1).to(m.dtype)


def _tol(dtype: torch.dtype) -> float:
    return 8.0 * torch.finfo(dtype).eps


def n_candidates(K: int, max_support: int | None = None) -> int:
    """How many supports the exact enumeration examines."""
    s = K if max_support is None else max(1, min(K, int(max_support)))
    return sum(math.comb(K, j) for j in range(1, s + 1))


def _solve_spd(A, rhs, tol):
    """Solve A x = r for each r in rhs, A an m x m SPD (list of lists of [B] tensors).

    Gaussian elimination without pivoting (fine for SPD). Returns (solutions, ok[B]) where ok is
    False for runs with a pivot <= tol (numerically singular); their solutions are finite garbage.
    """
    m = len(A)
    A = [list(row) for row in A]
    R = [list(r) for r in rhs]
    ok = torch.ones_like(A[0][0], dtype=torch.bool)
    piv = []
    for k in range(m):
        p = A[k][k]
        good = p > tol
        ok = ok & good
        p = _safe(p, good)
        piv.append(p)
        for i in range(k + 1, m):
            f = A[i][k] / p
            for j in range(k + 1, m):
                A[i][j] = A[i][j] - f * A[k][j]
            for r in R:
                r[i] = r[i] - f * r[k]
    sols = []
    for r in R:
        x = [None] * m
        for i in reversed(range(m)):
            acc = r[i]
            for j in range(i + 1, m):
                acc = acc - A[i][j] * x[j]
            x[i] = acc / piv[i]
        sols.append(x)
    return sols, ok


def _support_system(M, S):
    """Gram coordinates of the affine hull of g_S, S = (s0, s1, ..., sm): g = g_s0 + sum t_i (g_si - g_s0).

    Returns A (m x m, A_ij = (g_si - g_s0).(g_sj - g_s0)), bvec (b_i = (g_si - g_s0).g_s0) as lists
    of [B] tensors, and a scale for the singularity tolerance.
    """
    s0, rest = S[0], S[1:]
    A = [[M[:, i, j] - M[:, i, s0] - M[:, s0, j] + M[:, s0, s0] for j in rest] for i in rest]
    bvec = [M[:, i, s0] - M[:, s0, s0] for i in rest]
    scale = sum(A[i][i] for i in range(len(rest)))
    return A, bvec, scale


def _weights_from_t(S, t, K, like):
    """Full w[B, K] from the support S and its affine coordinates t (w_s0 = 1 - sum t)."""
    w = torch.zeros_like(like)
    w0 = 1.0 - sum(t)
    w = w + w0[:, None] * _onehot(K, S[0], like)
    for i, s in enumerate(S[1:]):
        w = w + t[i][:, None] * _onehot(K, s, like)
    return w


def _supports(K, max_support):
    s = K if max_support is None else max(1, min(K, int(max_support)))
    for size in range(1, s + 1):
        yield from itertools.combinations(range(K), size)


def _select(best_w, best_f, w, f, valid):
    """Keep (w, f) where valid and strictly better."""
    take = valid & (f < best_f)
    return torch.where(take[:, None], w, best_w), torch.where(take, f, best_f)


# ---------------------------------------------------------------------------------------------
# MGDA: the min-norm point of the convex hull.


def min_norm_2(M: torch.Tensor) -> torch.Tensor:
    """K = 2 exact min-norm weights: gamma* = clip((b - c)/(a + b - 2c), 0, 1) on g1 (1/2 if g1 = g2)."""
    a, b, c = M[:, 0, 0], M[:, 1, 1], M[:, 0, 1]
    den = (a - c) + (b - c)
    pos = den > 0
    gamma = torch.where(pos, (b - c) / _safe(den, pos), torch.full_like(a, 0.5))
    gamma = torch.clamp(gamma, 0.0, 1.0)
    return torch.stack([gamma, 1.0 - gamma], 1)


def min_norm_2_code(M: torch.Tensor) -> torch.Tensor:
    """K = 2 as the published MinNormSolver._min_norm_element_from2 (0.999 / 0.001 at the ends)."""
    a, b, c = M[:, 0, 0], M[:, 1, 1], M[:, 0, 1]
    den = (a - c) + (b - c)
    inner = (c < a) & (c < b)                       # then den > 0
    gamma = torch.where(inner, (b - c) / _safe(den, inner), torch.zeros_like(a))
    gamma = torch.where(c >= a, torch.full_like(a, 0.999),
                        torch.where(c >= b, torch.full_like(a, 0.001), gamma))
    return torch.stack([gamma, 1.0 - gamma], 1)


def _norm2_objective(w, M, G):
    if G is not None:
        d = (w[..., None] * G).sum(1)
        return (d * d).sum(-1)
    return _quad(w, M)


def min_norm_general(M: torch.Tensor, *, G: torch.Tensor | None = None,
                     max_support: int | None = None) -> torch.Tensor:
    """Exact min-norm weights for any K by active-set enumeration (see the module docstring).

    ``G[B, K, D]``, when given, is used to evaluate the candidates' objectives |G^T w|^2 (more
    accurate than w^T M w when the min norm is small); ``max_support`` defaults to K (pass D + 1).
    """
    B, K, _ = M.shape
    like = M[:, 0, :]
    tol = _tol(M.dtype)
    best_w = torch.zeros_like(like)
    best_f = torch.full_like(M[:, 0, 0], float("inf"))
    for S in _supports(K, max_support):
        if len(S) == 1:
            w = torch.zeros_like(like) + _onehot(K, S[0], like)
            valid = torch.ones_like(best_f, dtype=torch.bool)
        else:
            A, bvec, scale = _support_system(M, S)
            (t,), ok = _solve_spd(A, [[-x for x in bvec]], tol * scale)
            w = _weights_from_t(S, t, K, like)
            valid = ok & (w >= 0).all(-1)
        f = _norm2_objective(w, M, G)
        valid = valid & torch.isfinite(f)
        best_w, best_f = _select(best_w, best_f, w, f, valid)
    return best_w


def _pairwise_fw(M, w, iters, grad_fn, seg_fn):
    """Pairwise Frank-Wolfe on the simplex with an exact segment line search.

    grad_fn(w) -> gradient [B, K]; seg_fn(w, u, gmax) -> step in [0, gmax] along w + step u.
    """
    for _ in range(iters):
        g = grad_fn(w)
        s = _first_true(g <= g.amin(-1, keepdim=True), w.dtype)
        active = w > 0
        gm = torch.where(active, g, torch.full_like(g, -float("inf")))
        v = _first_true(active & (gm >= gm.amax(-1, keepdim=True)), w.dtype)
        u = s - v
        gmax = (w * v).sum(-1)
        step = seg_fn(w, u, gmax)
        w = torch.clamp(w + step[:, None] * u, min=0.0)
        w = w / w.sum(-1, keepdim=True)
    return w


def min_norm_fw(M: torch.Tensor, iters: int = 200) -> torch.Tensor:
    """Fallback for large K: pairwise Frank-Wolfe with exact line search from the best vertex."""
    B, K, _ = M.shape
    diag = _diag(M)
    w = _first_true(diag <= diag.amin(-1, keepdim=True), M.dtype)

    def grad(w):
        return _mv(M, w)

    def seg(w, u, gmax):
        xy = (_mv(M, w) * u).sum(-1)
        yy = _quad(u, M)
        pos = yy > 0
        st = torch.where(pos, -xy / _safe(yy, pos), torch.zeros_like(xy))
        return torch.minimum(torch.clamp(st, min=0.0), gmax)

    return _pairwise_fw(M, w, iters, grad, seg)


def min_norm_simplex(M: torch.Tensor, iters: int = 200, *, G: torch.Tensor | None = None,
                     max_support: int | None = None, max_candidates: int = 512) -> torch.Tensor:
    """argmin_{w in simplex} w^T M w, w[B, K]: K = 2 closed form, exact enumeration, or (too many
    candidates) ``iters`` pairwise Frank-Wolfe steps."""
    K = M.shape[1]
    if K == 1:
        return torch.ones_like(M[:, 0, :])
    if K == 2:
        return min_norm_2(M)
    if n_candidates(K, max_support) <= max_candidates:
        return min_norm_general(M, G=G, max_support=max_support)
    return min_norm_fw(M, iters)


# ---------------------------------------------------------------------------------------------
# CAGrad: argmin_w g_w . g0 + c' |g_w| over the simplex.


def cagrad_cprime(M: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The code's c' = c sqrt(mean(M) + 1e-8) + 1e-8 (mean(M) = |g0|^2), [B]."""
    return c * torch.sqrt(M.mean((-1, -2)) + 1e-8) + 1e-8


def _segment_min(a, P, Q, R, cp, lo, hi):
    """argmin over x in [lo, hi] of a x + cp sqrt(P x^2 + 2 Q x + R) (convex; P, R >= 0, PR >= Q^2).

    The spec's K = 2 rule (§5.10) for a general segment: s = -a/cp; P == 0 -> (lo + hi)/2 clipped;
    s >= sqrt(P) -> hi; s <= -sqrt(P) -> lo; else x = (s sqrt(Delta/(P - s^2)) - Q)/P, clipped.
    cp == 0 (a linear objective) -> hi if a < 0, lo if a > 0, the min-norm point if a == 0.
    """
    rP = torch.sqrt(torch.clamp(P, min=0.0))
    Delta = torch.clamp(P * R - Q * Q, min=0.0)
    cpos = cp > 0
    s = torch.where(cpos, -a / _safe(cp, cpos), torch.zeros_like(a))
    up = torch.where(cpos, s >= rP, a < 0)
    down = torch.where(cpos, s <= -rP, a > 0)
    Ppos = P > 0
    inner = Ppos & ~up & ~down
    den = torch.where(inner, P - s * s, torch.ones_like(P))
    x = torch.where(inner, (s * torch.sqrt(Delta / den) - Q) / _safe(P, Ppos), torch.zeros_like(P))
    x = torch.where(up, hi, torch.where(down, lo, x))
    x = torch.where(Ppos, x, 0.5 * (lo + hi))
    return torch.minimum(torch.maximum(x, lo), hi)


def cagrad_2(M: torch.Tensor, cprime: torch.Tensor) -> torch.Tensor:
    """K = 2 exact CAGrad weights (§5.10): w on g1, g_w = g2 + w delta, delta = g1 - g2."""
    a, b, c = M[:, 0, 0], M[:, 1, 1], M[:, 0, 1]
    P = (a - c) + (b - c)
    Q = c - b
    q1, q2 = 0.5 * (a + c), 0.5 * (c + b)                   # g_k . g0
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    w = _segment_min(q1 - q2, P, Q, b, cprime, zero, one)
    return torch.stack([w, 1.0 - w], 1)


def _cagrad_objective(w, M, q, cp, G):
    if G is not None:
        gw = (w[..., None] * G).sum(1)
        g0 = G.mean(1)
        return (gw * g0).sum(-1) + cp * torch.sqrt((gw * gw).sum(-1))
    return (w * q).sum(-1) + cp * torch.sqrt(torch.clamp(_quad(w, M), min=0.0))


def cagrad_general(M: torch.Tensor, cprime: torch.Tensor, *, G: torch.Tensor | None = None,
                   max_support: int | None = None) -> torch.Tensor:
    """Exact CAGrad weights for any K by active-set enumeration.

    On the affine hull {x_perp + y} of a support (x_perp its min-norm point, r = |x_perp|, h the
    projection of g0 onto the hull's directions) the minimiser of x.g0 + c'|x| is
    x = x_perp - r h / sqrt(c'^2 - |h|^2) when |h| < c' (else the hull's minimum is unbounded and the
    support is discarded).
    """
    B, K, _ = M.shape
    like = M[:, 0, :]
    tol = _tol(M.dtype)
    q = M.mean(-1)                                           # q_k = g_k . g0
    best_w = torch.zeros_like(like)
    best_f = torch.full_like(M[:, 0, 0], float("inf"))
    for S in _supports(K, max_support):
        if len(S) == 1:
            w = torch.zeros_like(like) + _onehot(K, S[0], like)
            valid = torch.ones_like(best_f, dtype=torch.bool)
        else:
            A, bvec, scale = _support_system(M, S)
            e = [q[:, i] - q[:, S[0]] for i in S[1:]]
            (tp, th), ok = _solve_spd(A, [[-x for x in bvec], e], tol * scale)
            r2 = torch.clamp(M[:, S[0], S[0]] + sum(bi * ti for bi, ti in zip(bvec, tp)), min=0.0)
            h2 = torch.clamp(sum(ei * ti for ei, ti in zip(e, th)), min=0.0)
            gap = cprime * cprime - h2
            okh = gap > 0
            kappa = torch.where(okh, torch.sqrt(r2) / torch.sqrt(_safe(gap, okh)), torch.zeros_like(gap))
            t = [tpi - kappa * thi for tpi, thi in zip(tp, th)]
            w = _weights_from_t(S, t, K, like)
            valid = ok & okh & (w >= 0).all(-1)
        f = _cagrad_objective(w, M, q, cprime, G)
        valid = valid & torch.isfinite(f)
        best_w, best_f = _select(best_w, best_f, w, f, valid)
    return best_w


def cagrad_fw(M: torch.Tensor, cprime: torch.Tensor, iters: int = 200) -> torch.Tensor:
    """Fallback for large K: pairwise Frank-Wolfe with the exact segment minimiser, best-vertex start."""
    B, K, _ = M.shape
    q = M.mean(-1)
    diag = _diag(M)
    fv = q + cprime[:, None] * torch.sqrt(torch.clamp(diag, min=0.0))
    w = _first_true(fv <= fv.amin(-1, keepdim=True), M.dtype)

    def grad(w):
        Mw = _mv(M, w)
        nrm = torch.sqrt(torch.clamp((w * Mw).sum(-1), min=0.0) + 1e-8)
        return q + (cprime / nrm)[:, None] * Mw

    def seg(w, u, gmax):
        Mw = _mv(M, w)
        return _segment_min((q * u).sum(-1), _quad(u, M), (Mw * u).sum(-1),
                            (w * Mw).sum(-1), cprime, torch.zeros_like(gmax), gmax)

    return _pairwise_fw(M, w, iters, grad, seg)


def cagrad_weights(M: torch.Tensor, c: torch.Tensor, iters: int = 200, *,
                   cprime: torch.Tensor | None = None, G: torch.Tensor | None = None,
                   max_support: int | None = None, max_candidates: int = 512) -> torch.Tensor:
    """argmin_{w in simplex} w^T M b + c' sqrt(w^T M w), b = 1/K, w[B, K].

    ``c[B]`` gives the code's c' = c sqrt(mean(M) + 1e-8) + 1e-8 unless ``cprime[B]`` is given.
    (The code's objective has +1e-8 under the square root; the exact minimiser returned here is the
    one without it: the two differ by O(1e-8) in g_w.)
    """
    K = M.shape[1]
    cp = cagrad_cprime(M, c) if cprime is None else cprime
    if K == 1:
        return torch.ones_like(M[:, 0, :])
    if K == 2:
        return cagrad_2(M, cp)
    if n_candidates(K, max_support) <= max_candidates:
        return cagrad_general(M, cp, G=G, max_support=max_support)
    return cagrad_fw(M, cp, iters)


# ---------------------------------------------------------------------------------------------
# Nash-MTL: alpha > 0 with M alpha = 1/alpha.


def nash_mn_eps(dtype: torch.dtype, K: int) -> float:
    """A squared min-norm of the unit gradients' hull at or below this counts as 0 (no positive solution)."""
    return 4.0 * K * torch.finfo(dtype).eps


def nash_h_eps(dtype: torch.dtype) -> float:
    """1 + cos below this counts as opposite (K = 2: the unit hull's squared min norm is (1 + cos)/2)."""
    return 2.0 * nash_mn_eps(dtype, 2)


def nash_2(M: torch.Tensor, precision: torch.dtype | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """K = 2 closed form alpha_k = 1/(n_k sqrt(1 + cos)) (§5.11) and feasible[B]
    (both norms > 0, 1 + cos > nash_h_eps(precision), alpha finite). ``precision``: the dtype M's entries were
    rounded in (default M.dtype), e.g. float32 for a float32 Gram matrix solved in float64."""
    n1 = torch.sqrt(torch.clamp(M[:, 0, 0], min=0.0))
    n2 = torch.sqrt(torch.clamp(M[:, 1, 1], min=0.0))
    nn = n1 * n2
    pos = nn > 0
    h = 1.0 + torch.where(pos, M[:, 0, 1] / _safe(nn, pos), torch.zeros_like(nn))
    ok = pos & (h > nash_h_eps(precision or M.dtype))
    hs = torch.sqrt(_safe(h, ok))
    alpha = torch.stack([1.0 / (_safe(n1, ok) * hs), 1.0 / (_safe(n2, ok) * hs)], 1)
    ok = ok & torch.isfinite(alpha).all(-1)
    return alpha, ok


def _phi(beta, Mn):
    return 0.5 * _quad(beta, Mn) - torch.log(beta).sum(-1)


def nash_general(M: torch.Tensor, alpha_prev: torch.Tensor, iters: int = 20, *,
                 max_support: int | None = None, halvings: int = 1, tol: float | None = None,
                 precision: torch.dtype | None = None, with_info: bool = False):
    """Damped Newton for M alpha = 1/alpha, any K (see the module docstring). Returns (alpha, feasible);
    alpha is meaningful only where feasible.

    With n_k = sqrt(M_kk) and the cosine matrix C = M / (n n^T), alpha = beta / n where C beta = 1/beta,
    so the iteration never sees the gradients' scales. Feasible means: no zero gradient, the unit
    gradients' hull is away from 0 (its squared min norm, found exactly by ``min_norm_general`` on C,
    exceeds ``nash_mn_eps``), and the Newton result is finite, positive, with
    ``max_k |beta_k (C beta)_k - 1| < tol``, by default ``max(1e-8, 1e5 eps)`` (1e-8 in float64,
    where converged runs reach ~1e-10; 1.2e-2 in float32, whose round-off alone leaves up to ~3e-2
    within ~1e-2 of the feasibility boundary).
    """
    if tol is None:
        tol = max(1e-8, 1e5 * torch.finfo(M.dtype).eps)
    B, K, _ = M.shape
    n = torch.sqrt(torch.clamp(_diag(M), min=0.0))
    npos = (n > 0).all(-1)
    ns = torch.where(n > 0, n, torch.ones_like(n))
    C = M / (ns[:, :, None] * ns[:, None, :])

    def rescale(b):
        b = torch.where((torch.isfinite(b) & (b > 0)).all(-1, keepdim=True), b, torch.ones_like(b))
        qv = _quad(b, C)
        good = qv > 0
        f = torch.where(good, torch.sqrt(K / _safe(qv, good)), torch.ones_like(qv))
        return b * f[:, None]

    # the unit hull's min-norm point d_mn = sum w_k u_k: feasibility, and a start beta_k ∝ 1/(u_k.d_mn)
    # (the optimum has beta_k = 1/(u_k.d); u_k.d_mn >= |d_mn|^2 > 0 whenever a solution exists)
    wmn = min_norm_general(C, max_support=max_support)
    Cw = _mv(C, wmn)
    mnC = (wmn * Cw).sum(-1)
    geo = npos & (mnC > nash_mn_eps(precision or M.dtype, K))
    cwpos = Cw > 0
    b3 = rescale(torch.where(cwpos, 1.0 / _safe(Cw, cwpos), torch.zeros_like(Cw)))
    beta = rescale(alpha_prev * ns)
    for b in (rescale(torch.ones_like(alpha_prev)), b3):
        better = _phi(b, C) < _phi(beta, C)
        beta = torch.where(better[:, None], b, beta)
    eye = [[1.0 if i == j else 0.0 for j in range(K)] for i in range(K)]
    for _ in range(iters):
        Cb = _mv(C, beta)
        rhs = 1.0 - beta * Cb                                # -diag(beta) grad phi
        S = [[beta[:, i] * C[:, i, j] * beta[:, j] + eye[i][j] for j in range(K)] for i in range(K)]
        (x,), ok = _solve_spd(S, [[rhs[:, i] for i in range(K)]], 0.0)
        delta = torch.stack(x, 1)                            # Newton step in the scaled variables
        lam = torch.sqrt(torch.clamp((delta * rhs).sum(-1), min=0.0))   # Newton decrement
        t = torch.where(lam > 0.25, 1.0 / (1.0 + lam), torch.ones_like(lam))
        for _ in range(halvings):
            bad = ((1.0 + t[:, None] * delta) <= 0).any(-1)
            t = torch.where(bad, 0.5 * t, t)
        new = beta * (1.0 + t[:, None] * delta)
        keep = ok & (new > 0).all(-1) & torch.isfinite(new).all(-1)
        beta = torch.where(keep[:, None], new, beta)
    res = (beta * _mv(C, beta) - 1.0).abs().amax(-1)
    alpha = beta / ns
    feasible = geo & (res < tol) & torch.isfinite(alpha).all(-1) & (alpha > 0).all(-1)
    if with_info:
        return alpha, feasible, {"res": res, "mn": mnC, "geo": geo}
    return alpha, feasible


def nash_weights(M: torch.Tensor, alpha_prev: torch.Tensor, iters: int = 40, *,
                 max_support: int | None = None, precision: torch.dtype | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha[B, K], feasible[B]) solving M alpha = 1/alpha; where infeasible alpha = alpha_prev.
    ``precision``: the dtype M was rounded in, which sets the feasibility thresholds (default M.dtype)."""
    K = M.shape[1]
    if K == 2:
        alpha, ok = nash_2(M, precision)
    else:
        alpha, ok = nash_general(M, alpha_prev, iters, max_support=max_support, precision=precision)
    return torch.where(ok[:, None], alpha, alpha_prev), ok
