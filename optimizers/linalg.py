"""Small batched linear algebra for K x K matrices with a static K, traceable into the fused kernel.

Everything here is unrolled Python loops over the (static) matrix size acting on per-entry tensors, so a
traced graph holds only element-wise ops, ``torch.where`` and ``stack``: no ``torch.linalg``, no sort,
no tensor indexing, no in-place ops, no data-dependent control flow. The cost grows like K^3 (``solve``,
one Jacobi sweep) or 2^K K^3 (``box_qp``), which is nothing for the K <= 6 tasks this project uses.

Functions (all batched over a leading B; entries may carry extra broadcast dimensions where noted):

* ``solve(A[B,K,K], b[B,K], ridge=0.0, pivot=True) -> x[B,K]``: Gaussian elimination on A + ridge I.
  With ``pivot=True`` (default) it uses partial pivoting like LAPACK's getrf (the row with the largest
  |entry| in the column becomes the pivot, the first such row on ties; the swap is a ``torch.where``
  select), so any non-singular matrix works. With ``pivot=False`` no rows are swapped; that is stable
  for symmetric positive definite matrices (what ``box_qp`` solves) and about half the ops. An exactly
  singular matrix gives a zero pivot and so a non-finite x (callers may test ``isfinite`` and retry
  with a ridge, as the published IMTL-G code does).
* ``inverse(A[B,K,K], ridge=0.0, pivot=True)``: the same elimination against the K columns of I.
* ``sym_eig(A[B,K,K], sweeps=None) -> (lam[B,K] descending, V[B,K,K] eigenvectors as columns)``: cyclic
  Jacobi rotations (Numerical Recipes' stable rotation formulas) with a fixed sweep count, then an
  odd-even transposition network of ``torch.where`` compare-exchanges (K rounds) sorts descending.
  Jacobi converges quadratically; the default max(4, K + 2) sweeps is one more than float64 round-off
  needed in tests (K = 3: 4, K = 4: 5, K = 6: 6 sweeps).
* ``box_qp(H[B,K,K], lower[B,(P,)K], iters=None) -> v``: argmin_v v^T H v subject to v >= lower, for a
  symmetric positive definite H (UPGrad / DualProj duals). For K <= 6 it is solved exactly by active-set
  enumeration (``box_qp_exact``): every one of the 2^K choices of free coordinates F is solved
  (H_FF v_F = -H_FA lower_A, v_A = lower_A) and the candidate with the smallest KKT violation
  (primal lower_F - v_F, dual -(Hv)_A / H_AA, both in units of v) is kept. For a positive definite H the
  KKT point is unique, so the pick is exact up to round-off and needs no iteration count. Larger K falls
  back to projected coordinate descent (``box_qp_cd``) with ``iters`` sweeps (default 500). ``lower``
  may carry a problem axis P ([B, P, K]) to solve P problems sharing one H at once.
"""
from __future__ import annotations

import itertools

import torch

EXACT_QP_MAX_K = 6


# ---------------------------------------------------------------------------------------------
# Helpers: a matrix as a list of rows of per-entry tensors.

def _rows(A: torch.Tensor) -> list[list[torch.Tensor]]:
    K = A.shape[-1]
    return [[A[:, i, j] for j in range(K)] for i in range(K)]


def _stack_matrix(rows: list[list[torch.Tensor]]) -> torch.Tensor:
    return torch.stack([torch.stack(r, -1) for r in rows], -2)


def _solve_lists(a: list[list[torch.Tensor]], b: list[torch.Tensor], pivot: bool) -> list[torch.Tensor]:
    """Gaussian elimination (optionally with partial pivoting) on per-entry tensors; returns x as a list."""
    n = len(b)
    a = [list(r) for r in a]
    b = list(b)
    for k in range(n):
        if pivot and k < n - 1:
            best = torch.abs(a[k][k])
            idx = torch.zeros_like(best)
            row, rhs = a[k][k:], b[k]
            for i in range(k + 1, n):
                cand = torch.abs(a[i][k])
                better = cand > best
                best = torch.where(better, cand, best)
                idx = torch.where(better, float(i), idx)
                row = [torch.where(better, x, y) for x, y in zip(a[i][k:], row)]
                rhs = torch.where(better, b[i], rhs)
            old_row, old_rhs = a[k][k:], b[k]
            for i in range(k + 1, n):
                hit = idx == float(i)
                a[i] = a[i][:k] + [torch.where(hit, x, y) for x, y in zip(old_row, a[i][k:])]
                b[i] = torch.where(hit, old_rhs, b[i])
            a[k] = a[k][:k] + row
            b[k] = rhs
        piv = a[k][k]
        for i in range(k + 1, n):
            f = a[i][k] / piv
            a[i] = a[i][:k + 1] + [a[i][j] - f * a[k][j] for j in range(k + 1, n)]
            b[i] = b[i] - f * b[k]
    x: list[torch.Tensor] = [None] * n  # type: ignore[list-item]
    for k in range(n - 1, -1, -1):
        acc = b[k]
        for j in range(k + 1, n):
            acc = acc - a[k][j] * x[j]
        x[k] = acc / a[k][k]
    return x


