"""DWA: Dynamic Weight Average (Liu, Johns and Davison, "End-to-End Multi-Task Learning with Attention",
CVPR 2019).

The original (MTAN code) weights task k in epoch e >= 2 by the rate at which its loss fell::

    w_k = Lbar_k(e-1) / Lbar_k(e-2),   lambda = K softmax(w / T),   loss = sum_k lambda_k L_k
    (lambda = 1 in epochs 0 and 1; Lbar = the epoch's mean loss)

Pipelines (neither has x K nor an effective clip, methods-spec.md §1.1):

* ``reference``: the per-iteration variant of the SAM-GS / Nash-MTL code (methods-spec.md §5.5, §12-12),
  exactly as published. A cost buffer C of 2W rows, initialised to ONES, is shifted by one row every call
  and the raw loss appended; from the call with counter r > W on (the (W+2)-th call) the weights are
  recomputed every call from the buffer, padding ones included::

      ws_k = mean(C[W:, k]) / mean(C[:W, k]);   lambda = K exp(ws / T) / sum_j exp(ws_j / T)
      loss = mean_k(lambda_k L_k)   =>   d = (1/K) sum_k lambda_k g_k       (weights = lambda / K)

  The softmax is the published unstabilised ``exp / sum exp``: on these landscapes the losses cross zero,
  a window mean near zero makes a ratio huge, exp overflows and lambda (then theta) turns NaN, as the
  published runs do; the engine freezes and flags such a run.
* ``clean``: the original DWA on losses shifted by the landscape floor (L - floor), with windows of W
  iterations in place of epochs: lambda is recomputed only at the first step of each window e >= 2, from
  the mean shifted loss of windows e-1 and e-2 (the buffer's two halves just before the new loss enters),
  and held for the window; loss = sum_k lambda_k L_k (the original's sum, not the mean), so
  d = sum_k lambda_k g_k. The softmax is the stable one; a window mean <= 0 (a loss at or below the
  floor, impossible on the built-in landscapes) gives the neutral ratio 1.

State: C [B, 2W, K] (ones), lambda [B, K] (ones), r [B] (calls so far, saturating at 2W + 1), phase [B]
(position inside the current window, 0 .. W-1). W (``iteration_window``) is static: it sets C's shape.
The buffer shift is ``cat(C[:, 1:], L)``, never an in-place write.
"""
import torch

from ..base import HParam, Method, col, combine


def init(B, K, D, hp, *, dtype, device):
    W = int(hp["iteration_window"])
    z = torch.zeros(B, dtype=dtype, device=device)
    return {"C": torch.ones(B, 2 * W, K, dtype=dtype, device=device),
            "lam": torch.ones(B, K, dtype=dtype, device=device),
            "r": z, "phase": z.clone()}


def step(G, L, state, hp, ctx):
    W = int(hp["iteration_window"])
    T = col(hp["temp"])
    K = G.shape[1]
    C, lam, r, phase = state["C"], state["lam"], state["r"], state["phase"]
    if ctx.pipeline == "clean":
        cost = L - ctx.loss_floor
        new = C[:, W:].mean(1)                     # window e-1 (the buffer before the new loss enters)
        old = C[:, :W].mean(1)                     # window e-2
        ws = torch.where(old > 0, new / torch.where(old > 0, old, 1.0), 1.0)
        fresh = K * torch.softmax(ws / T, dim=-1)
        update = (phase == 0) & (r >= 2 * W)
        C = torch.cat([C[:, 1:], cost[:, None, :]], 1)
        lam = torch.where(col(update), fresh, lam)
        w = lam
    else:
        C = torch.cat([C[:, 1:], L[:, None, :]], 1)
        ws = C[:, W:].mean(1) / C[:, :W].mean(1)
        e = torch.exp(ws / T)
        fresh = K * e / e.sum(-1, keepdim=True)
        lam = torch.where(col(r > W), fresh, lam)
        w = lam / K
    r = torch.clamp(r + 1, max=2 * W + 1)
    phase = torch.where(phase + 1 >= W, 0.0, phase + 1)
    return combine(w, G), {"C": C, "lam": lam, "r": r, "phase": phase}, {"weights": w}


METHODS = (Method(
    key="dwa", name="DWA", family="loss weighting",
    paper="Liu, Johns and Davison, End-to-End Multi-Task Learning with Attention, CVPR 2019",
    summary="Weight each task by how slowly its loss has been falling (ratio of recent mean losses).",
    init=init, step=step,
    hparams=(
        HParam("iteration_window", 25, 1, 500, 1,
               "W: iterations per averaging window (the cost buffer holds 2W losses)",
               integer=True, static=True),
        HParam("temp", 2.0, 0.1, 20.0, 0.1, "softmax temperature T over the loss ratios"),
    ),
    pipelines={"reference": "published per-iteration variant: 2W buffer padded with ones, raw losses, "
                            "unstable softmax (NaN on these landscapes), (1/K) sum lambda_k g_k",
               "clean": "original DWA on shifted losses, per window of W iterations, sum_k lambda_k g_k"},
),)
