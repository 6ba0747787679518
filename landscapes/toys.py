"""The two synthetic problems of the SAM-GS paper (methods-spec.md §2).

Shared gates c1 = max(tanh(y/2), 0) (active for y > 0) and c2 = max(tanh(-y/2), 0) (active for y < 0), and
log valleys A_k = log(max(|h_k|, 5e-6)) + 6 with h1 = 0.5(-x - 7) - tanh(-y), h2 = 0.5(-x + 3) + tanh(-y) + 2.

* ``one_optimum`` (the Nash-MTL / CAGrad / FAMO toy, SAM-GS's toy1o): bowls
  Q1 = ((-x + 7)^2 + 0.1(-y - 8)^2)/10 - 20 and Q2 = ((-x - 7)^2 + 0.1(-y - 8)^2)/10 - 20 below y = 0;
  f1 = scale (c1 A1 + c2 Q1), f2 = c1 A2 + c2 Q2. Pareto set: an arc from (-7, -8.434) through
  (0, -8.355) to (7, -8.434); the summed loss has one minimiser, (0, -8.355).
* ``two_optima`` (SAM-GS's toy2o): sextic double wells below y = 0,
  P(x, y; s) = 0.1((x - 5.45 s)/4)^6 + 0.1(y/4)^6 - ((x - 5.5 s)/4)^4 - (y/4)^4 - 1.5((x - 5.5 s)/4)^2
  - 1.5(y/4)^2 + 1.5, f1 = scale (c1 A1 + c2 P(+1)), f2 = c1 A2 + c2 P(-1). Pareto set: y = -10.8425,
  |x| <= 5.456 (a concave front); the summed loss has two minimisers, (+-5.455, -10.843).

The values follow the published code's operation order; the gradients are closed forms that follow
autograd's conventions on the kinks (clamp passes the gradient where its input >= the bound, abs'(0) = 0),
checked against autograd in ``tests/test_landscapes.py``.
"""
from __future__ import annotations

import torch

from .base import Landscape, Preset

LOWER = 5e-6

SAMGS_1O = ((-8.0, 5.0), (-3.0, 7.5), (0.0, 10.0), (3.0, 7.5), (8.0, 5.0), (-10.0, -3.0), (10.0, -3.0))
NASH_FAMO = ((-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0))
CAGRAD = ((-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0))
SAMGS_2O = ((-3.5, 5.5), (3.5, 5.5), (-6.5, 2.5), (6.5, 2.5), (0.0, 10.0), (0.0, -8.0))


def _upper(x, y):
    """Gates, log valleys and their derivatives (shared by both problems)."""
    ty = torch.tanh(-y)
    h1 = 0.5 * (-x - 7) - ty
    h2 = 0.5 * (-x + 3) + ty + 2
    a1, a2 = h1.abs(), h2.abs()
    A1 = torch.clamp(a1, LOWER).log() + 6
    A2 = torch.clamp(a2, LOWER).log() + 6
    dA1 = torch.where(a1 >= LOWER, torch.sign(h1) / a1, 0.0)   # dA/dh
    dA2 = torch.where(a2 >= LOWER, torch.sign(h2) / a2, 0.0)
    sech2 = 1 - ty * ty                                           # d tanh(y)/dy
    tp, tm = torch.tanh(y * 0.5), torch.tanh(-y * 0.5)
    c1, c2 = torch.clamp(tp, 0), torch.clamp(tm, 0)
    dc1 = torch.where(tp >= 0, 0.5 * (1 - tp * tp), 0.0)
    dc2 = torch.where(tm >= 0, -0.5 * (1 - tm * tm), 0.0)
    # d h1/dx = d h2/dx = -0.5 ; d h1/dy = sech2 ; d h2/dy = -sech2
    return dict(A1=A1, A2=A2, dA1=dA1, dA2=dA2, sech2=sech2, c1=c1, c2=c2, dc1=dc1, dc2=dc2)


