"""Aligned-MTL (Senushkin, Patakin, Kuznetsov, Konushin, "Independent Component Alignment for Multi-Task
Learning", CVPR 2023), as in the SAM-GS toy code's ``AlignedMTL.alignedmtl`` (methods-spec.md §5.12).

With M = G G^T = V diag(lambda) V^T (eigenvalues descending), rank = #{lambda_i > tol},
tol = lambda_max * K * eps(dtype), and the kept eigenpairs i < rank::

    B = sqrt(lambda_R) V_R diag(lambda_R^{-1/2}) V_R^T      (lambda_R: the smallest kept eigenvalue; scale 'min')
    alpha = B 1,   d = G^T B 1 = sum_k alpha_k g_k

Rank K gives d = sqrt(lambda_min) G^T M^{-1/2} 1 (aligned task gradients orthogonal with equal norms
sqrt(lambda_min)); rank 1 (parallel, antiparallel, one zero task) gives B = v_1 v_1^T and d = sum_k g_k
exactly (the PLAIN SUM, with alpha = M 1 / tr M); rank 0 (all gradients zero) gives d = 0 with alpha = 1
(torchjd's B = I; the published SAM-GS code raises IndexError there).

K = 2 closed form (methods-spec.md §4): with a = |g1|^2, b = |g2|^2, c = g1.g2, det = ab - c^2 computed
without cancellation as sum_{i<j} (g1_i g2_j - g1_j g2_i)^2, s = sqrt(det),
lambda_max = (a + b + sqrt((a - b)^2 + 4c^2))/2 and lambda_min = det / lambda_max:
alpha = (b + s - c, a + s - c) / (sqrt(lambda_max) (sqrt(lambda_max) + sqrt(lambda_min))).
General K: ``linalg.sym_eig`` (cyclic Jacobi); eigenvalues with index >= D are never kept (rank M <= D,
so on the 2-parameter toys a K = 3 Gram matrix is rank <= 2 whatever round-off says).

Pipelines (native d is the same in both):

* ``reference``: clip1(K d), as the SAM-GS ``overwrite_grad`` (x K) and ``backward`` (clip) do; the
  tolerance uses eps of the working dtype, as the code's ``torch.finfo(singulars.dtype).eps`` (float32 in
  the published runs); ``scale_mode`` is ignored by that code (always 'min'), so it is not a setting here;
  rank 0 gives d = 0 instead of the code's IndexError.
* ``clean``: d as LibMTL / the paper define it (alpha = B 1), no x K, no clip.

aux ``weights``: alpha = B 1.
"""
import torch

from ..base import Method, Post, combine, gram
from ..linalg import sym_eig


def weights_2(G: torch.Tensor) -> torch.Tensor:
    """alpha = B 1 for K = 2 by the closed form."""
    eps = torch.finfo(G.dtype).eps
    g1, g2 = G[:, 0], G[:, 1]
    a = (g1 * g1).sum(-1)
    b = (g2 * g2).sum(-1)
    c = (g1 * g2).sum(-1)
    cross = g1[:, :, None] * g2[:, None, :] - g1[:, None, :] * g2[:, :, None]
    det = 0.5 * (cross * cross).sum((-1, -2))
    tr = a + b
    lmax = 0.5 * (tr + torch.sqrt((a - b) ** 2 + 4.0 * c * c))
    pos = lmax > 0
    lmax_safe = torch.where(pos, lmax, 1.0)
    lmin = torch.where(pos, det / lmax_safe, 0.0)
    tol = lmax * 2 * eps
    rank2 = lmin > tol
    rank1 = pos & ~rank2
    s = torch.sqrt(det)
    sl, sm = torch.sqrt(lmax_safe), torch.sqrt(lmin)
    den = sl * (sl + sm)
    w_full = torch.stack([b + s - c, a + s - c], 1) / den[:, None]
    w_one = torch.stack([a + c, b + c], 1) / torch.where(pos, tr, 1.0)[:, None]
    w = torch.where(rank2[:, None], w_full, torch.ones_like(w_full))
    return torch.where(rank1[:, None], w_one, w)


def weights_general(G: torch.Tensor, sweeps: int | None = None) -> torch.Tensor:
    """alpha = B 1 for any K via the Jacobi eigendecomposition."""
    _, K, D = G.shape
    eps = torch.finfo(G.dtype).eps
    lam, V = sym_eig(gram(G), sweeps)
    tol = lam[:, :1] * K * eps
    keep = lam > tol
    if K > D:
        static = torch.arange(K, device=G.device) < D
        keep = keep & static
    inf = torch.full_like(lam, float("inf"))
    lam_r = torch.where(keep, lam, inf).amin(-1, keepdim=True)
    anyk = keep.to(G.dtype).amax(-1, keepdim=True) > 0
    lam_r = torch.where(anyk, lam_r, 1.0)
    scale = torch.where(keep, torch.sqrt(lam_r / torch.where(keep, lam, 1.0)), 0.0)   # [B, K] per eigenpair
    proj = V.sum(1)                                                                  # v_i . 1, [B, K]
    w = (V * (scale * proj)[:, None, :]).sum(-1)                                     # sum_i s_i (v_i.1) v_i
    return torch.where(anyk, w, torch.ones_like(w))


def step(G, L, state, hp, ctx):
    w = weights_2(G) if G.shape[1] == 2 else weights_general(G)
    return combine(w, G), state, {"weights": w}


METHODS = (Method(
    key="alignedmtl", name="Aligned-MTL", family="gradient surgery",
    paper="Senushkin et al., Independent Component Alignment for Multi-Task Learning, CVPR 2023",
    summary="Align the task gradients into orthogonal components of equal norm (the smallest singular "
            "value) and sum them; collinear gradients give the plain sum.",
    step=step,
    reference=Post(times_k=True, clip=True), clean=Post(),
    pipelines={"reference": "clip1(K G^T B 1), scale mode 'min' (as the SAM-GS code)",
               "clean": "G^T B 1 as LibMTL / the paper, no x K, no clip"},
),)
