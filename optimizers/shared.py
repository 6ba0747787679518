"""Pieces that more than one method is built from, so that no method imports another.

(The one-line batched helpers every step uses, ``norms``, ``gram``, ``combine``, ``unit``, ``clip1``, ``col``,
live in ``optimizers/base.py`` beside the contract, because the engine uses them too.)

* **The inner Adam** (:func:`adam`): UW, FAMO and GradNorm train their own task-weight parameters with
  ``torch.optim.Adam``'s rule (betas 0.9 / 0.999, eps 1e-8, eps added after the bias-corrected square root)::

      m <- m + (1 - b1)(g - m);  v <- b2 v + (1 - b2) g^2;  x <- x - lr / (1 - b1^n) * m / (sqrt(v) / sqrt(1 - b2^n) + eps)

* **The normalised Gram matrix** (:func:`normalized_gram`, :data:`GRAM_EPS_HPARAMS`): torchjd's
  ``regularize(normalize(M, norm_eps), reg_eps)`` = M / tr(M) + reg_eps I (M / tr(M) replaced by 0 when
  tr(M) < norm_eps), the matrix UPGrad's and DualProj's duals are solved in (Quinton & Rey, arXiv 2406.16232).

* **PCGrad's projections** (:func:`visit_ranks`, :func:`project`, :func:`project_pair`, :func:`pc_grads`;
  Yu et al., NeurIPS 2020): task i visits the other tasks j in a per-run random order and, whenever its partially
  projected vector conflicts with the ORIGINAL g_j, removes that component::

      if g_i^PC . g_j < 0:   g_i^PC <- g_i^PC - (g_i^PC . g_j / |g_j|^2) g_j

  Every g_i^PC is a combination of the original gradients, ``Gpc = W G``, and ``W`` is returned with it.
  PCGrad sums the projected gradients, POMSI rescales them, GradVac visits in the same random order.

All of it keeps the step rules of ``optimizers/base.py`` (element-wise ops, reductions over task / parameter
axes only, loops whose counts depend on shapes, ``torch.where`` instead of branching).
"""
from __future__ import annotations

import torch

from .base import HParam, col, gram

# ---------------------------------------------------------------------------------------------
# The inner Adam.

BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-8


def adam(x, grad, m, v, p1, p2, lr):
    """One torch.optim.Adam step (betas 0.9 / 0.999, eps 1e-8, torch's placement of eps) on x[B, K].

    ``lr[B]``; ``p1, p2 [B]`` are beta1^n, beta2^n after the n steps taken so far (ones before the first).
    Returns ``(x, m, v, p1, p2)`` after the step.
    """
    m = m + (grad - m) * (1 - BETA1)
    v = v * BETA2 + (1 - BETA2) * grad * grad
    p1, p2 = p1 * BETA1, p2 * BETA2
    denom = torch.sqrt(v) / col(torch.sqrt(1 - p2)) + ADAM_EPS
    x = x - col(lr / (1 - p1)) * (m / denom)
    return x, m, v, p1, p2


# ---------------------------------------------------------------------------------------------
# The normalised Gram matrix (UPGrad, DualProj).

GRAM_EPS_HPARAMS = (
    HParam("reg_eps", 1e-4, 1e-8, 1e-1, 1e-8, "ridge added to the trace-normalised Gram matrix", log=True),
    HParam("norm_eps", 1e-4, 1e-8, 1.0, 1e-8, "below this squared Frobenius norm the Gram matrix counts as 0",
           log=True),
)


def normalized_gram(G: torch.Tensor, norm_eps: torch.Tensor, reg_eps: torch.Tensor) -> torch.Tensor:
    """torchjd's regularize(normalize(M, norm_eps), reg_eps) for G[B, K, D]; eps values are [B]."""
    M = gram(G)
    K = M.shape[1]
    tr = sum(M[:, k, k] for k in range(K))
    small = tr < norm_eps
    Mn = torch.where(small[:, None, None], 0.0, M / torch.where(small, 1.0, tr)[:, None, None])
    eye = torch.eye(K, dtype=G.dtype, device=G.device)
    return Mn + reg_eps[:, None, None] * eye


# ---------------------------------------------------------------------------------------------
# PCGrad's projections (PCGrad, POMSI, POMSI-static; GradVac's visiting order).

