"""UPGrad: unconflicting projection of gradients (Quinton & Rey, "Jacobian Descent for Multi-Objective
Optimization", arXiv 2406.16232, 2024), as torchjd's ``UPGrad`` (methods-spec.md §6.3).

Project every task gradient onto the dual cone C = {x : g_j . x >= 0 for all j} and average::

    d = (1/K) sum_i pi_C(g_i) = sum_k w_k g_k

In weight space (torchjd): Ghat = M / tr(M) + reg_eps I (M/tr replaced by 0 when tr(M) < norm_eps), and
for each i, v^(i) = argmin_v v^T Ghat v subject to v >= e_i / K; then w = sum_i v^(i).

* K = 2 closed form (methods-spec.md §6.3): w_k = 1/2 + max(0, -Ghat_12) / (2 Ghat_kk). Without the
  regularisation this is PCGrad(sum)/2.
* General K: ``linalg.box_qp`` (exact active-set enumeration for K <= 6), the K problems in one call.

Pipelines: the SAM-GS code has no UPGrad, so ``reference`` = ``clean`` = torchjd's behaviour (its default
mean preference vector; no x K, no clip). Zero, equal, opposite and parallel gradients are all finite:
tr(M) < norm_eps gives the mean gradient; exactly opposite gives d of order reg_eps.
Hyperparameters: reg_eps 1e-4 and norm_eps 1e-4 (torchjd defaults). aux ``weights``: w.
"""
import torch

from ..base import Method, combine
from ..linalg import box_qp
from ..shared import GRAM_EPS_HPARAMS, normalized_gram


def weights(H: torch.Tensor) -> torch.Tensor:
    K = H.shape[1]
    if K == 2:
        h12 = torch.clamp(-H[:, 0, 1], min=0.0)
        return torch.stack([0.5 + h12 / (2 * H[:, 0, 0]), 0.5 + h12 / (2 * H[:, 1, 1])], 1)
    lower = torch.eye(K, dtype=H.dtype, device=H.device).expand(H.shape[0], K, K) / K   # row i: e_i / K
    return box_qp(H, lower).sum(1)


def step(G, L, state, hp, ctx):
    H = normalized_gram(G, hp["norm_eps"], hp["reg_eps"])
    w = weights(H)
    return combine(w, G), state, {"weights": w}


METHODS = (Method(
    key="upgrad", name="UPGrad", family="gradient surgery",
    paper="Quinton & Rey, Jacobian Descent for Multi-Objective Optimization, arXiv 2406.16232 (2024)",
    summary="Project each task gradient onto the cone of directions that conflict with no task, "
            "then average the projections.",
    step=step, hparams=GRAM_EPS_HPARAMS,
    pipelines={"reference": "torchjd UPGrad (no SAM-GS code exists): no x K, no clip",
               "clean": "torchjd UPGrad: no x K, no clip"},
),)
