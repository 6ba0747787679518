"""MGDA: the multiple-gradient descent algorithm as multi-task learning (Sener & Koltun, "Multi-Task
Learning as Multi-Objective Optimization", NeurIPS 2018); methods-spec.md §5.8.

The direction is the min-norm point of the convex hull of the task gradients::

    w = argmin_{w in simplex} |sum_k w_k g_k|^2,        d = sum_k w_k g_k

It is 0 exactly at Pareto-stationary points, and otherwise a common descent direction of every task.

K = 2 (weight gamma on g1, a = |g1|^2, b = |g2|^2, c = g1.g2):

* ``reference``: the published ``MinNormSolver._min_norm_element_from2`` (SAMGS/NASH/FAMO copy):
  ``c >= a -> gamma = 0.999``, else ``c >= b -> gamma = 0.001``, else ``(b - c)/(a + b - 2c)``; the
  weights are applied to the losses times K (``sol * n_tasks``), so the engine's Post(times_k) writes
  ``K d``. Native d is ``gamma g1 + (1 - gamma) g2`` (T1: d = (0.5, 0.5), written (1, 1)). Quirks kept:
  equal gradients give gamma = 0.999; a zero g1 gives d = 0.001 g2 (the exact answer is 0).
* ``clean``: the exact minimiser gamma* = clip((b - c)/(a + b - 2c), 0, 1) (1/2 when g1 = g2), no x K;
  a zero gradient gives d = 0, opposite gradients d = 0.

K > 2 (both pipelines): the exact min-norm point by active-set enumeration
(``optimizers.solvers.min_norm_simplex`` with supports of at most D + 1 gradients). The published
MinNormSolver (best pair with the 0.999/0.001 rule, then projected gradient, 250 iterations, stop at
1e-5) approximates the same point; its end-point quirks are not reproduced for K > 2. ``reference``
still multiplies by K.

No hyperparameters (gradient normalisation "none", as the toy code). ``aux["weights"]`` = w (native).
"""
from .. import solvers
from ..base import Method, Post, combine


def step(G, L, state, hp, ctx):
    K, D = G.shape[1], G.shape[2]
    M = solvers.gram_exact(G)
    if K == 2:
        w = solvers.min_norm_2_code(M) if ctx.pipeline == "reference" else solvers.min_norm_2(M)
    else:
        w = solvers.min_norm_simplex(M, G=G, max_support=D + 1)
    return combine(w, G), state, {"weights": w}


METHODS = (Method(
    key="mgda", name="MGDA", family="game-theoretic",
    paper="Sener & Koltun, Multi-Task Learning as Multi-Objective Optimization, NeurIPS 2018",
    summary="Descend along the min-norm point of the convex hull of the task gradients "
            "(a common descent direction; zero at Pareto-stationary points).",
    step=step,
    reference=Post(times_k=True), clean=Post(),
    pipelines={"reference": "MinNormSolver K=2 rule (0.999/0.001 at the ends), weights x K, no clip",
               "clean": "exact min-norm point, no x K, no clip"},
),)
