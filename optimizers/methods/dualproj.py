"""DualProj: project the mean gradient onto the dual cone of the task gradients (torchjd's ``DualProj``;
the projection of Lopez-Paz & Ranzato, "Gradient Episodic Memory for Continual Learning", NeurIPS 2017,
Eq. 11, used as an aggregator in Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization",
arXiv 2406.16232, 2024; methods-spec.md §6.4).

    d = pi_C(g0),  C = {x : g_j . x >= 0 for all j},  g0 = (1/K) sum_k g_k

In weight space: w = argmin_v v^T Ghat v subject to v >= (1/K) 1, with torchjd's Ghat = M / tr(M) +
reg_eps I (M/tr replaced by 0 when tr(M) < norm_eps); d = sum_k w_k g_k.

* K = 2 closed form (methods-spec.md §6.4): with u = (1/2, 1/2) and r = Ghat u at most one r_k is
  negative; then w = u + (-r_k / Ghat_kk) e_k, else w = u. (Unregularised: d = g0 if g0 . g_k >= 0 for all
  k, else g0 - (g0 . g_k / |g_k|^2) g_k.)
* General K: ``linalg.box_qp`` (exact active-set enumeration for K <= 6).

Pipelines: the SAM-GS code has no DualProj, so ``reference`` = ``clean`` = torchjd's behaviour (no x K,
no clip). Always finite: exactly opposite gradients give d of order reg_eps, equal gradients d = g.
Hyperparameters: reg_eps 1e-4 and norm_eps 1e-4 (torchjd defaults). aux ``weights``: w.
"""
import torch

from ..base import Method, combine
from ..linalg import box_qp
from ..shared import GRAM_EPS_HPARAMS, normalized_gram


def weights(H: torch.Tensor) -> torch.Tensor:
    B, K, _ = H.shape
    if K == 2:
        h11, h12, h22 = H[:, 0, 0], H[:, 0, 1], H[:, 1, 1]
        r1 = 0.5 * (h11 + h12)
        r2 = 0.5 * (h12 + h22)
        return torch.stack([0.5 + torch.clamp(-r1, min=0.0) / h11, 0.5 + torch.clamp(-r2, min=0.0) / h22], 1)
    lower = torch.full((B, K), 1.0 / K, dtype=H.dtype, device=H.device)
    return box_qp(H, lower)


def step(G, L, state, hp, ctx):
    H = normalized_gram(G, hp["norm_eps"], hp["reg_eps"])
    w = weights(H)
    return combine(w, G), state, {"weights": w}


METHODS = (Method(
    key="dualproj", name="DualProj", family="gradient surgery",
    paper="torchjd DualProj: GEM's projection (Lopez-Paz & Ranzato, NeurIPS 2017) as in Quinton & Rey, "
          "Jacobian Descent for Multi-Objective Optimization, arXiv 2406.16232 (2024)",
    summary="Project the mean gradient onto the cone of directions that conflict with no task.",
    step=step, hparams=GRAM_EPS_HPARAMS,
    pipelines={"reference": "torchjd DualProj (no SAM-GS code exists): no x K, no clip",
               "clean": "torchjd DualProj: no x K, no clip"},
),)
