"""GradVac: Gradient Vaccine (Wang, Tsvetkov, Firat, Cao, "Gradient Vaccine: Investigating and Improving
Multi-task Optimization in Massively Multilingual Models", ICLR 2021), methods-spec.md §6.1.

State: the target cosine similarities phi_hat[B, K, K] (init 0; one block, the whole model is one group).
For each task i, starting from g_i' = g_i, visit every j != i in a random order::

    phi = g_i'.g_j / (|g_i'| |g_j| + 1e-8)
    if phi < phi_hat_ij:
        g_i' <- g_i' + g_j |g_i'| (phi_hat sqrt(1 - phi^2) - phi sqrt(1 - phi_hat^2))
                               / (|g_j| sqrt(1 - phi_hat^2) + 1e-8)
    phi_hat_ij <- (1 - beta) phi_hat_ij + beta phi        (always, with the phi measured before the correction)
    d = sum_i g_i'

The correction raises the cosine of g_i' and g_j to the target phi_hat_ij; with phi_hat = 0 it is PCGrad's
projection, so a fresh GradVac (and beta = 0) equals PCGrad. ``aux["weights"]`` are the coefficients of
d = sum_k w_k g_k (every g_i' is a combination of the original gradients).

Visiting order: as PCGrad (``optimizers.shared.visit_ranks``), per run and per task from ``ctx.uniform((K, K))``, ranks
by pairwise comparisons; it matters only for K >= 3 (``random=True``); for K = 2 nothing is drawn.

Hyperparameters: beta = 0.5, the EMA rate of LibMTL (``GradVac_beta``) and torchjd (``GradVac(beta=0.5,
eps=1e-8)``). The paper's own value is recalled as 1e-2 (not verified from the text; an earlier torchjd
GradVac defaulted to 1e-2). The epsilon 1e-8 is fixed.

Pipelines: GradVac is not in the SAM-GS code, so ``reference`` = ``clean`` = the rule above, no
post-processing. Sources differ: LibMTL updates phi_hat only inside the ``if`` (so its targets can only
fall); an earlier torchjd version updates the EMA first and compares phi against the updated target. This module follows the
paper's Algorithm 1 as the spec states it (update always, after the comparison).
Edge cases (finite): a zero g_i or g_j gives phi = 0 and a zero correction; 1 - phi^2 and 1 - phi_hat^2 are
clamped at 0 before the square root (rounding can push |phi| a hair above 1); |phi_hat| -> 1 drives the
denominator toward 1e-8 (large but finite corrections, as published); exactly opposite gradients give
d = 0 on a fresh state.
"""
import torch

from ..base import HParam, Method, Post, norms
from ..shared import visit_ranks

SALT_ORDER = 0x6A03
EPS = 1e-8


def vaccinate(G: torch.Tensor, phi_hat: torch.Tensor, beta: torch.Tensor, ranks: torch.Tensor):
    """One GradVac step with explicit visiting ranks (``ranks[b, i, j]`` = position at which i visits j).

    Returns ``(Gv[B, K, D], W[B, K, K], phi_hat_new[B, K, K])`` with Gv = W G (up to rounding).
    """
    B, K, D = G.shape
    eye = torch.eye(K, dtype=G.dtype, device=G.device)
    off = 1.0 - eye
    n = norms(G)                                              # |g_j| of the ORIGINAL gradients
    b = beta.to(G.dtype)[:, None, None]
    gv, W, ph = G, eye.expand(B, K, K), phi_hat
    for p in range(K):
        sel = (ranks == p).to(G.dtype) * off                  # [B, i, j]: i visits j (j != i) at position p
        gj = sel @ G
        nj = (sel * n[:, None, :]).sum(-1)
        ni = norms(gv)
        phi = (gv * gj).sum(-1) / (ni * nj + EPS)
        tgt = (sel * ph).sum(-1)
        fire = (phi < tgt) & (sel.sum(-1) > 0)
        s_phi = torch.sqrt(torch.clamp(1.0 - phi * phi, min=0.0))
        s_tgt = torch.sqrt(torch.clamp(1.0 - tgt * tgt, min=0.0))
        coef = torch.where(fire, ni * (tgt * s_phi - phi * s_tgt) / (nj * s_tgt + EPS), 0.0)
        gv = gv + coef[..., None] * gj
        W = W + coef[..., None] * sel
        ph = torch.where(sel > 0, (1.0 - b) * ph + b * phi[..., None], ph)
    return gv, W, ph


def fixed_ranks(B: int, K: int, dtype, device) -> torch.Tensor:
    """Visit the others in index order (the order does not matter for K = 2)."""
    ar = torch.arange(K, device=device)
    j, i = ar[None, :], ar[:, None]
    r = torch.where(j < i, j + 1, torch.where(j == i, 0, j)).to(dtype)   # self first, then 1..K-1
    return r.expand(B, K, K)


def init(B, K, D, hp, *, dtype, device):
    return {"phi_hat": torch.zeros(B, K, K, dtype=dtype, device=device)}


def step(G, L, state, hp, ctx):
    B, K, _ = G.shape
    if K == 2:
        ranks = fixed_ranks(B, K, G.dtype, G.device)
    else:
        ranks = visit_ranks(ctx.uniform((K, K), SALT_ORDER))
    gv, W, ph = vaccinate(G, state["phi_hat"], hp["beta"], ranks)
    return gv.sum(1), {"phi_hat": ph}, {"weights": W.sum(1)}


METHODS = (Method(
    key="gradvac", name="GradVac", family="similarity-aware",
    paper="Wang, Tsvetkov, Firat, Cao: Gradient Vaccine: Investigating and Improving Multi-task Optimization "
          "in Massively Multilingual Models, ICLR 2021",
    summary="Raise each pair's gradient cosine to an adaptive target (an EMA of past cosines); with a zero "
            "target this is PCGrad.",
    init=init, step=step,
    hparams=(
        HParam("beta", 0.5, 0.0, 1.0, 0.01,
               "EMA rate of the target cosines (LibMTL/torchjd: 0.5; the paper: 1e-2, unverified)"),
    ),
    reference=Post(), clean=Post(),
    random=True,
    pipelines={"reference": "not in the SAM-GS code: as clean, no post-processing",
               "clean": "paper Algorithm 1 (EMA always updated), sum of the corrected gradients"},
),)