def _assemble(u, lower, scale):
    """f_k = c1 A_k + c2 P_k and its gradient, from the lower-half terms ``lower = [(P, dPdx, dPdy)]*2``."""
    (P1, P1x, P1y), (P2, P2x, P2y) = lower
    c1, c2, dc1, dc2 = u["c1"], u["c2"], u["dc1"], u["dc2"]
    f1 = (u["A1"] * c1 + P1 * c2) * scale
    f2 = u["A2"] * c1 + P2 * c2
    g1x = (c1 * u["dA1"] * -0.5 + c2 * P1x) * scale
    g1y = (c1 * u["dA1"] * u["sech2"] + dc1 * u["A1"] + c2 * P1y + dc2 * P1) * scale
    g2x = c1 * u["dA2"] * -0.5 + c2 * P2x
    g2y = c1 * u["dA2"] * -u["sech2"] + dc1 * u["A2"] + c2 * P2y + dc2 * P2
    F = torch.stack([f1, f2], 1)
    G = torch.stack([torch.stack([g1x, g1y], 1), torch.stack([g2x, g2y], 1)], 1)
    return F, G


class OneOptimum(Landscape):
    def _lower(self, x, y):
        qy = 0.1 * (-y - 8).pow(2)
        Q1 = ((-x + 7).pow(2) + qy) / 10 - 20
        Q2 = ((-x - 7).pow(2) + qy) / 10 - 20
        dy = 0.02 * (y + 8)
        return [(Q1, (x - 7) / 5, dy), (Q2, (x + 7) / 5, dy)]

    def values_and_grads(self, theta, scale):
        x, y = theta[:, 0], theta[:, 1]
        return _assemble(_upper(x, y), self._lower(x, y), scale)

    def values(self, theta, scale):
        return self.values_and_grads(theta, scale)[0]


class TwoOptima(Landscape):
    def _lower(self, x, y):
        b = y / 4
        py = 0.1 * b.pow(6), b.pow(4), 1.5 * b.pow(2)
        dpy = 0.15 * b.pow(5) - b.pow(3) - 0.75 * b
        out = []
        for s in (1.0, -1.0):
            a6 = (x - 5.45 * s) / 4
            a = (x - 5.5 * s) / 4
            P = ((0.1 * a6.pow(6) + py[0]) - (a.pow(4) + py[1]) - (1.5 * a.pow(2) + py[2])) + 1.5
            out.append((P, 0.15 * a6.pow(5) - a.pow(3) - 0.75 * a, dpy))
        return out

    def values_and_grads(self, theta, scale):
        x, y = theta[:, 0], theta[:, 1]
        return _assemble(_upper(x, y), self._lower(x, y), scale)

    def values(self, theta, scale):
        return self.values_and_grads(theta, scale)[0]


def one_optimum() -> Landscape:
    return OneOptimum(
        key="one_optimum", title="One optimum (Nash-MTL / CAGrad toy)", n_tasks=2,
        bounds=((-11.0, 11.0), (-11.0, 11.0)),
        presets={
            "paper": Preset("paper", "SAM-GS paper (7 starts)", SAMGS_1O, "Borsani et al. 2025, toy1o config"),
            "nashmtl": Preset("nashmtl", "Nash-MTL / FAMO (5 starts)", NASH_FAMO, "Navon et al. 2022; Liu et al. 2023"),
            "cagrad": Preset("cagrad", "CAGrad (3 starts)", CAGRAD, "Liu et al. 2021, toy.py"),
        },
        floor=(-21.0, -21.0), default_steps=20000,
        description="Two log valleys above y = 0, two offset bowls below; one minimiser of the summed loss.",
    )


def two_optima() -> Landscape:
    return TwoOptima(
        key="two_optima", title="Two optima (SAM-GS toy)", n_tasks=2,
        bounds=((-10.0, 10.0), (-13.0, 11.0)),
        presets={"paper": Preset("paper", "SAM-GS paper (6 starts)", SAMGS_2O, "Borsani et al. 2025, toy2o config")},
        floor=(-52.0, -52.0), default_steps=21000,
        description="The one-optimum valleys above y = 0 and sextic double wells below: two global minimisers "
                    "of the summed loss and a concave Pareto front.",
        method_defaults={"samgs": {"beta2": 0.9}},
    )
