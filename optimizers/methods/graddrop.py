"""GradDrop: gradient sign dropout (Chen, Ngiam, Huang, Luong, Kretzschmar, Chai, Anguelov, "Just Pick a Sign:
Optimizing Deep Multitask Models with Gradient Sign Dropout", NeurIPS 2020), in the parameter-level form of
the SAM-GS toy code (methods-spec.md §5.7).

Per coordinate p, the positive sign purity and one uniform draw per coordinate (shared by all tasks)::

    P_p = 0.5 (1 + sum_k g_kp / (sum_k |g_kp| + 1e-8)),   U_p ~ U[0, 1)   (ctx.uniform)
    M_kp = [P_p > U_p][g_kp > 0] + [P_p < U_p][g_kp < 0]
    d = mean_k (M_k * g_k)                              (the native output)

so every coordinate keeps only its positive or only its negative task components, the positive ones with
probability P_p: E[K d_p] = P_p sum_k g_kp^+ + (1 - P_p) sum_k g_kp^-. There are no per-task weights (the
mask acts per coordinate), so ``aux`` is empty.

Pipelines:
* ``reference``: clip1(K d), as the SAM-GS ``overwrite_grad`` (x K "to match the sum loss") and clip do
  (``Post(times_k=True, clip=True)``). The authors draw U from torch's global generator seeded once; here it
  comes from the per-run counter-based stream, so runs agree with theirs in distribution only.
* ``clean``: K d = sum_k M_k g_k without the clip (``Post(times_k=True)``): the sum over tasks is how the
  paper's Algorithm 1 (and LibMTL, torchjd) combines the masked gradients, and it keeps the scale of LS.
  The original applies the drop to activations (gradients times sign(input), summed over the batch, with a
  ``leak``); a 2-parameter toy has no representation, so the parameter-level variant is the applicable one.
Edge cases (finite in both pipelines): an all-zero coordinate gives P = 0.5 and contributes 0; identical
signs give P ~ 1 (or 0) and keep the coordinate; a tie P == U drops both signs (measure zero).
"""
import torch

from ..base import Method, Post

SALT_U = 0x6D02          # ctx.uniform salt of the per-coordinate draws
EPS = 1e-8


def purity(G: torch.Tensor) -> torch.Tensor:
    """P[B, D] = 0.5 (1 + sum_k g_k / (sum_k |g_k| + 1e-8))."""
    return 0.5 * (1.0 + G.sum(1) / (G.abs().sum(1) + EPS))


def drop(G: torch.Tensor, U: torch.Tensor) -> torch.Tensor:
    """The native direction mean_k(M_k * g_k) for explicit draws ``U[B, D]``."""
    P = purity(G)[:, None, :]
    U = U.to(G.dtype)[:, None, :]
    M = ((P > U) & (G > 0)) | ((P < U) & (G < 0))
    return (G * M.to(G.dtype)).mean(1)


def step(G, L, state, hp, ctx):
    U = ctx.uniform((G.shape[2],), SALT_U)
    return drop(G, U), state, {}


METHODS = (Method(
    key="graddrop", name="GradDrop", family="gradient surgery",
    paper="Chen, Ngiam, Huang, Luong, Kretzschmar, Chai, Anguelov: Just Pick a Sign: Optimizing Deep "
          "Multitask Models with Gradient Sign Dropout, NeurIPS 2020",
    summary="Per coordinate, keep only the positive or only the negative task gradients, chosen at random "
            "in proportion to their sign purity.",
    step=step,
    reference=Post(times_k=True, clip=True), clean=Post(times_k=True),
    aux=(), random=True,
    pipelines={"reference": "SAM-GS parameter-level drop: clip1(K mean_k M_k g_k)",
               "clean": "same drop, sum_k M_k g_k (K x the mean), no clip"},
),)
