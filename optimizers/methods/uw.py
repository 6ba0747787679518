"""UW: uncertainty weighting (Kendall, Gal and Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
Losses for Scene Geometry and Semantics", CVPR 2018), in the Nash-MTL / FAMO / SAM-GS form.

With log-variances s_k (init 0)::

    loss = sum_k 0.5 (exp(-s_k) L_k + s_k)   =>   d = 0.5 sum_k exp(-s_k) g_k      (weights 0.5 exp(-s_k))
    dloss/ds_k = 0.5 (1 - exp(-s_k) L_k)      (stationary at s_k = log L_k, which needs L_k > 0)

Pipelines (no x K, no effective clip in either, methods-spec.md §1.1):

* ``reference``: the SAM-GS toy never puts s into an optimiser (methods-spec.md §1.2-3, §12-5), so s stays
  at 0 and d = 0.5 sum_k g_k (0.5 x LS; under Adam the LS path up to eps). ``s_lr`` is ignored.
* ``clean``: s is trained as Kendall et al. (and the Nash-MTL toy, lr 0.025) do, on the losses shifted by
  the landscape floor (L - floor; on raw negative losses s would run to -inf): d uses s before the update,
  then one Adam step on s (betas 0.9 / 0.999, eps 1e-8, torch's update rule) with the gradient
  0.5 (1 - exp(-s) (L - floor)).

State: s, m, v [B, K] (zeros) and the Adam bias-correction products p1, p2 [B] (ones).
"""
import torch

from ..base import HParam, Method, combine
from ..shared import adam


def init(B, K, D, hp, *, dtype, device):
    z = torch.zeros(B, K, dtype=dtype, device=device)
    one = torch.ones(B, dtype=dtype, device=device)
    return {"s": z, "m": z.clone(), "v": z.clone(), "p1": one, "p2": one.clone()}


def step(G, L, state, hp, ctx):
    s = state["s"]
    w = 0.5 * torch.exp(-s)
    d = combine(w, G)
    if ctx.pipeline != "clean":
        return d, state, {"weights": w}
    grad = 0.5 * (1 - torch.exp(-s) * (L - ctx.loss_floor))
    s, m, v, p1, p2 = adam(s, grad, state["m"], state["v"], state["p1"], state["p2"], hp["s_lr"])
    return d, {"s": s, "m": m, "v": v, "p1": p1, "p2": p2}, {"weights": w}


METHODS = (Method(
    key="uw", name="UW", family="loss weighting",
    paper="Kendall, Gal and Cipolla, Multi-Task Learning Using Uncertainty to Weigh Losses for Scene "
          "Geometry and Semantics, CVPR 2018",
    summary="Weight each task by exp(-s_k), with s_k a learned log-variance (frozen at 0 as published).",
    init=init, step=step,
    hparams=(
        HParam("s_lr", 0.025, 1e-4, 1.0, 1e-4, "Adam learning rate of the log-variances s (clean only)",
               log=True),
    ),
    pipelines={"reference": "s frozen at 0 as published: d = 0.5 sum_k g_k, no clip",
               "clean": "s trained by Adam (lr s_lr) on losses shifted by the floor, "
                        "d = 0.5 sum_k exp(-s_k) g_k"},
),)
