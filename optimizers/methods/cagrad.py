"""CAGrad: conflict-averse gradient descent (Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient
Descent for Multi-task Learning", NeurIPS 2021); methods-spec.md §5.10.

Maximise the worst task's improvement within a ball around the mean gradient g0 = (1/K) sum_k g_k,
``max_d min_k g_k.d  s.t.  |d - g0| <= c |g0|``, solved through its dual on the simplex::

    w = argmin_{w in simplex} g_w.g0 + c' |g_w|,    g_w = sum_k w_k g_k
    d_CA = g0 + lambda g_w,                          lambda = c' / |g_w|

so d = sum_k (1/K + lambda w_k) g_k / rescale; ``aux["weights"]`` holds those effective weights.
K = 2 uses the exact closed form of §5.10 (the published code calls scipy SLSQP from w = 1/K, which
agrees to ~1e-3 and is sometimes worse); K > 2 the exact active-set enumeration of
``optimizers.solvers.cagrad_weights`` (supports of at most D + 1 gradients).

Pipelines:

* ``reference`` (SAMGS = NASH ``CAGrad.cagrad(rescale=1)``): c' = c sqrt(mean(G G^T) + 1e-8) + 1e-8,
  lambda = c'/(|g_w| + 1e-8), native d = d_CA / (1 + c^2); the engine then writes clip1(K d)
  (``overwrite_grad``'s x K, then ``clip_grad_norm_(max_norm=1)``).
* ``clean``: the CAGrad authors' own toy (``toy.py`` in Cranial-XIX/CAGrad, the same landscape):
  c' = c |g0|, lambda = c'/|g_w| (lambda g_w := 0 when g_w = 0, the limit of the regularised
  formula, so d = g0 there), native d = d_CA / (1 + c), no x K, no clip. The toy's 1e-4 smoothing
  constants and its bounded scalar search are replaced by the exact minimiser. The rescale is a
  constant factor: the paper's Algorithm 1 has none, NASH/LibMTL use 1/(1 + c^2); under Adam it only
  interacts with eps.

Hyperparameter c (default 0.4, the SAMGS and NASH code default; the SAMGS toy yaml intends 0.5, the
CAGrad authors' toy and LibMTL use 0.5 and the paper's reference data is at 0.5, methods-spec §1.2-1).
For 0 <= c < 1 CAGrad converges to a stationary point of the mean loss (the paper's theorem).

Degenerate inputs (finite in both pipelines): equal gradients give d_CA = (1 + c) g; a zero g1 gives
w = 1 (g_w = 0) and d_CA = g0; opposite gradients with equal norms have g0 = 0 and give d ~ 0.
"""
import torch

from .. import solvers
from ..base import HParam, Method, Post, col, combine


def step(G, L, state, hp, ctx):
    K, D = G.shape[1], G.shape[2]
    c = hp["c"]
    M = solvers.gram_exact(G)
    g0 = G.mean(1)
    if ctx.pipeline == "reference":
        cp = solvers.cagrad_cprime(M, c)
    else:
        cp = c * torch.sqrt((g0 * g0).sum(-1))
    w = solvers.cagrad_weights(M, c, cprime=cp, G=G, max_support=D + 1)
    gw = combine(w, G)
    ngw = torch.sqrt((gw * gw).sum(-1))
    if ctx.pipeline == "reference":
        lam = cp / (ngw + 1e-8)
        rescale = 1.0 + c * c
    else:
        pos = ngw > 0
        lam = torch.where(pos, cp / torch.where(pos, ngw, torch.ones_like(ngw)), torch.zeros_like(ngw))
        rescale = 1.0 + c
    d = (g0 + col(lam) * gw) / col(rescale)
    weights = (1.0 / K + col(lam) * w) / col(rescale)
    return d, state, {"weights": weights}


METHODS = (Method(
    key="cagrad", name="CAGrad", family="game-theoretic",
    paper="Liu, Liu, Jin, Stone & Liu, Conflict-Averse Gradient Descent for Multi-task Learning, "
          "NeurIPS 2021",
    summary="Move from the mean gradient, within a ball of radius c|g0|, towards the direction that "
            "most improves the worst task.",
    step=step,
    hparams=(
        HParam("c", 0.4, 0.0, 1.0, 0.05,
               "conflict-aversion radius: |d - g0| <= c |g0| (0 = plain mean gradient); "
               "0.4 in the SAM-GS/Nash-MTL code, 0.5 in the CAGrad authors' toy"),
    ),
    reference=Post(times_k=True, clip=True), clean=Post(),
    pipelines={"reference": "clip1(K d_CA / (1 + c^2)) with the code's 1e-8 terms, exact minimiser",
               "clean": "d_CA / (1 + c) as the authors' toy, c' = c|g0|, exact minimiser, no x K, no clip"},
),)
