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
and no number is drawn.

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
import torch

from .base import Method, Post

SALT_ORDER = 0x5C01     # ctx.uniform salt of the visiting orders (K >= 3)


def visit_ranks(u: torch.Tensor) -> torch.Tensor:
    """Ranks from uniforms: ``u[B, K, K] -> r[B, K, K]`` with r_ij = #{j' : u_ij' < u_ij, or equal and j' < j}.

    Task i visits j at position r_ij, i.e. in the order of ``argsort(u_i, stable=True)`` (the argsort is
    never called: K^2 comparisons per row). The result has u's dtype and holds the integers 0..K-1.
    """
    K = u.shape[-1]
    ar = torch.arange(K, device=u.device)
    before = ar[None, :] < ar[:, None]                        # [j, j']: j' < j
    a = u[..., None, :]                                       # [B, i, 1, j']
    b = u[..., :, None]                                       # [B, i, j, 1]
    precedes = (a < b) | ((a == b) & before)
    return precedes.to(u.dtype).sum(-1)


def _sqnorm(x: torch.Tensor, faithful: bool) -> torch.Tensor:
    s = (x * x).sum(-1)
    return torch.sqrt(s) ** 2 if faithful else s


def project(G: torch.Tensor, ranks: torch.Tensor, *, include_self: bool = False,
            faithful: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequential PCGrad projections with explicit visiting ranks (general K).

    ``ranks[B, K, K]``: task i visits task j at position ranks[b, i, j] (each row a permutation of 0..K-1).
    ``include_self``: also visit j = i (the SAM-GS code's loop); otherwise that position does nothing.
    ``faithful``: form |g_j|^2 as norm(g_j)**2, as the SAM-GS code does.
    Returns ``(Gpc[B, K, D], W[B, K, K])`` with Gpc_i the projected g_i and Gpc = W G (up to rounding).
    """
    B, K, D = G.shape
    eye = torch.eye(K, dtype=G.dtype, device=G.device)
    gpc = G
    W = eye.expand(B, K, K)
    for p in range(K):
        sel = (ranks == p).to(G.dtype)                        # [B, i, j] one-hot: i visits j at position p
        if not include_self:
            sel = sel * (1.0 - eye)
        gj = sel @ G                                          # [B, K, D]: the ORIGINAL gradient visited by i
        dot = (gpc * gj).sum(-1)
        nsq = _sqnorm(gj, faithful)
        hit = dot < 0
        safe = torch.where(hit, nsq, 1.0)
        gpc = gpc - torch.where(hit[..., None], dot[..., None] * gj / safe[..., None], 0.0)
        W = W - torch.where(hit, dot / safe, 0.0)[..., None] * sel
    return gpc, W


def project_pair(G: torch.Tensor, *, faithful: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """K = 2 closed form of :func:`project` (either order): ``(Gpc[B, 2, D], W[B, 2, 2])``."""
    g1, g2 = G[:, 0], G[:, 1]
    c = (g1 * g2).sum(-1)
    hit = c < 0
    a = torch.where(hit, _sqnorm(g1, faithful), 1.0)
    b = torch.where(hit, _sqnorm(g2, faithful), 1.0)
    p1 = g1 - torch.where(hit[:, None], c[:, None] * g2 / b[:, None], 0.0)
    p2 = g2 - torch.where(hit[:, None], c[:, None] * g1 / a[:, None], 0.0)
    one = torch.ones_like(c)
    c21 = torch.where(hit, -c / b, 0.0)                       # coefficient of g2 in p1
    c12 = torch.where(hit, -c / a, 0.0)                       # coefficient of g1 in p2
    W = torch.stack([torch.stack([one, c21], -1), torch.stack([c12, one], -1)], 1)
    return torch.stack([p1, p2], 1), W


def pc_grads(G: torch.Tensor, ctx, salt: int = SALT_ORDER, *, include_self: bool = False,
             faithful: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The projected gradients and their coefficients ``(Gpc, W)``: K = 2 closed form, else random orders
    drawn from ``ctx.uniform((K, K), salt)``. Shared with POMSI (optimizers/msi.py)."""
    K = G.shape[1]
    if K == 2:
        return project_pair(G, faithful=faithful)
    ranks = visit_ranks(ctx.uniform((K, K), salt))
    return project(G, ranks, include_self=include_self, faithful=faithful)


def init(B, K, D, hp, *, dtype, device):
    return {}


def step(G, L, state, hp, ctx):
    ref = ctx.pipeline == "reference"
    gpc, W = pc_grads(G, ctx, SALT_ORDER, include_self=ref, faithful=ref)
    return gpc.sum(1), state, {"weights": W.sum(1)}


METHODS = (Method(
    key="pcgrad", name="PCGrad", family="gradient surgery",
    paper="Yu, Kumar, Gupta, Levine, Hausman, Finn: Gradient Surgery for Multi-Task Learning, NeurIPS 2020",
    summary="Project each task gradient onto the normal plane of every other task gradient it conflicts "
            "with, then sum.",
    init=init, step=step,
    reference=Post(clip=True), clean=Post(),
    random=True,
    pipelines={"reference": "SAM-GS code: shuffle over all K tasks (j = i included), sum, clip1 (no x K)",
               "clean": "paper: j != i in random order, sum, no clip"},
),)
