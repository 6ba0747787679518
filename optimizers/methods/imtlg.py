"""IMTL-G: impartial multi-task learning, gradient part (Liu, Li, Kuang, Xue, Chen, Yang, Liao, Zhang,
"Towards Impartial Multi-task Learning", ICLR 2021).

Find weights alpha with sum_k alpha_k = 1 such that d = sum_k alpha_k g_k has the same projection on every
unit gradient u_k = g_k / |g_k|:  d . u_1 = d . u_2 = ... = d . u_K.

* The published code (SAM-GS = Nash-MTL = FAMO toy code, methods-spec.md §5.9): with D_k = g_1 - g_k and
  U_k = u_1 - u_k (k >= 2), alpha_{2..K} = (g_1 U^T)(D U^T)^{-1}, alpha_1 = 1 - sum alpha_{2..K}; when
  ``torch.inverse`` fails (an exactly singular D U^T) it retries with D U^T + 1e-8 I. The weights go on the
  losses, so d = sum alpha_k g_k (no x K, no clip).
* Equivalent form (full rank): alpha = M^{-1} n / (1^T M^{-1} n), M = G G^T, n the norms (torchjd writes
  M^+). With M = N C N (N = diag n, C = U U^T the cosine matrix) this is alpha_k ∝ (C^{-1} 1)_k / n_k.
* K = 2 closed form: alpha = (n2, n1) / (n1 + n2), d = n1 n2 / (n1 + n2) (u1 + u2).

Pipelines:

* ``reference``: the published code's formula for every K, including its order of operations: the
  inverse of D U^T (``linalg.inverse``, Gaussian elimination with partial pivoting) is formed and then
  multiplied, as ``torch.inverse`` is in the code; a non-finite inverse (an exactly singular D U^T) is
  replaced by the inverse of D U^T + 1e-8 I as the code's ``except`` does. The order matters: for K = 2
  alpha_2 = first * (1/den) is not exactly 1/2 when the two gradients are exact mirror images, and that
  last-bit asymmetry, amplified by Adam, is what moves the published runs off the symmetry axis x = 0
  (the fidelity runs from starts on x = 0 need it). Exactly parallel same-direction gradients give
  alpha = (1, 0, ...) and d = g_1, and a zero gradient gives NaN (u = g/0) as published; the engine
  freezes and flags such a run. With K - 1 > D (e.g. K = 4 on the toys) D U^T is singular up to round-off
  and the code inverts the round-off: finite but meaningless weights, reproduced as such. For float32
  D = 2 the norms are rounded as ``torch.norm`` rounds them (``torch_norm``), so that given the same
  gradients the weights are the published code's bit for bit.
* ``clean``: K = 2 uses the closed form. K >= 3 uses alpha_k ∝ y_k / n_k with C y = 1 (the torchjd
  form on the scale-free cosine matrix), solved with partial pivoting; an exactly singular C (a
  non-finite solve) is solved again with a ridge, (C + eps I) y = 1, eps = 100 eps(dtype). When C is
  singular or numerically singular (e.g. K > D, always the case for K = 3 on the 2-parameter toys) y is
  dominated by C's null vector, so alpha tends to the null vector of G^T and d -> 0, which is what the
  equal-projection condition (and the published code) gives there; torchjd's pseudo-inverse instead
  drops the part of n outside range(M) and no longer has equal projections. (A ridge on every solve was
  tried and rejected: its bias is amplified by the cancellation in sum_k y_k / n_k on ill-conditioned C.)
  If |sum_k y_k / n_k| vanishes (no finite impartial direction) alpha = 0 as in torchjd. A zero gradient
  takes the closed-form limit: alpha = the indicator of the zero-gradient tasks (normalised), so d = 0
  (for K = 2 the limit of (n2, n1)/(n1+n2) as n1 -> 0 is (1, 0), d -> 0). Both zero gives
  alpha = (1/2, 1/2), d = 0. Exactly parallel gradients use the closed form (any alpha has equal
  projections; the closed form's (2 n2/(n1+n2)) g1 is its continuous limit).

aux ``weights``: alpha. No hyperparameters.
"""
import torch

