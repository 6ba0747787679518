"""LS: linear scalarisation, the baseline every other method is compared with.

    d = sum_k g_k          (the gradient of the summed loss; task weights live in the landscape)

Pipelines: ``reference`` and ``clean`` alike, no post-processing (the published toy code's base-class clip
runs before backward and is a no-op, methods-spec.md §1.1).
"""
import torch

from ..base import Method


def step(G, L, state, hp, ctx):
    w = torch.ones_like(L)
    return G.sum(1), state, {"weights": w}


METHODS = (Method(
    key="ls", name="LS", family="loss weighting",
    paper="Linear scalarisation (sum of the task losses)",
    summary="Descend the plain sum of the task losses.",
    step=step,
    pipelines={"reference": "sum of gradients, no clip", "clean": "sum of gradients, no clip"},
),)
