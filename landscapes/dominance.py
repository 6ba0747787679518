"""Exact non-dominance filtering for K >= 2 losses, fast enough for the K = 3 and 4 Pareto regions.

``nondominated(F[n, K]) -> keep[n]`` (minimisation; a row is dropped when another row is <= in every loss
and < in at least one; exact duplicates keep each other). Same answer as the pairwise definition
(``tests/test_custom_landscapes.py`` checks it against a brute-force filter), in

* K = 2: one sort and a running minimum;
* K = 3: a sweep in lexicographic order with a 2-D staircase of the (f2, f3) minima seen so far, queried
  with ``searchsorted`` block by block: O(n log n);
* K >= 4: first every row that one of a few hundred "strong" rows (minimisers of random positively
  weighted sums, all non-dominated) dominates is dropped; the survivors are swept in lexicographic order,
  each block tested against the non-dominated rows kept so far (a dominator always comes earlier in that
  order, and by transitivity a kept row dominates whatever a dropped one did): O(n x |front| x K) at worst.

Written for ``landscapes/pareto.py``'s K > 2 branch (its pairwise test compares every block with every
row not yet dropped, minutes for a 300 x 300 grid).
"""
from __future__ import annotations

import numpy as np

BLOCK = 64
STRONG = 256


def _unique_rows(F: np.ndarray):
    """Distinct rows of F in lexicographic order, and each row's index among them."""
    U, inverse = np.unique(F, axis=0, return_inverse=True)
    return U, inverse.reshape(-1)


def _within_block(B: np.ndarray) -> np.ndarray:
    """For lexicographically sorted distinct rows B: dominated by an earlier row of B."""
    le = (B[:, None, :] <= B[None, :, :]).all(-1)       # le[i, j]: row i <= row j everywhere
    np.fill_diagonal(le, False)
    return np.triu(le).any(0)                           # an earlier (i < j) row is <= (and, distinct, dominates)


def _le_any(P: np.ndarray, B: np.ndarray) -> np.ndarray:
    """For each row b of B: is some row of P <= b in every loss? (one 2-D mask per loss: no 3-D temporaries)"""
    m = P[:, None, 0] <= B[None, :, 0]
    for k in range(1, B.shape[1]):
        m &= P[:, None, k] <= B[None, :, k]
    return m.any(0)


def _dominates_any(P: np.ndarray, B: np.ndarray) -> np.ndarray:
    """For each row b of B: does some row of P dominate it (<= everywhere, < somewhere)?"""
    le = P[:, None, 0] <= B[None, :, 0]
    lt = P[:, None, 0] < B[None, :, 0]
    for k in range(1, B.shape[1]):
        le &= P[:, None, k] <= B[None, :, k]
        lt |= P[:, None, k] < B[None, :, k]
    return (le & lt).any(0)


def _sweep3(U: np.ndarray) -> np.ndarray:
    keep = np.ones(len(U), bool)
    s2 = np.empty(0)
    s3 = np.empty(0)
    for lo in range(0, len(U), BLOCK):
        B = U[lo:lo + BLOCK]
        dom = _within_block(B)
        if len(s2):
            idx = np.searchsorted(s2, B[:, 1], side="right") - 1
            dom |= (idx >= 0) & (s3[np.maximum(idx, 0)] <= B[:, 2])
        keep[lo:lo + BLOCK] = ~dom
        # the new staircase: minima of (f2, f3) over everything seen (dominated rows can be left out:
        # whatever they are <= on (f2, f3), the row dominating them is too)
        a2, a3 = np.concatenate([s2, B[~dom, 1]]), np.concatenate([s3, B[~dom, 2]])
        order = np.lexsort((a3, a2))
        a2, a3 = a2[order], a3[order]
        prev_min = np.minimum.accumulate(np.concatenate([[np.inf], a3[:-1]]))
        stair = a3 < prev_min
        s2, s3 = a2[stair], a3[stair]
    return keep


def _sweep(U: np.ndarray) -> np.ndarray:
    """Lexicographically sorted distinct rows: each block against the non-dominated rows kept so far (a
    dominator comes earlier in that order, and a kept row dominates whatever a dropped one did)."""
    keep = np.ones(len(U), bool)
    front = np.empty((0, U.shape[1]))
    for lo in range(0, len(U), BLOCK):
        B = U[lo:lo + BLOCK]
        dom = _within_block(B)
        for c in range(0, len(front), 4096):
            dom |= _le_any(front[c:c + 4096], B)
        keep[lo:lo + BLOCK] = ~dom
        front = np.concatenate([front, B[~dom]])
    return keep


def _strong_rows(U: np.ndarray, m: int = STRONG) -> np.ndarray:
    """Rows that minimise a positively weighted sum of the (range-normalised) losses for ``m`` random weights,
    and each loss alone: all non-dominated, and between them they dominate most rows."""
    lo, hi = U.min(0), U.max(0)
    N = (U - lo) / np.where(hi > lo, hi - lo, 1.0)
    W = np.random.default_rng(0).dirichlet(np.ones(U.shape[1]), m)
    return np.unique(np.concatenate([np.argmin(N @ W.T, axis=0), np.argmin(U, 0)]))


def _eliminate_then_sweep(U: np.ndarray) -> np.ndarray:
    """Drop the rows some strong row dominates, then sweep the rest. Exact: a dominated survivor's chain of
    dominators ends at a non-dominated row, and non-dominated rows always survive."""
    S = U[_strong_rows(U)]
    dom = np.zeros(len(U), bool)
    for c in range(0, len(U), 1024):
        B = U[c:c + 1024]
        dom[c:c + 1024] = _dominates_any(S, B)
    rest = np.flatnonzero(~dom)
    keep = np.zeros(len(U), bool)
    keep[rest] = _sweep(U[rest])
    return keep


def nondominated(F: np.ndarray) -> np.ndarray:
    """Boolean mask of the rows of F[n, K] that no other row dominates (minimisation)."""
    F = np.asarray(F, dtype=float)
    n, K = F.shape
    if n == 0:
        return np.zeros(0, bool)
    U, inv = _unique_rows(F)
    if K == 1:
        keepU = U[:, 0] == U[0, 0]
    elif K == 2:
        prev_min = np.minimum.accumulate(np.concatenate([[np.inf], U[:-1, 1]]))
        keepU = U[:, 1] < prev_min
    elif K == 3:
        keepU = _sweep3(U)
    else:
        keepU = _eliminate_then_sweep(U)
    return keepU[inv]