def solve(A: torch.Tensor, b: torch.Tensor, ridge=0.0, pivot: bool = True) -> torch.Tensor:
    """x with (A + ridge I) x = b for A[B,K,K], b[B,K]; ``ridge`` a number or a [B] tensor."""
    K = A.shape[-1]
    a = _rows(A)
    if not (isinstance(ridge, (int, float)) and ridge == 0):
        a = [[a[i][j] + ridge if i == j else a[i][j] for j in range(K)] for i in range(K)]
    x = _solve_lists(a, [b[:, i] for i in range(K)], pivot)
    return torch.stack(x, -1)


def inverse(A: torch.Tensor, ridge=0.0, pivot: bool = True) -> torch.Tensor:
    """(A + ridge I)^{-1} for A[B,K,K]: ``solve`` against the K columns of I at once (non-finite if singular)."""
    K = A.shape[-1]
    a = [[x[:, None] for x in r] for r in _rows(A)]
    if not (isinstance(ridge, (int, float)) and ridge == 0):
        rr = ridge[:, None] if torch.is_tensor(ridge) and ridge.dim() == 1 else ridge
        a = [[a[i][j] + rr if i == j else a[i][j] for j in range(K)] for i in range(K)]
    eye = torch.eye(K, dtype=A.dtype, device=A.device)
    b = [eye[i].expand(A.shape[0], K) for i in range(K)]
    return torch.stack(_solve_lists(a, b, pivot), 1)


# ---------------------------------------------------------------------------------------------
# Symmetric eigendecomposition.

def _jacobi_rotate(a, v, p, q):
    K = len(a)
    app, aqq, apq = a[p][p], a[q][q], a[p][q]
    nz = apq != 0
    theta = (aqq - app) / (2.0 * torch.where(nz, apq, torch.ones_like(apq)))
    sgn = torch.where(theta >= 0, torch.ones_like(theta), -torch.ones_like(theta))
    t = sgn / (torch.abs(theta) + torch.sqrt(theta * theta + 1.0))
    t = torch.where(nz, t, torch.zeros_like(t))
    c = torch.rsqrt(t * t + 1.0)
    s = t * c
    a = [list(r) for r in a]
    a[p][p] = app - t * apq
    a[q][q] = aqq + t * apq
    zero = torch.zeros_like(apq)
    a[p][q] = zero
    a[q][p] = zero
    for r in range(K):
        if r in (p, q):
            continue
        arp, arq = a[r][p], a[r][q]
        nrp = c * arp - s * arq
        nrq = s * arp + c * arq
        a[r][p] = a[p][r] = nrp
        a[r][q] = a[q][r] = nrq
    v = [list(r) for r in v]
    for r in range(K):
        vrp, vrq = v[r][p], v[r][q]
        v[r][p] = c * vrp - s * vrq
        v[r][q] = s * vrp + c * vrq
    return a, v


def sort_desc(lam: list[torch.Tensor], cols: list[list[torch.Tensor]] | None = None):
    """Sort values descending (and carry their columns) with an odd-even transposition network."""
    lam = list(lam)
    cols = None if cols is None else [list(c) for c in cols]
    n = len(lam)
    for rnd in range(n):
        for i in range(rnd % 2, n - 1, 2):
            swap = lam[i] < lam[i + 1]
            lam[i], lam[i + 1] = (torch.where(swap, lam[i + 1], lam[i]),
                                  torch.where(swap, lam[i], lam[i + 1]))
            if cols is not None:
                ci, cj = cols[i], cols[i + 1]
                cols[i] = [torch.where(swap, y, x) for x, y in zip(ci, cj)]
                cols[i + 1] = [torch.where(swap, x, y) for x, y in zip(ci, cj)]
    return lam, cols