from ..base import Method, combine, norms, unit
from ..linalg import inverse, solve


def torch_norm(G: torch.Tensor) -> torch.Tensor:
    """|g_k| rounded as ``torch.norm`` rounds it on the CPU for a float32 2-vector (measured bit-exact on
    random vectors): sqrt, in double, of float32(fma(x1, x1, float32(x0^2))). Other shapes: sqrt(sum x^2)."""
    if G.dtype != torch.float32 or G.shape[-1] != 2:
        return norms(G)
    x0, x1 = G[..., 0], G[..., 1]
    s = ((x0 * x0).to(torch.float64) + x1.to(torch.float64) * x1.to(torch.float64)).to(torch.float32)
    return torch.sqrt(s.to(torch.float64)).to(torch.float32)


def reference_weights(G: torch.Tensor) -> torch.Tensor:
    """alpha as the published code computes it (NaN for a zero gradient)."""
    n = torch_norm(G)
    U = G / n[..., None]
    g1 = G[:, 0]
    Dm = g1[:, None, :] - G[:, 1:]
    Um = U[:, :1] - U[:, 1:]
    first = (g1[:, None, :] * Um).sum(-1)                     # g_1 U^T, [B, K-1]
    A = Dm @ Um.transpose(1, 2)                               # D U^T, [B, K-1, K-1]
    inv0 = inverse(A)                                         # the code multiplies by the inverse (its
    inv1 = inverse(A, ridge=1e-8)                             # rounding breaks exact mirror symmetry)
    ok = torch.isfinite(inv0).to(G.dtype).amin(-1).amin(-1) > 0
    inv = torch.where(ok[:, None, None], inv0, inv1)
    x = (first[:, :, None] * inv).sum(1)                      # first @ inv
    return torch.cat([1.0 - x.sum(-1, keepdim=True), x], 1)


def clean_weights(G: torch.Tensor) -> torch.Tensor:
    """alpha of the clean pipeline: the K = 2 closed form, else ``clean_weights_general``."""
    if G.shape[1] == 2:
        n = norms(G)
        s = n.sum(1, keepdim=True)
        return torch.where(s > 0, torch.stack([n[:, 1], n[:, 0]], 1) / torch.where(s > 0, s, 1.0), 0.5)
    return clean_weights_general(G)


def clean_weights_general(G: torch.Tensor) -> torch.Tensor:
    """alpha_k ∝ y_k / n_k with (C + eps I) y = 1 (any K; zero gradients take the closed-form limit)."""
    n = norms(G)
    zero = n == 0
    U = unit(G)
    C = U @ U.transpose(1, 2)
    one = torch.ones_like(n)
    y0 = solve(C, one)
    ok = torch.isfinite(y0).to(G.dtype).amin(-1, keepdim=True) > 0
    y = torch.where(ok, y0, solve(C, one, ridge=100.0 * torch.finfo(G.dtype).eps))
    r = torch.where(zero, 0.0, y / torch.where(zero, 1.0, n))
    s = r.sum(1, keepdim=True)
    ok = s.abs() > 1e-12 * r.abs().sum(1, keepdim=True)
    alpha = torch.where(ok, r / torch.where(ok, s, 1.0), 0.0)
    zf = zero.to(G.dtype)
    nz = zf.sum(1, keepdim=True)
    return torch.where(nz > 0, zf / torch.clamp(nz, min=1.0), alpha)


def step(G, L, state, hp, ctx):
    alpha = reference_weights(G) if ctx.pipeline == "reference" else clean_weights(G)
    return combine(alpha, G), state, {"weights": alpha}


METHODS = (Method(
    key="imtlg", name="IMTL-G", family="game-theoretic",
    paper="Liu et al., Towards Impartial Multi-task Learning, ICLR 2021",
    summary="Combine the task gradients so that the result has an equal projection on every task's "
            "unit gradient.",
    step=step,
    pipelines={"reference": "published D U^T formula: parallel gradients fall back to g1, a zero gradient "
                            "gives NaN; no x K, no clip",
               "clean": "closed form (K = 2) / regularised M^-1 n form (K >= 3); zero gradient -> d = 0"},
),)
