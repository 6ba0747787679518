"""GradNorm: Gradient Normalization (Chen, Badrinarayanan, Lee and Rabinovich, "GradNorm: Gradient
Normalization for Adaptive Loss Balancing in Deep Multitask Networks", ICML 2018), in LibMTL's form.

On a 2-parameter landscape every parameter is shared, so the "shared layer" is theta itself and the
weighted gradient norm of task k is G_k = w_k n_k (n_k = |g_k|). With logits s (init 1, so w = 1),
z = softmax(s), w = K z, the shifted losses l_k = L_k - floor_k, and l0 = the shifted losses of the first
step (a one-step warm-up in place of LibMTL's first epoch; methods-spec.md §6.2)::

    Gbar = mean_k G_k;   r_k = (l_k / l0_k) / mean_j (l_j / l0_j);   T_k = Gbar r_k^alpha   (both detached)
    Lgrad = sum_k |G_k - T_k|;   dLgrad/ds = K (z * a - z (z . a)),   a_k = sign(G_k - T_k) n_k
    d = sum_k w_k g_k  (w before the update);   then one Adam step on s (lr ``s_lr``)

The first step records l0 and returns d = sum_k w_k g_k without updating s (LibMTL's equal-weighting warm-up).

Pipelines: the published SAM-GS code has no GradNorm, so ``reference`` = ``clean`` here: both use the
losses shifted by the landscape floor (r^alpha of a negative loss ratio is NaN), with the shifted loss
clamped to at least 1e-8 (never active on the built-in landscapes); no x K, no clip.

State: s [B, K] (ones), Adam moments m, v [B, K] (zeros) and products p1, p2 [B] (ones), l0 [B, K],
first [B] (1 until the first step has run).
"""
import torch

from ..base import HParam, Method, col, combine, norms
from ..shared import adam

SHIFT_MIN = 1e-8


def init(B, K, D, hp, *, dtype, device):
    z = torch.zeros(B, K, dtype=dtype, device=device)
    one = torch.ones(B, dtype=dtype, device=device)
    return {"s": torch.ones(B, K, dtype=dtype, device=device), "m": z, "v": z.clone(),
            "p1": one, "p2": one.clone(), "l0": torch.ones(B, K, dtype=dtype, device=device),
            "first": one.clone()}


def step(G, L, state, hp, ctx):
    K = G.shape[1]
    s = state["s"]
    z = torch.softmax(s, dim=-1)
    w = K * z
    n = norms(G)
    d = combine(w, G)

    first = state["first"] > 0
    l = torch.clamp(L - ctx.loss_floor, min=SHIFT_MIN)
    l0 = torch.where(col(first), l, state["l0"])
    Gk = w * n
    gbar = Gk.mean(-1, keepdim=True)
    q = l / l0
    r = q / q.mean(-1, keepdim=True)
    target = gbar * r ** col(hp["alpha"])
    a = torch.sign(Gk - target) * n
    grad = K * (z * a - z * (z * a).sum(-1, keepdim=True))
    s1, m1, v1, p11, p21 = adam(s, grad, state["m"], state["v"], state["p1"], state["p2"], hp["s_lr"])
    new = {"s": torch.where(col(first), s, s1), "m": torch.where(col(first), state["m"], m1),
           "v": torch.where(col(first), state["v"], v1), "p1": torch.where(first, state["p1"], p11),
           "p2": torch.where(first, state["p2"], p21), "l0": l0,
           "first": torch.zeros_like(state["first"])}
    return d, new, {"weights": w}


METHODS = (Method(
    key="gradnorm", name="GradNorm", family="loss weighting",
    paper="Chen, Badrinarayanan, Lee and Rabinovich, GradNorm: Gradient Normalization for Adaptive Loss "
          "Balancing in Deep Multitask Networks, ICML 2018",
    summary="Learn task weights that pull each weighted gradient norm toward the mean norm times the "
            "task's relative inverse training rate.",
    init=init, step=step,
    hparams=(
        HParam("alpha", 1.5, 0.0, 5.0, 0.05, "restoring-force strength (asymmetry) alpha"),
        HParam("s_lr", 0.025, 1e-4, 1.0, 1e-4, "Adam learning rate of the weight logits s", log=True),
    ),
    pipelines={"reference": "not in the SAM-GS code: same as clean (LibMTL form on shifted losses)",
               "clean": "LibMTL GradNorm on losses shifted by the floor, logits trained by Adam, "
                        "sum_k w_k g_k, no clip"},
),)
