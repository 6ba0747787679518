"""``three_bowls``: a three-task landscape gated like the one-optimum problem (K = 3 end to end).

Gates as on one_optimum: c1 = max(tanh(y/2), 0) (y > 0) and c2 = max(tanh(-y/2), 0) (y < 0).

* Above y = 0, three log valleys A_k = log(max(|h_k|, 5e-6)) + 6 with the one-optimum valleys
  h1 = 0.5(-x - 7) - tanh(-y) (near x = -5) and h2 = 0.5(-x + 3) + tanh(-y) + 2 (near x = 5), and a third
  between them, h3 = -0.5 x + tanh(-y) + 1 (from x = 2 at y = 0 to x = 0 for large y).
* Below y = 0, three offset bowls: the one-optimum bowls Q1 = ((x - 7)^2 + 0.1 (y + 8)^2)/10 - 20 and
  Q2 = ((x + 7)^2 + 0.1 (y + 8)^2)/10 - 20, and a rounder one above them, Q3 = (x^2 + (y + 4)^2)/10 - 20.
* f_k = c1 A_k + c2 Q_k, and ``scale`` multiplies f1.

The Pareto set is a curved triangle below y = 0 with corners near the three gated bowl minima
(+-7, -8.43) and (0, -5.2), computed numerically by ``landscapes/pareto.py`` (K > 2: the non-dominated
points of a zoomed grid). Gradients are closed forms with autograd's conventions at the kinks (clamp passes
the gradient where its input >= the bound, abs'(0) = 0), checked against autograd and against the same
landscape written as expressions in ``tests/test_custom_landscapes.py``.
"""
from __future__ import annotations

import torch

from .base import Landscape, Preset

LOWER = 5e-6
BOWLS = ((7.0, -8.0, 0.1), (-7.0, -8.0, 0.1), (0.0, -4.0, 1.0))     # centre x, centre y, y weight
SAMGS_1O = ((-8.0, 5.0), (-3.0, 7.5), (0.0, 10.0), (3.0, 7.5), (8.0, 5.0), (-10.0, -3.0), (10.0, -3.0))


def _valley(h, dh_dy):
    """A = log(max(|h|, LOWER)) + 6 and its gradient, given h's y-derivative (dh/dx = -0.5 for all three)."""
    a = h.abs()
    A = torch.clamp(a, LOWER).log() + 6
    dA = torch.where(a >= LOWER, torch.sign(h) / a, 0.0)
    return A, dA * -0.5, dA * dh_dy


class ThreeBowls(Landscape):
    def values_and_grads(self, theta, scale):
        x, y = theta[:, 0], theta[:, 1]
        ty = torch.tanh(-y)
        sech2 = 1 - ty * ty
        tp, tm = torch.tanh(y * 0.5), torch.tanh(-y * 0.5)
        c1, c2 = torch.clamp(tp, 0), torch.clamp(tm, 0)
        dc1 = torch.where(tp >= 0, 0.5 * (1 - tp * tp), 0.0)
        dc2 = torch.where(tm >= 0, -0.5 * (1 - tm * tm), 0.0)
        valleys = (_valley(0.5 * (-x - 7) - ty, sech2),
                   _valley(0.5 * (-x + 3) + ty + 2, -sech2),
                   _valley(-0.5 * x + ty + 1, -sech2))
        fs, gs = [], []
        for (A, Ax, Ay), (cx, cy, wy) in zip(valleys, BOWLS):
            Q = ((x - cx).pow(2) + wy * (y - cy).pow(2)) / 10 - 20
            Qx, Qy = (x - cx) / 5, wy * (y - cy) / 5
            fs.append(c1 * A + c2 * Q)
            gs.append(torch.stack([c1 * Ax + c2 * Qx, c1 * Ay + dc1 * A + c2 * Qy + dc2 * Q], 1))
        fs[0] = fs[0] * scale
        gs[0] = gs[0] * scale[:, None]
        return torch.stack(fs, 1), torch.stack(gs, 1)

    def values(self, theta, scale):
        return self.values_and_grads(theta, scale)[0]


def three_bowls() -> Landscape:
    return ThreeBowls(
        key="three_bowls", title="Three bowls (three tasks)", n_tasks=3,
        bounds=((-11.0, 11.0), (-11.0, 11.0)),
        presets={"paper": Preset("paper", "SAM-GS one-optimum starts (7)", SAMGS_1O,
                                 "Borsani et al. 2025, toy1o config (the one-optimum starts, reused)")},
        floor=(-21.0, -21.0, -21.0), default_steps=20000,
        description="Three log valleys above y = 0 and three offset bowls below: a three-task problem whose "
                    "Pareto set is a curved triangle.",
    )
