"""SAM-GS: Similarity-Aware Momentum Gradient Surgery (Borsani et al., "Gradient Similarity Surgery in
Multi-Task Deep Learning", arXiv 2506.06130), exactly as ``SAMGS.balance_magnitude`` in the authors' code.

With n_k = |g_k|, the gradient-magnitude similarity of a pair S_ij = 2 n_i n_j / (n_i^2 + n_j^2) and
sbar its mean over the pairs i < j::

    m <- b1 m + (1 - b1) G                       (per task, per coordinate; both branches)
    v <- b2 v + (1 - b2) (1 - sbar)^2 + 1e-8     (one scalar per run; the 1e-8 is added every step)
    mhat = m / (1 - b1^t),  vhat = v / (1 - b2^t)
    sbar <  gamma:  g = nbar * sum_k g_k / n_k             ("equalisation": every task gets the mean norm)
    sbar >= gamma:  g = sum_k g_k * |mhat_k| / sqrt(vhat)  ("momentum": element-wise reweighting)

Pipelines: ``reference`` writes clip1(K g) as the authors' ``overwrite_grad`` does, and keeps the NaN the
code produces when a task's gradient is exactly zero (the run is then frozen and flagged by the engine);
``clean`` writes g unchanged and treats a zero gradient as a masked-out task (u_k = 0; two zero
gradients count as equal norms, S = 1). ``aux["branch"]`` is 1 where equalisation fired.
Defaults: gamma 0.1, beta1 0.9, beta2 0.99 (the paper's one-optimum toy; 0.9 on two-optima).
"""
import itertools

import torch

from ..base import HParam, Method, Post, col, norms


def init(B, K, D, hp, *, dtype, device):
    z = torch.zeros(B, dtype=dtype, device=device)
    return {"m": torch.zeros(B, K, D, dtype=dtype, device=device), "v": z,
            "p1": torch.ones_like(z), "p2": torch.ones_like(z)}


def similarity(n: torch.Tensor, clean: bool) -> torch.Tensor:
    """Mean pairwise gradient-magnitude similarity sbar[B] from the norms n[B, K]."""
    K = n.shape[1]
    num = 2 * n[:, :, None] * n[:, None, :]
    den = n[:, :, None] ** 2 + n[:, None, :] ** 2
    if clean:
        S = torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 1.0)
    else:
        S = num / den
    pairs = [S[:, i, j] for i, j in itertools.combinations(range(K), 2)]
    return torch.stack(pairs, 1).mean(1)


def step(G, L, state, hp, ctx):
    b1, b2, gamma = hp["beta1"], hp["beta2"], hp["gamma"]
    clean = ctx.pipeline == "clean"
    n = norms(G)
    sbar = similarity(n, clean)
    m = col(b1)[..., None] * state["m"] + (1 - col(b1)[..., None]) * G
    v = b2 * state["v"] + (1 - b2) * (1 - sbar) ** 2 + 1e-8
    p1, p2 = state["p1"] * b1, state["p2"] * b2
    mhat = m / col(1 - p1)[..., None]
    vhat = v / (1 - p2)
    if clean:
        u = torch.where(n[..., None] > 0, G / torch.where(n > 0, n, 1.0)[..., None], 0.0)
    else:
        u = G / n[..., None]
    equalise = col(n.mean(1)) * u.sum(1)
    momentum = (G * mhat.abs()).sum(1) / col(torch.sqrt(vhat))
    fire = sbar < gamma
    d = torch.where(col(fire), equalise, momentum)
    aux = {"branch": fire.to(G.dtype), "similarity": sbar}
    return d, {"m": m, "v": v, "p1": p1, "p2": p2}, aux


METHODS = (Method(
    key="samgs", name="SAM-GS", family="similarity-aware",
    paper="Borsani et al., Gradient Similarity Surgery in Multi-Task Deep Learning, arXiv 2506.06130 (2025)",
    summary="Equalise gradient norms when their magnitudes differ sharply, otherwise reweight by "
            "per-task momentum.",
    init=init, step=step,
    hparams=(
        HParam("gamma", 0.1, 0.0, 1.0, 0.01, "similarity threshold: equalise when mean GMS < gamma"),
        HParam("beta1", 0.9, 0.0, 0.999, 0.001, "momentum of the per-task gradient EMA"),
        HParam("beta2", 0.99, 0.0, 0.9999, 0.0001, "EMA rate of the squared dissimilarity (1 - GMS)^2"),
    ),
    reference=Post(times_k=True, clip=True), clean=Post(),
    aux=("branch", "similarity"),
    pipelines={"reference": "clip1(K g), NaN on a zero gradient as published",
               "clean": "g as defined, zero gradients masked out"},
),)
