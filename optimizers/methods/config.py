"""ConFIG: conflict-free gradient direction (Liu, Chu, Thuerey, "ConFIG: Towards Conflict-free Training of
Physics Informed Neural Networks", arXiv 2408.11104, 2024; ICLR 2025), as torchjd's ``ConFIG`` (methods-spec.md
§6.5) with the default "Sum" preference w = 1::

    u_k = g_k / |g_k|  (a zero gradient gives u_k = 0),  U = [u_1; ...; u_K]  (K x D)
    v = pinv(U) 1,   vhat = v / max(|v|, 1e-12),   d = (sum_k g_k . vhat) vhat

v has equal (unit) projections on every task direction when that is possible, so d conflicts with no task.

K = 2 (derived, §6.5): v is proportional to u1 + u2, so d = ((n1 + n2)/m) (u1 + u2), with m the number of
nonzero gradients (m = 2 in the spec's formula; a zero task leaves d = the other gradient; both zero, d = 0).

General K (and D), without torch.linalg: pinv(U) 1 = pinv(U^T U) U^T 1, a D x D positive semi-definite
system whose right-hand side lies in the range of U^T U (a zero task has u_k = 0 and drops out, as pinv does
for a zero row). For K <= D and full row rank this is U^T (U U^T)^{-1} 1, the minimum-norm solution of
U v = 1; for K > D it is the least-squares v = argmin |U v - 1|. On the D = 2 landscapes it is a 2 x 2
solve in closed form: exact inverse when det A > 100 eps (tr A / 2)^2, otherwise A is treated as rank <= 1
and pinv(A) = A / tr(A)^2 (torch's truncation of tiny singular values, at a threshold the normal equations
can resolve). For D >= 3 (not used by the toys): eight rounds of iterated Tikhonov, x <- x + (A + lambda I)^{-1}
(b - A x) with lambda = 1e-2 tr A / D in float32 and 1e-5 tr A / D in float64, by unrolled Gaussian
elimination; it converges to pinv(A) b on the range of A and leaves the null space at 0 (b is in the range);
it matches pinv for well-conditioned U (to ~1e-4 in float32) and regularises ill-conditioned ones.
Precision: the normal equations square U's condition number, so in float32 nearly parallel or nearly
opposite units lose digits (|d error| up to ~1e-3 |g| at a cosine of +-(1 - 1e-5)); float64 is exact to ~1e-10.
When v explains nothing of the target (|U v|^2 < eps m, m the number of nonzero gradients; e.g. exactly
opposite gradients, where the exact v is 0 and the computed one is rounding noise) v is set to 0, so d = 0
instead of a noise direction.

Pipelines: ConFIG is not in the SAM-GS code: ``reference`` = ``clean`` = the rule above, no post-processing.
The direction is not a task weighting in general (K > D), so ``aux`` is empty.
Edge cases: exactly opposite -> d = 0; a zero task -> d = the other task's gradient; both zero -> 0; equal or
parallel -> g1 + g2.
"""
import torch

from ..base import Method, Post, norms, unit

_RIDGE = {torch.float32: 1e-2, torch.float64: 1e-5}


def _eps(dtype) -> float:
    return torch.finfo(dtype).eps


def pair(G: torch.Tensor) -> torch.Tensor:
    """K = 2 closed form: ((n1 + n2)/m) (u1 + u2), m = number of nonzero gradients (at least 1)."""
    n = norms(G)
    m = torch.clamp((n > 0).to(G.dtype).sum(1), min=1.0)
    return (n.sum(1) / m)[:, None] * unit(G).sum(1)


