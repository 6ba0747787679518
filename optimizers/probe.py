"""A method's first step from a fresh state on given task gradients: what the aggregator playground shows.

``first_step(method, G, L, ...)`` calls the method's ``init`` and ``step`` once, as the engine's first step does
(t = 1, the run key the engine gives run 0 of a method, the pipeline's post-processing), on gradients and losses
that need no landscape: ``G[B, K, D]`` (or ``[K, D]``), ``L[B, K]`` (or ``[K]``). It returns the native direction,
the direction the pipeline hands to the outer optimiser (× K and / or clipped to norm 1 on the reference pipeline)
and the task weights.

Two differences from a run on a landscape, both stated where they are shown: the clean pipeline's loss shift
(``ctx.loss_floor``, the landscape's floor) is 0 unless given, since dragged vectors have no landscape; and where the
reference pipeline lets the published code backpropagate a weighted loss (``Method.reference_vjp``), the direction
is Σ w_k g_k from the method's weights, the vector the engine's one-pass vector-Jacobian product computes (the same
vector up to rounding).

*Stateful* methods (SAM-GS's momentum, Nash-MTL's previous weights, GradVac's targets, FAMO's and UW's weights, ...)
show their first step only: :func:`stateful` says which, so a page can label them.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch

from . import rng
from .base import Context, Method, clip1, combine, no_state


@dataclass
class FirstStep:
    native: torch.Tensor      # [B, D]: the method's own output
    d: torch.Tensor           # [B, D]: after the pipeline's post-processing (what Adam receives)
    weights: torch.Tensor     # [B, K]: the method's task weights (least-norm weights of d where it has none)
    aux: dict


def stateful(method: Method) -> bool:
    """Whether the method carries state from step to step (its first step is not its steady behaviour)."""
    return method.init is not no_state


def least_norm_weights(G: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """The least-norm w with Σ_k w_k g_k = d (D = 2), lightly regularised (as the engine reports weights)."""
    a = (G[..., 0] * G[..., 0]).sum(1)
    b = (G[..., 0] * G[..., 1]).sum(1)
    c = (G[..., 1] * G[..., 1]).sum(1)
    det = a * c - b * b + 1e-12 * (a + c) ** 2 + 1e-30
    y0 = (c * d[:, 0] - b * d[:, 1]) / det
    y1 = (a * d[:, 1] - b * d[:, 0]) / det
    return G[..., 0] * y0[:, None] + G[..., 1] * y1[:, None]


def first_step(method: Method, G, L=None, *, hparams: dict | None = None, pipeline: str = "reference", seed: int = 0,
               loss_floor=None, dtype=torch.float64) -> FirstStep:
    """The method's first step from a fresh state (see the module's docstring). ``hparams``: values over the
    method's defaults (checked against their specs); ``L`` defaults to ones."""
    G = torch.as_tensor(G, dtype=dtype)
    if G.dim() == 2:
        G = G[None]
    if G.dim() != 3:
        raise ValueError(f"G: expected [B, K, D] task gradients, got shape {list(G.shape)}")
    B, K, D = G.shape
    if K < method.min_tasks:
        raise ValueError(f"G: {method.key} needs at least {method.min_tasks} tasks, got {K}")
    L = torch.ones(B, K, dtype=dtype) if L is None else torch.as_tensor(L, dtype=dtype).reshape(-1, K).expand(B, K)
    floor = torch.zeros(B, K, dtype=dtype) if loss_floor is None else \
        torch.as_tensor(loss_floor, dtype=dtype).reshape(-1, K).expand(B, K)
    values = method.resolve(hparams)
    hp = {k: (v if method.hparam(k).static else torch.full((B,), float(v), dtype=dtype)) for k, v in values.items()}
    state = method.init(B, K, D, dict(values), dtype=dtype, device=G.device)
    # the engine's keys for runs 0..B-1 of this method's first variant (trajectories/engine.py)
    key = rng.run_keys(seed, B, stream=zlib.crc32(method.key.encode()))
    ctx = Context(pipeline, torch.ones(B, dtype=dtype), key, floor)
    native, _, aux = method.step(G, L, state, hp, ctx)
    weights = aux["weights"] if "weights" in aux else least_norm_weights(G, native)
    if pipeline == "reference" and method.reference_vjp:
        native = combine(aux["weights"], G)
    post = method.post(pipeline)
    d = native * K if post.times_k else native
    if post.clip:
        d = clip1(d)
    return FirstStep(native=native, d=d, weights=weights, aux=aux)