def default_sweeps(K: int) -> int:
    """Jacobi sweeps that reach float64 round-off (measured: K = 3 needs 4, K = 4 5, K = 6 6), plus one."""
    return max(4, K + 2)


def sym_eig(A: torch.Tensor, sweeps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues [B,K] (descending) and eigenvectors [B,K,K] (columns) of symmetric A[B,K,K]."""
    K = A.shape[-1]
    sweeps = default_sweeps(K) if sweeps is None else sweeps
    a = _rows(0.5 * (A + A.transpose(-1, -2)))
    one = torch.ones_like(a[0][0])
    zero = torch.zeros_like(a[0][0])
    v = [[one if i == j else zero for j in range(K)] for i in range(K)]
    for _ in range(sweeps):
        for p, q in itertools.combinations(range(K), 2):
            a, v = _jacobi_rotate(a, v, p, q)
    lam = [a[i][i] for i in range(K)]
    cols = [[v[r][c] for r in range(K)] for c in range(K)]
    lam, cols = sort_desc(lam, cols)
    V = torch.stack([torch.stack([cols[c][r] for c in range(K)], -1) for r in range(K)], -2)
    return torch.stack(lam, -1), V


# ---------------------------------------------------------------------------------------------
# Box-constrained QP: argmin v^T H v subject to v >= lower.

def _h_entries(H: torch.Tensor, lower: torch.Tensor):
    """H's entries shaped to broadcast against lower[..., i]."""
    K = H.shape[-1]
    extra = lower.dim() - 2
    return [[H[:, i, j].reshape((-1,) + (1,) * extra) for j in range(K)] for i in range(K)]


def box_qp_exact(H: torch.Tensor, lower: torch.Tensor) -> torch.Tensor:
    """Exact solution by enumerating the 2^K active sets (see the module docstring)."""
    K = H.shape[-1]
    h = _h_entries(H, lower)
    lo = [lower[..., i] for i in range(K)]
    best_v, best_viol = None, None
    for mask in itertools.product((False, True), repeat=K):   # True: coordinate is free
        free = [i for i in range(K) if mask[i]]
        act = [i for i in range(K) if not mask[i]]
        v = list(lo)
        if free:
            a = [[h[i][j] for j in free] for i in free]
            rhs = []
            for i in free:
                r = torch.zeros_like(lo[i])
                for j in act:
                    r = r - h[i][j] * lo[j]
                rhs.append(r)
            xs = _solve_lists(a, rhs, pivot=False)
            for i, x in zip(free, xs):
                v[i] = x
        viol = torch.zeros_like(lo[0])
        for i in free:
            viol = torch.maximum(viol, lo[i] - v[i])
        for i in act:
            g = h[i][0] * v[0]
            for j in range(1, K):
                g = g + h[i][j] * v[j]
            viol = torch.maximum(viol, -g / h[i][i])
        if best_v is None:
            best_v, best_viol = v, viol
        else:
            take = (viol < best_viol) | (torch.isnan(best_viol) & ~torch.isnan(viol))
            best_v = [torch.where(take, x, y) for x, y in zip(v, best_v)]
            best_viol = torch.where(take, viol, best_viol)
    out = [torch.maximum(x, l) for x, l in zip(best_v, lo)]
    return torch.stack(out, -1)


def box_qp_cd(H: torch.Tensor, lower: torch.Tensor, iters: int = 500) -> torch.Tensor:
    """Projected (Gauss-Seidel) coordinate descent, ``iters`` sweeps, started at v = lower.

    Converges linearly for positive definite H; the rate degrades with H's condition number, so this is
    only the fallback for K > EXACT_QP_MAX_K.
    """
    K = H.shape[-1]
    h = _h_entries(H, lower)
    lo = [lower[..., i] for i in range(K)]
    v = list(lo)
    for _ in range(iters):
        for i in range(K):
            r = torch.zeros_like(lo[i])
            for j in range(K):
                if j != i:
                    r = r + h[i][j] * v[j]
            v[i] = torch.maximum(lo[i], -r / h[i][i])
    return torch.stack(v, -1)


def box_qp(H: torch.Tensor, lower: torch.Tensor, iters: int | None = None) -> torch.Tensor:
    """argmin v^T H v s.t. v >= lower; exact for K <= EXACT_QP_MAX_K, else ``iters`` CD sweeps."""
    if H.shape[-1] <= EXACT_QP_MAX_K:
        return box_qp_exact(H, lower)
    return box_qp_cd(H, lower, 500 if iters is None else iters)
