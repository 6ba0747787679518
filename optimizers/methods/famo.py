"""FAMO: Fast Adaptive Multitask Optimization (Bo Liu, Yihao Feng, Peter Stone and Qiang Liu,
NeurIPS 2023).

Task weights come from logits w (init 0), z = softmax(w). With the shifted losses D_k = L_k - min_k + 1e-8
(min = the landscape's floor, ``ctx.loss_floor``) every step does, in the order of the toy trainers
(methods-spec.md §5.13)::

    if not the first step:                                  (the logit update uses the loss change that
        delta_k = log D_k(prev) - log D_k(now)               the previous step's weights produced)
        grad_w  = z * (delta - z . delta) + gamma * w        (softmax VJP; gamma = Adam L2 weight decay)
        w <- Adam(w, grad_w, lr = w_lr)
    z = softmax(w);  a_k = (z_k / D_k) / sum_j z_j / D_j     (the gradient of sum_k z_k log D_k / c,
    d = sum_k a_k g_k;  prev <- L                            c = sum_j z_j / D_j detached; sum_k a_k = 1)

At the first step z is uniform, so a is the normalised inverse shifted loss.

Pipelines (no x K, no effective clip in either, methods-spec.md §1.1). Both use the shifted losses: the
published SAM-GS toy leaves ``min_losses`` at 0, so on these landscapes the log of a negative loss turns
FAMO into NaN within a few thousand steps (methods-spec.md §1.2-2, §12-4); the loss shift is the one FAMO's
own toy uses (``set_min_losses([-21 scale, -21])`` on one_optimum, the engine's ``ctx.loss_floor``).

* ``reference``: the SAM-GS / FAMO code with that shift: D = L - floor + 1e-8 unguarded (a loss at or below
  the floor gives NaN, never on the built-in landscapes); gamma 1e-5 (SAM-GS toy config).
* ``clean``: the same rule, with D clamped to at least 1e-8 so that every weight stays finite.

State: w, m, v [B, K] (zeros; m, v the Adam moments of w), Adam products p1, p2 [B] (ones), prev_L [B, K],
first [B] (1 until the first step has run).
"""
import torch

from ..base import HParam, Method, col, combine
from ..shared import adam

SHIFT_EPS = 1e-8


def init(B, K, D, hp, *, dtype, device):
    z = torch.zeros(B, K, dtype=dtype, device=device)
    one = torch.ones(B, dtype=dtype, device=device)
    return {"w": z, "m": z.clone(), "v": z.clone(), "p1": one, "p2": one.clone(),
            "prev_L": z.clone(), "first": one.clone()}


def step(G, L, state, hp, ctx):
    floor = ctx.loss_floor
    skip = state["first"] > 0                       # the first step only weights
    prev = torch.where(col(skip), L, state["prev_L"])
    Dnow = L - floor + SHIFT_EPS
    Dprev = prev - floor + SHIFT_EPS
    if ctx.pipeline == "clean":
        Dnow = torch.clamp(Dnow, min=SHIFT_EPS)
        Dprev = torch.clamp(Dprev, min=SHIFT_EPS)
    w = state["w"]
    z = torch.softmax(w, dim=-1)
    delta = torch.log(Dprev) - torch.log(Dnow)
    grad = z * (delta - (z * delta).sum(-1, keepdim=True)) + col(hp["gamma"]) * w
    w1, m1, v1, p11, p21 = adam(w, grad, state["m"], state["v"], state["p1"], state["p2"], hp["w_lr"])
    w = torch.where(col(skip), w, w1)
    m = torch.where(col(skip), state["m"], m1)
    v = torch.where(col(skip), state["v"], v1)
    p1 = torch.where(skip, state["p1"], p11)
    p2 = torch.where(skip, state["p2"], p21)
    z = torch.softmax(w, dim=-1)
    q = z / Dnow
    a = q / q.sum(-1, keepdim=True)
    new = {"w": w, "m": m, "v": v, "p1": p1, "p2": p2, "prev_L": L, "first": torch.zeros_like(state["first"])}
    return combine(a, G), new, {"weights": a}


METHODS = (Method(
    key="famo", name="FAMO", family="loss weighting",
    paper="B. Liu, Feng, Stone and Q. Liu, FAMO: Fast Adaptive Multitask Optimization, NeurIPS 2023",
    summary="Learn task logits so that all log-losses fall at the same rate; weight by "
            "softmax / loss.",
    init=init, step=step,
    hparams=(
        HParam("w_lr", 0.025, 1e-4, 1.0, 1e-4, "Adam learning rate of the task logits w", log=True),
        HParam("gamma", 1e-5, 0.0, 0.01, 1e-6,
               "weight decay of the logits (L2 added to their gradient; FAMO's toy uses 0)"),
    ),
    pipelines={"reference": "SAM-GS FAMO code with FAMO's own loss shift L - floor (unshifted it turns "
                            "NaN), no clip",
               "clean": "same rule, shifted losses clamped to >= 1e-8 so every weight stays finite"},
),)