def _solve2_pinv(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """pinv(A) b for symmetric PSD A[B, 2, 2] in closed form (rank-deficient A handled as rank <= 1)."""
    p, q, r = A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
    b0, b1 = b[:, 0], b[:, 1]
    tr = p + r
    det = p * r - q * q
    full = det > 100.0 * _eps(A.dtype) * (0.25 * tr * tr)
    dsafe = torch.where(full, det, 1.0)
    x_full = torch.stack([(r * b0 - q * b1) / dsafe, (p * b1 - q * b0) / dsafe], -1)
    t2 = torch.where(tr > 0, tr * tr, 1.0)                   # rank 1: pinv(A) = A / tr(A)^2; rank 0: A = 0
    x_low = torch.stack([(p * b0 + q * b1) / t2, (q * b0 + r * b1) / t2], -1)
    return torch.where(full[:, None], x_full, x_low)


def _solve_elim(R: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """R x = b for SPD R[B, n, n] by unrolled Gaussian elimination without pivoting."""
    n = R.shape[-1]
    rows = [[R[:, i, j] for j in range(n)] for i in range(n)]
    rhs = [b[:, i] for i in range(n)]
    for k in range(n):
        for i in range(k + 1, n):
            f = rows[i][k] / rows[k][k]
            rows[i] = [rows[i][j] - f * rows[k][j] for j in range(n)]
            rhs[i] = rhs[i] - f * rhs[k]
    x = [None] * n
    for i in reversed(range(n)):
        s = rhs[i]
        for j in range(i + 1, n):
            s = s - rows[i][j] * x[j]
        x[i] = s / rows[i][i]
    return torch.stack(x, -1)


def _solve_tikhonov(A: torch.Tensor, b: torch.Tensor, rounds: int = 8) -> torch.Tensor:
    """Iterated Tikhonov: x <- x + (A + lambda I)^{-1} (b - A x), ``rounds`` times from x = 0."""
    n = A.shape[-1]
    eye = torch.eye(n, dtype=A.dtype, device=A.device)
    tr = (A * eye).sum((-2, -1))
    lam = torch.where(tr > 0, _RIDGE.get(A.dtype, 1e-2) * tr / n, 1.0)
    R = A + lam[:, None, None] * eye
    x = torch.zeros_like(b)
    for _ in range(rounds):
        x = x + _solve_elim(R, b - (A @ x[..., None])[..., 0])
    return x


def _pinv_solve(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return _solve2_pinv(A, b) if A.shape[-1] == 2 else _solve_tikhonov(A, b)


def general(G: torch.Tensor) -> torch.Tensor:
    """ConFIG for any K (and D) through the pseudo-inverse of the unit matrix U."""
    U = unit(G)
    mask = (norms(G) > 0).to(G.dtype)                        # the target 1, with zero tasks dropped
    v = _pinv_solve(U.transpose(1, 2) @ U, U.sum(1))         # pinv(U) 1 = pinv(U^T U) U^T 1
    fit = (U * v[:, None, :]).sum(-1)                         # U v
    explained = (fit * fit).sum(-1) >= _eps(G.dtype) * mask.sum(-1)
    v = torch.where(explained[:, None], v, 0.0)
    vn = torch.sqrt((v * v).sum(-1, keepdim=True))
    vhat = v / torch.clamp(vn, min=1e-12)
    length = (G * vhat[:, None, :]).sum((1, 2))
    return length[:, None] * vhat


def step(G, L, state, hp, ctx):
    d = pair(G) if G.shape[1] == 2 else general(G)
    return d, state, {}


METHODS = (Method(
    key="config", name="ConFIG", family="gradient surgery",
    paper="Liu, Chu, Thuerey: ConFIG: Towards Conflict-free Training of Physics Informed Neural Networks, "
          "ICLR 2025 (arXiv 2408.11104, 2024)",
    summary="Move along the direction with equal projections on every unit task gradient, with the length "
            "of the summed gradient's projection on it.",
    step=step,
    reference=Post(), clean=Post(),
    aux=(),
    pipelines={"reference": "not in the SAM-GS code: as clean, no post-processing",
               "clean": "torchjd ConFIG (pinv(U) 1, normalised, scaled by sum_k g_k . vhat)"},
),)