def visit_ranks(u: torch.Tensor) -> torch.Tensor:
    """Ranks from uniforms: ``u[B, K, K] -> r[B, K, K]`` with r_ij = #{j' : u_ij' < u_ij, or equal and j' < j}.

    Task i visits j at position r_ij, i.e. in the order of ``argsort(u_i, stable=True)`` (the argsort is
    never called: K^2 comparisons per row). The result has u's dtype and holds the integers 0..K-1.
    """
    K = u.shape[-1]
    ar = torch.arange(K, device=u.device)
    before = ar[None, :] < ar[:, None]                        # [j, j']: j' < j
    a = u[..., None, :]                                       # [B, i, 1, j']
    b = u[..., :, None]                                       # [B, i, j, 1]
    precedes = (a < b) | ((a == b) & before)
    return precedes.to(u.dtype).sum(-1)


def _sqnorm(x: torch.Tensor, faithful: bool) -> torch.Tensor:
    s = (x * x).sum(-1)
    return torch.sqrt(s) ** 2 if faithful else s


def project(G: torch.Tensor, ranks: torch.Tensor, *, include_self: bool = False,
            faithful: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequential PCGrad projections with explicit visiting ranks (general K).

    ``ranks[B, K, K]``: task i visits task j at position ranks[b, i, j] (each row a permutation of 0..K-1).
    ``include_self``: also visit j = i (the SAM-GS code's loop); otherwise that position does nothing.
    ``faithful``: form |g_j|^2 as norm(g_j)**2, as the SAM-GS code does.
    Returns ``(Gpc[B, K, D], W[B, K, K])`` with Gpc_i the projected g_i and Gpc = W G (up to rounding).
    """
    B, K, D = G.shape
    eye = torch.eye(K, dtype=G.dtype, device=G.device)
    gpc = G
    W = eye.expand(B, K, K)
    for p in range(K):
        sel = (ranks == p).to(G.dtype)                        # [B, i, j] one-hot: i visits j at position p
        if not include_self:
            sel = sel * (1.0 - eye)
        gj = sel @ G                                          # [B, K, D]: the ORIGINAL gradient visited by i
        dot = (gpc * gj).sum(-1)
        nsq = _sqnorm(gj, faithful)
        hit = dot < 0
        safe = torch.where(hit, nsq, 1.0)
        gpc = gpc - torch.where(hit[..., None], dot[..., None] * gj / safe[..., None], 0.0)
        W = W - torch.where(hit, dot / safe, 0.0)[..., None] * sel
    return gpc, W


def project_pair(G: torch.Tensor, *, faithful: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """K = 2 closed form of :func:`project` (either order): ``(Gpc[B, 2, D], W[B, 2, 2])``."""
    g1, g2 = G[:, 0], G[:, 1]
    c = (g1 * g2).sum(-1)
    hit = c < 0
    a = torch.where(hit, _sqnorm(g1, faithful), 1.0)
    b = torch.where(hit, _sqnorm(g2, faithful), 1.0)
    p1 = g1 - torch.where(hit[:, None], c[:, None] * g2 / b[:, None], 0.0)
    p2 = g2 - torch.where(hit[:, None], c[:, None] * g1 / a[:, None], 0.0)
    one = torch.ones_like(c)
    c21 = torch.where(hit, -c / b, 0.0)                       # coefficient of g2 in p1
    c12 = torch.where(hit, -c / a, 0.0)                       # coefficient of g1 in p2
    W = torch.stack([torch.stack([one, c21], -1), torch.stack([c12, one], -1)], 1)
    return torch.stack([p1, p2], 1), W


def pc_grads(G: torch.Tensor, ctx, salt: int, *, include_self: bool = False,
             faithful: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The projected gradients and their coefficients ``(Gpc, W)``: the K = 2 closed form (where the order does
    not matter and nothing is drawn), else random visiting orders drawn from ``ctx.uniform((K, K), salt)``
    (each method its own ``salt``, so two methods in one run never share their draws)."""
    K = G.shape[1]
    if K == 2:
        return project_pair(G, faithful=faithful)
    ranks = visit_ranks(ctx.uniform((K, K), salt))
    return project(G, ranks, include_self=include_self, faithful=faithful)
