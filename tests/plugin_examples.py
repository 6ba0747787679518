"""Method files as users write them, shared by the plugin tests and the pages' tests (not test modules)."""

# A method file as a user writes it (the README's example): momentum on the sum of unit task gradients.
UNIT_MOMENTUM = '''
"""Unit momentum: an EMA of the sum of unit task gradients (every task counts the same, whatever its scale)."""
import torch

from optimizers import HParam, Method


def init(B, K, D, hp, *, dtype, device):
    return {"m": torch.zeros(B, D, dtype=dtype, device=device)}        # state: one row per run


def step(G, L, state, hp, ctx):                                         # G[B, K, D], L[B, K]
    n = torch.sqrt((G * G).sum(-1, keepdim=True))                       # |g_k|, reduced over D only
    u = torch.where(n > 0, G / torch.where(n > 0, n, 1.0), 0.0)         # a zero gradient has no direction
    beta = hp["beta"][:, None]                                          # hyperparameters arrive per run: [B]
    m = beta * state["m"] + (1 - beta) * u.sum(1)                       # sum over tasks (dim 1), never runs (dim 0)
    return m, {"m": m}, {}


METHODS = (Method(
    key="unitmomentum", name="Unit momentum", family="similarity-aware",
    paper="(yours)", summary="An EMA of the summed unit task gradients.",
    init=init, step=step, aux=(),
    hparams=(HParam("beta", 0.9, 0.0, 0.99, 0.01, "EMA rate of the direction"),),
),)
'''

# Weights from a ridge-regularised Gram solve, through torch.linalg (which the C kernel does not take).
RIDGE_SOLVE = '''
import torch
from optimizers import Method


def step(G, L, state, hp, ctx):
    K = G.shape[1]
    M = G @ G.transpose(1, 2) + torch.eye(K, dtype=G.dtype)
    w = torch.linalg.solve(M, torch.ones(G.shape[0], K, 1, dtype=G.dtype))[..., 0]
    return (w[..., None] * G).sum(1), state, {"weights": w}


METHODS = (Method(key="ridgesolve", name="Ridge solve", family="game-theoretic", paper="(a test)",
                  summary="w = (G G^T + I)^-1 1", step=step),)
'''
