"""Nash-MTL: multi-task learning as a bargaining game (Navon, Shamsian, Achituve, Maron, Kawaguchi,
Chechik & Fetaya, "Multi-Task Learning as a Bargaining Game", ICML 2022); methods-spec.md §5.11.

The Nash bargaining solution is the alpha > 0 with ``M alpha = 1/alpha`` (M = G G^T, element-wise
reciprocal), i.e. every task's improvement g_k.d equals 1/alpha_k for ``d = sum_k alpha_k g_k``.
K = 2 has the closed form ``alpha_k = 1/(n_k sqrt(1 + cos))``, ``d = (u1 + u2)/sqrt(1 + cos)``,
``|d| = sqrt(2)``; K > 2 uses the damped Newton of ``optimizers.solvers.nash_weights``.

State ``alpha_prev[B, K]`` (init 1, as the code's ``prvs_alpha``). No positive solution exists when a
gradient is zero or 0 lies in the convex hull of the gradients (e.g. exactly opposite gradients); the
published code's solver then fails and it keeps the previous alpha, which both pipelines do here
(1 + cos <= 16 eps counts as opposite; see ``solvers.nash_mn_eps`` for K > 2). On the first call that
gives alpha = (1, 1), d = g1 + g2; a zero gradient therefore still moves along the others.

Pipelines:

* ``reference`` (SAMGS = NASH = FAMO ``NashMTL``, ``update_weights_every = 1``): d = sum alpha_k g_k,
  no clip (the SAMGS base class clips before backward, a no-op). The code's first CCCP stop test is
  reproduced, because it is one cheap line: if ``|M/|M|_F alpha_prev - 1/(alpha_prev + 1e-10)| < 1e-3``
  (the *normalised* system, while the solver solves the raw one) the code returns alpha_prev
  unchanged. This is the documented first-call quirk for equal gradients (alpha = (1, 1), d = 2g),
  and it also fires whenever alpha_prev happens to solve the normalised system (e.g. T5 right after
  a T1 step). Beyond that the code's CCCP converges to the exact solution used here (~1e-5).
* ``clean`` (the Nash-MTL paper and official code): the same alpha without the stop-test quirk, and
  the engine clips the result to norm 1 (``clip_grad_norm_(max_norm=1)`` after backward), so d is the
  unit bisector direction for K = 2.

``aux["weights"]`` = alpha (d = sum alpha_k g_k).
"""
import torch

from . import solvers
from .base import Method, Post, combine


def init(B, K, D, hp, *, dtype, device):
    return {"alpha_prev": torch.ones(B, K, dtype=dtype, device=device)}


def step(G, L, state, hp, ctx):
    D = G.shape[2]
    ap = state["alpha_prev"]
    M = solvers.gram_exact(G)
    alpha, _ = solvers.nash_weights(M, ap, max_support=D + 1)
    if ctx.pipeline == "reference":
        nf = torch.sqrt((M * M).sum((-1, -2)))
        pos = nf > 0
        Mn = M / torch.where(pos, nf, torch.ones_like(nf))[:, None, None]
        r = (Mn * ap[:, None, :]).sum(-1) - 1.0 / (ap + 1e-10)
        stop = pos & (torch.sqrt((r * r).sum(-1)) < 1e-3)
        alpha = torch.where(stop[:, None], ap, alpha)
    return combine(alpha, G), {"alpha_prev": alpha}, {"weights": alpha}


METHODS = (Method(
    key="nashmtl", name="Nash-MTL", family="game-theoretic",
    paper="Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, Multi-Task Learning as a "
          "Bargaining Game, ICML 2022",
    summary="Weight the tasks by the Nash bargaining solution (M alpha = 1/alpha): for two tasks the "
            "bisector of the unit gradients, at norm sqrt(2).",
    init=init, step=step,
    reference=Post(), clean=Post(clip=True),
    pipelines={"reference": "sum alpha_k g_k, no clip (|d| = sqrt 2), the code's first stop-test quirk, "
                            "previous alpha when infeasible",
               "clean": "sum alpha_k g_k clipped to norm 1 as the paper's code, previous alpha when "
                        "infeasible"},
),)
