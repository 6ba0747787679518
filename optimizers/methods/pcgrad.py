"""PCGrad: projecting conflicting gradients (Yu, Kumar, Gupta, Levine, Hausman, Finn, "Gradient Surgery for
Multi-Task Learning", NeurIPS 2020).

For every task i, start from g_i^PC = g_i and visit the other tasks j in a random order; whenever the
partially projected vector conflicts with the ORIGINAL gradient of j, remove that component::

    if g_i^PC . g_j < 0:   g_i^PC <- g_i^PC - (g_i^PC . g_j / |g_j|^2) g_j
    d = sum_i g_i^PC                                   (reduction "sum")

Every g_i^PC is a linear combination of the original gradients, g_i^PC = sum_k W_ik g_k; the step tracks W
and reports ``aux["weights"] = sum_i W_i.`` (so d = sum_k w_k g_k).

K = 2 (methods-spec.md §5.6, order-independent): with a = |g1|^2, b = |g2|^2, c = g1.g2::

    c < 0:  d = (1 - c/a) g1 + (1 - c/b) g2      else  d = g1 + g2

General K: the visiting orders are drawn per run and per task i from ``ctx.uniform((K, K))``: task i visits
j in increasing order of u_ij, the rank of u_ij being counted by pairwise comparisons (ties broken by the
index; no sort). Each of the K positions is then one batched masked projection (a one-hot selection
matrix times G). ``random=True`` only matters for K >= 3: for K = 2 the result does not depend on the order
and no number is drawn. The projections themselves are ``optimizers.shared.pc_grads`` (POMSI uses them
too).

Pipelines:
* ``reference`` reproduces ``PCGrad._project_conflicting`` of the SAM-GS toy code: the j-loop runs over a
  shuffle of ALL K tasks, so j = i is visited too (a projection onto the task's own original gradient when the
  partially projected vector has turned against it; impossible for K = 2), |g_j|^2 is formed as
  ``norm(g_j) ** 2``, the projection is written as (g_i.g_j) g_j / |g_j|^2, reduction "sum"; then the engine
  applies clip1 (no x K; ``Post(clip=True)``).
* ``clean`` is the paper's Algorithm 1: j runs over the other tasks only (as torchjd), no epsilon (the
  projection only fires when g_i^PC . g_j < 0, which needs g_j != 0), sum reduction, no clip.
Edge cases (both pipelines, all finite): c = 0 exactly or a zero gradient -> no projection (strict "<");
equal gradients -> 2g; exactly opposite -> both projected vectors are 0, d = 0.
Sources differ (§5.6): NASH has no clip, LibMTL adds 1e-8 to |g_j|^2, the CAGrad toy halves d.
"""
from ..base import Method, Post
from ..shared import pc_grads

SALT_ORDER = 0x5C01     # ctx.uniform salt of the visiting orders (K >= 3)


def step(G, L, state, hp, ctx):
    ref = ctx.pipeline == "reference"
    gpc, W = pc_grads(G, ctx, SALT_ORDER, include_self=ref, faithful=ref)
    return gpc.sum(1), state, {"weights": W.sum(1)}


METHODS = (Method(
    key="pcgrad", name="PCGrad", family="gradient surgery",
    paper="Yu, Kumar, Gupta, Levine, Hausman, Finn: Gradient Surgery for Multi-Task Learning, NeurIPS 2020",
    summary="Project each task gradient onto the normal plane of every other task gradient it conflicts "
            "with, then sum.",
    step=step,
    reference=Post(clip=True), clean=Post(),
    random=True,
    pipelines={"reference": "SAM-GS code: shuffle over all K tasks (j = i included), sum, clip1 (no x K)",
               "clean": "paper: j != i in random order, sum, no clip"},
),)
