"""MSI, POMSI and POMSI-static (Jiang, Gou, Zhang, Wang, Zhang, Yang: "Mitigating Scale Imbalance and
Conflicting Gradients in Deep Multi-Task Learning", Frontiers of Computer Science,
DOI 10.1007/s11704-024-40632-2), methods-spec.md §6.13.

RECONSTRUCTED RULE. Neither code nor the full text of the paper is public; the published description says
that MSI "adaptively rescales the norms of the gradient of task i and that of task j according to the
magnitude similarity between them", that POMSI first applies the PCGrad projection and then the rescaling,
and that POMSI-static is a variant with fixed scale factors. Gradscape's rule, defined from that
description (replace it if the paper's exact rule turns up):

    n_k = |g_k|,  S_ij = 2 n_i n_j / (n_i^2 + n_j^2)   (the SAM-GS magnitude similarity; 0/0 := 1)
    s_k = mean_{j != k} S_kj,   nbar = mean_k n_k
    n_k' = n_k^{s_k} nbar^{1 - s_k}                      (a geometric blend toward the mean norm)
    d = sum_k n_k' u_k = sum_k r_k g_k,   r_k = n_k'/n_k = (nbar / n_k)^{1 - s_k}

Equal norms give s = 1 and leave the gradients as they are (d = sum_k g_k); a 100:1 imbalance is pulled
almost to the mean norm. A zero gradient keeps u_k = 0 (it still counts in nbar and has S = 0 against a
nonzero one); its factor is reported as r_k = 1 (it multiplies a zero vector).

* ``msi``: the rule above on the raw gradients.
* ``pomsi``: PCGrad-project first (``optimizers.shared.pc_grads``, the paper's PCGrad: j != i, no clip;
  K = 2 closed form, random visiting orders from ``ctx.uniform`` for K >= 3), then the rule on the projected
  gradients (their norms and similarities).
* ``pomsi_static``: as POMSI, but the factors r_k are computed at the first step and frozen in the state,
  then applied to the projected gradients at every later step.

``aux["weights"]`` are the coefficients of d = sum_k w_k g_k on the ORIGINAL gradients (for POMSI,
w = sum_i r_i W_i. with the PCGrad coefficients W). No hyperparameters. Not in the SAM-GS code:
``reference`` = ``clean`` = the rule, no post-processing. Random only for K >= 3 (the projection order).
"""
import torch

from ..base import Method, Post, combine, norms
from ..shared import pc_grads

SALT_POMSI = 0x7E04
SALT_POMSI_STATIC = 0x7E05

RECONSTRUCTED = "rule reconstructed from the published description (no public code or full text)"
PAPER = ("Jiang, Gou, Zhang, Wang, Zhang, Yang: Mitigating Scale Imbalance and Conflicting Gradients in Deep "
         "Multi-Task Learning, Frontiers of Computer Science, DOI 10.1007/s11704-024-40632-2")


def scale_factors(n: torch.Tensor) -> torch.Tensor:
    """r[B, K] = n_k'/n_k from the norms n[B, K] (1 where n_k = 0)."""
    K = n.shape[1]
    num = 2 * n[:, :, None] * n[:, None, :]
    den = n[:, :, None] ** 2 + n[:, None, :] ** 2
    S = torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 1.0)
    off = 1.0 - torch.eye(K, dtype=n.dtype, device=n.device)
    s = (S * off).sum(-1) / (K - 1)
    nbar = n.mean(1, keepdim=True)
    pos = n > 0
    ratio = torch.where(pos, nbar / torch.where(pos, n, 1.0), 1.0)
    return torch.where(pos, torch.exp((1.0 - s) * torch.log(ratio)), 1.0)


def init_static(B, K, D, hp, *, dtype, device):
    return {"scale": torch.ones(B, K, dtype=dtype, device=device),
            "frozen": torch.zeros(B, dtype=dtype, device=device)}


def step_msi(G, L, state, hp, ctx):
    r = scale_factors(norms(G))
    return combine(r, G), state, {"weights": r}


def step_pomsi(G, L, state, hp, ctx):
    gpc, W = pc_grads(G, ctx, SALT_POMSI)
    r = scale_factors(norms(gpc))
    return combine(r, gpc), state, {"weights": (r[..., None] * W).sum(1)}


def step_pomsi_static(G, L, state, hp, ctx):
    gpc, W = pc_grads(G, ctx, SALT_POMSI_STATIC)
    fresh = scale_factors(norms(gpc))
    r = torch.where(state["frozen"][:, None] > 0, state["scale"], fresh)
    new = {"scale": r, "frozen": torch.ones_like(state["frozen"])}
    return combine(r, gpc), new, {"weights": (r[..., None] * W).sum(1)}


_PIPES = {"reference": "not in the SAM-GS code: as clean, no post-processing"}

METHODS = (
    Method(
        key="msi", name="MSI", family="similarity-aware", paper=PAPER,
        summary="Pull each task gradient's norm toward the mean norm, the harder the less similar its "
                "magnitude is to the others' (" + RECONSTRUCTED + ").",
        step=step_msi, reference=Post(), clean=Post(), reconstructed=True,
        pipelines={**_PIPES, "clean": "d = sum_k n_k^{s_k} nbar^{1-s_k} u_k (reconstructed rule)"},
    ),
    Method(
        key="pomsi", name="POMSI", family="similarity-aware", paper=PAPER,
        summary="PCGrad-project the conflicting task gradients, then rescale their norms as MSI does ("
                + RECONSTRUCTED + ").",
        step=step_pomsi, reference=Post(), clean=Post(), reconstructed=True, random=True,
        pipelines={**_PIPES, "clean": "MSI rescaling of the PCGrad-projected gradients (reconstructed rule)"},
    ),
    Method(
        key="pomsi_static", name="POMSI-static", family="similarity-aware", paper=PAPER,
        summary="POMSI with the norm scale factors computed at the first step and then frozen ("
                + RECONSTRUCTED + ").",
        init=init_static, step=step_pomsi_static, reference=Post(), clean=Post(), reconstructed=True,
        random=True,
        pipelines={**_PIPES, "clean": "first-step POMSI factors, frozen, applied to the projected gradients "
                                      "(reconstructed rule)"},
    ),
)
