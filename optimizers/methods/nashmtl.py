"""Nash-MTL: multi-task learning as a bargaining game (Navon, Shamsian, Achituve, Maron, Kawaguchi,
Chechik & Fetaya, "Multi-Task Learning as a Bargaining Game", ICML 2022); methods-spec.md §5.11.

The Nash bargaining solution is the alpha > 0 with ``M alpha = 1/alpha`` (M = G G^T, element-wise
reciprocal), i.e. every task's improvement g_k.d equals 1/alpha_k for ``d = sum_k alpha_k g_k``.
K = 2 has the closed form ``alpha_k = 1/(n_k sqrt(1 + cos))``, ``d = (u1 + u2)/sqrt(1 + cos)``,
``|d| = sqrt(2)``; K > 2 uses the damped Newton of ``optimizers.solvers.nash_weights``.

State ``alpha_prev[B, K]`` (init 1, as the code's ``prvs_alpha``), kept in float64 whatever the run's
dtype: the published code solves for alpha with cvxpy in float64 and keeps it as a float64 array, and so
do we (near-opposite gradients make alpha ~ 1/sqrt(1 + cos) with 1 + cos ~ 1e-7, which float32 cannot
resolve). No positive solution exists when a gradient is zero or 0 lies in the convex hull of the
gradients (e.g. exactly opposite gradients); the published code's solver then fails and it keeps the
previous alpha, which both pipelines do here (1 + cos <= 16 eps(float64) counts as opposite; K > 2 uses
``solvers.nash_mn_eps`` at the precision the Gram matrix was computed in, so that K > D gradients whose
float32 Gram matrix is singular only up to round-off do not pass for feasible). On the first call that
gives alpha = (1, 1), d = g1 + g2; a zero gradient therefore still moves along the others.

Pipelines:

* ``reference`` (SAMGS = NASH = FAMO ``NashMTL``, ``update_weights_every = 1``), the code's data flow step by
  step, with its iterative CCCP solver replaced by the exact solution: GTG = G G^T and its Frobenius norm nf
  in the run's dtype (``torch.mm``, ``torch.norm``), GTGn = GTG/nf in the run's dtype, then in float64 the
  alpha solving the *raw* system ``alpha_i nf (GTGn alpha)_i = 1`` (= alpha_n/sqrt(nf) for the normalised
  solution alpha_n). The code's first CCCP stop test is reproduced (hyperparameter ``stop_test`` = 1, the
  default), because it is one cheap line: if ``|GTGn alpha_prev - 1/(alpha_prev + 1e-10)| < 1e-3`` (the
  *normalised* system, while the solver solves the raw one) the code returns alpha_prev unchanged. This is the
  documented first-call quirk for equal gradients (alpha = (1, 1), d = 2g), and it also fires whenever
  alpha_prev happens to solve the normalised system (e.g. T5 right after a T1 step). Beyond that the code's
  CCCP converges to the exact solution used here (~1e-5). The code then backpropagates the weighted loss
  ``sum_k alpha_k L_k`` (``Method.reference_vjp``: one reverse pass with alpha rounded to the run's dtype), no
  clip (the SAMGS base class clips before backward, a no-op). On the ridge starts of ``two_optima`` these
  rounding steps decide which side of the gate kink a run takes, so they are kept as the code has them.
  ``stop_test = 0`` drops the stop test (exact weights at every step), which is how the 25-start grid in
  ``../shared/reference`` was made ("exact K = 2 weights"); ``tests/test_fidelity.py`` compares against each
  reference file with the setting it was made with.
* ``clean`` (the Nash-MTL paper and official code): the same alpha (solved from G G^T in float64) without the
  stop-test quirk, d = sum alpha_k g_k, and the engine clips the result to norm 1
  (``clip_grad_norm_(max_norm=1)`` after backward), so d is the unit bisector direction for K = 2.

``aux["weights"]`` = alpha (d = sum alpha_k g_k).
"""
import torch

from .. import solvers
from ..base import HParam, Method, Post, combine


SOLVE_DTYPE = torch.float64   # the published code solves with cvxpy in float64


def init(B, K, D, hp, *, dtype, device):
    return {"alpha_prev": torch.ones(B, K, dtype=SOLVE_DTYPE, device=device)}


def step(G, L, state, hp, ctx):
    D = G.shape[2]
    ap = state["alpha_prev"]
    if ctx.pipeline == "reference":
        M = solvers.gram_exact(G)
        nf = torch.sqrt((M * M).sum((-1, -2)))
        pos = nf > 0
        Mn = (M / torch.where(pos, nf, torch.ones_like(nf))[:, None, None]).to(SOLVE_DTYPE)
        root_nf = torch.sqrt(torch.where(pos, nf, torch.ones_like(nf)).to(SOLVE_DTYPE))[:, None]
        # K >= 3: with K > D the Gram matrix is singular up to its own round-off, which must not pass for a
        # positive solution, so feasibility is judged at the Gram's precision (K = 2: 1 + cos > 0 in float64)
        precision = G.dtype if G.shape[1] > 2 else None
        alpha_n, ok = solvers.nash_weights(Mn, ap * root_nf, max_support=D + 1, precision=precision)
        alpha = torch.where((ok & pos)[:, None], alpha_n / root_nf, ap)
        r = (Mn * ap[:, None, :]).sum(-1) - 1.0 / (ap + 1e-10)
        stop = pos & (torch.sqrt((r * r).sum(-1)) < 1e-3) & (hp["stop_test"] > 0.5)
        alpha = torch.where(stop[:, None], ap, alpha)
    else:
        alpha, _ = solvers.nash_weights(solvers.gram_exact(G.to(SOLVE_DTYPE)), ap, max_support=D + 1)
    weights = alpha.to(G.dtype)
    return combine(weights, G), {"alpha_prev": alpha}, {"weights": weights}


METHODS = (Method(
    key="nashmtl", name="Nash-MTL", family="game-theoretic",
    paper="Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya, Multi-Task Learning as a "
          "Bargaining Game, ICML 2022",
    summary="Weight the tasks by the Nash bargaining solution (M alpha = 1/alpha): for two tasks the "
            "bisector of the unit gradients, at norm sqrt(2).",
    init=init, step=step,
    hparams=(
        HParam("stop_test", 1, 0, 1, 1,
               "reference pipeline only: 1 = keep the published CCCP solver's first stop test (alpha_prev is "
               "kept when it solves the normalised system to 1e-3), 0 = the exact bargaining weights at every "
               "step (as the 25-start grid reference was made)", integer=True),
    ),
    reference=Post(), clean=Post(clip=True), reference_vjp=True,
    pipelines={"reference": "alpha from the Gram matrix normalised as the code does, solved in float64, as loss "
                            "weights (one reverse pass), no clip (|d| = sqrt 2), the code's first stop-test quirk, "
                            "previous alpha when infeasible",
               "clean": "sum alpha_k g_k clipped to norm 1 as the paper's code, previous alpha when "
                        "infeasible"},
),)
