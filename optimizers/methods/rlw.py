"""RLW: random loss weighting (Baijiong Lin, Feiyang Ye, Yu Zhang and Ivor W. Tsang, "Reasonable
Effectiveness of Random Weighting: A Litmus Test for Multi-Task Learning", TMLR 2022; arXiv 2111.10603).

Every step, every run draws fresh weights::

    eps ~ N(0, I_K),   w = softmax(eps),   d = sum_k w_k g_k          (sum_k w_k = 1)

The draw is ``ctx.normal((K,), salt)``: a pure function of the run's key and the step, so a run
reproduces whatever else shares its batch (the published code draws from torch's global generator,
seeded once with 42 across all starts, methods-spec.md §1 and §12-13: compare it in distribution only).

Pipelines: ``reference`` and ``clean`` are identical (the weights sum to 1; no x K and no effective clip,
methods-spec.md §1.1; the losses are not used, so there is nothing to shift).
"""
import torch

from ..base import Method, combine

SALT = 4101


def step(G, L, state, hp, ctx):
    eps = ctx.normal((G.shape[1],), SALT).to(G.dtype)
    w = torch.softmax(eps, dim=-1)
    return combine(w, G), state, {"weights": w}


METHODS = (Method(
    key="rlw", name="RLW", family="loss weighting",
    paper="Lin et al., Reasonable Effectiveness of Random Weighting: A Litmus Test for Multi-Task "
          "Learning, TMLR 2022 (arXiv 2111.10603)",
    summary="Weight the tasks by softmax of fresh standard-normal draws at every step.",
    step=step, random=True,
    pipelines={"reference": "sum_k w_k g_k, w = softmax(N(0, I)) per run per step, no clip",
               "clean": "same as reference"},
),)
