"""Scale-invariant LS: descend sum_k log L_k, so every task's gradient is divided by its own loss.

    d = sum_k g_k / L_k            (weights w_k = 1 / L_k)

The log-loss objective is the "scale-invariant" baseline of the Nash-MTL / FAMO code bases (Navon et al.,
"Multi-Task Learning as a Bargaining Game", ICML 2022, and Liu et al., "FAMO: Fast Adaptive Multitask
Optimization", NeurIPS 2023), carried over into the SAM-GS toy code (methods-spec.md §5.3).

Pipelines (no post-processing in either: the SAM-GS base-class clip is a no-op for a weighted loss, §1.1):

* ``reference``: ``g / L`` literally, as the published backward computes it. A negative loss flips that
  task's gradient (the method then *increases* the loss, methods-spec.md §1.2-4 and §12-6); L_k = 0 gives
  inf / NaN, which the engine freezes and flags. No clip, no x K.
* ``clean``: the losses are shifted by the landscape's floor, d = sum_k g_k / (L_k - floor_k), so the log is
  defined everywhere on the landscape. The shifted loss is clamped to at least 1e-8 (never active on the
  built-in landscapes, whose floors lie below their minima) so the weights stay finite and positive.
"""
import torch

from ..base import Method, combine

SHIFT_MIN = 1e-8


def step(G, L, state, hp, ctx):
    if ctx.pipeline == "clean":
        w = 1.0 / torch.clamp(L - ctx.loss_floor, min=SHIFT_MIN)
    else:
        w = 1.0 / L
    return combine(w, G), state, {"weights": w}


METHODS = (Method(
    key="scaleinvls", name="Scale-invariant LS", family="loss weighting",
    paper="Scale-invariant baseline (sum of log losses) of Navon et al., Multi-Task Learning as a "
          "Bargaining Game, ICML 2022 (also in FAMO, Liu et al., NeurIPS 2023)",
    summary="Descend the sum of the log losses: each task's gradient is divided by its loss.",
    step=step, reference_vjp=True,
    pipelines={"reference": "sum_k g_k / L_k on raw losses (a negative loss flips its task), no clip; computed "
                            "as the code's backward of sum_k log L_k (one reverse pass with 1/L_k at the top)",
               "clean": "sum_k g_k / (L_k - floor_k) on losses shifted by the landscape floor, no clip"},
),)
