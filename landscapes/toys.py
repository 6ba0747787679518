"""The two synthetic problems of the SAM-GS paper (methods-spec.md §2), in the published code's operations.

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

Each task's loss is written with the same operations, in the same order, as the authors' ``Function1`` /
``Function2``: the gradients come from autograd (``Landscape.values_and_grads``), and on the exactly
symmetric starts (x = 0) the path splits on the rounding that this order produces, as the authors' did.
"""
from __future__ import annotations

import torch

from .base import Landscape, Preset

LOWER = 5e-6

SAMGS_1O = ((-8.0, 5.0), (-3.0, 7.5), (0.0, 10.0), (3.0, 7.5), (8.0, 5.0), (-10.0, -3.0), (10.0, -3.0))
NASH_FAMO = ((-8.5, 7.5), (0.0, 0.0), (9.0, 9.0), (-7.5, -0.5), (9.0, -1.0))
CAGRAD = ((-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0))
SAMGS_2O = ((-3.5, 5.5), (3.5, 5.5), (-6.5, 2.5), (6.5, 2.5), (0.0, 10.0), (0.0, -8.0))
# the 25 starts of the fidelity grid (../shared/reference/grid_reference.npz), x fastest, top row first as there
REF_GRID = tuple((float(x), float(y)) for y in (8, 4, 0, -4, -8) for x in (-8, -4, 0, 4, 8))
REF_GRID_PRESET = Preset("refgrid", "Reference grid (5 × 5, θ ∈ {−8, −4, 0, 4, 8})", REF_GRID,
                         "the 25 starts of the fidelity tests' grid, with published paths")


def _log1(x1, x2):
    return torch.clamp((0.5 * (-x1 - 7) - torch.tanh(-x2)).abs(), LOWER).log() + 6


def _log2(x1, x2):
    return torch.clamp((0.5 * (-x1 + 3) + torch.tanh(-x2) + 2).abs(), LOWER).log() + 6


def _gate_up(x2):
    return torch.clamp(torch.tanh(x2 * 0.5), 0)


def _gate_down(x2):
    return torch.clamp(torch.tanh(-x2 * 0.5), 0)


class OneOptimum(Landscape):
    def task_values(self, theta, scale):
        x1, x2 = theta[:, 0], theta[:, 1]
        f1 = _log1(x1, x2)
        c1 = _gate_up(x2)
        f1_sq = ((-x1 + 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
        c2 = _gate_down(x2)
        f1 = (f1 * c1 + f1_sq * c2) * scale
        f2 = _log2(x1, x2)
        c1 = _gate_up(x2)
        f2_sq = ((-x1 - 7).pow(2) + 0.1 * (-x2 - 8).pow(2)) / 10 - 20
        c2 = _gate_down(x2)
        f2 = f2 * c1 + f2_sq * c2
        return [f1, f2]


def _well(x1, x2, s):
    return ((0.1 * ((x1 - 5.45 * s) / 4).pow(6) + 0.1 * (x2 / 4).pow(6))
            - (((x1 - 5.5 * s) / 4).pow(4) + (x2 / 4).pow(4))
            - (1.5 * ((x1 - 5.5 * s) / 4).pow(2) + 1.5 * (x2 / 4).pow(2))) + 1.5


class TwoOptima(Landscape):
    def task_values(self, theta, scale):
        x1, x2 = theta[:, 0], theta[:, 1]
        f1 = _log1(x1, x2)
        c1 = _gate_up(x2)
        f1_sq = _well(x1, x2, 1.0)
        c2 = _gate_down(x2)
        f1 = (f1 * c1 + f1_sq * c2) * scale
        f2 = _log2(x1, x2)                      # task 2 creates its gates before its well, as published
        c1 = _gate_up(x2)
        c2 = _gate_down(x2)
        f2_sq = _well(x1, x2, -1.0)
        f2 = f2 * c1 + f2_sq * c2
        return [f1, f2]


def one_optimum() -> Landscape:
    return OneOptimum(
        key="one_optimum", title="One optimum (Nash-MTL / CAGrad toy)", n_tasks=2,
        bounds=((-11.0, 11.0), (-11.0, 11.0)),
        presets={
            "paper": Preset("paper", "SAM-GS paper (7 starts)", SAMGS_1O, "Borsani et al. 2025, toy1o config"),
            "nashmtl": Preset("nashmtl", "Nash-MTL / FAMO (5 starts)", NASH_FAMO, "Navon et al. 2022; Liu et al. 2023"),
            "cagrad": Preset("cagrad", "CAGrad (3 starts)", CAGRAD, "Liu et al. 2021, toy.py"),
            "refgrid": REF_GRID_PRESET,
        },
        floor=(-21.0, -21.0), default_steps=20000,
        description="Two log valleys above y = 0, two offset bowls below; one minimiser of the summed loss.",
    )


def two_optima() -> Landscape:
    return TwoOptima(
        key="two_optima", title="Two optima (SAM-GS toy)", n_tasks=2,
        bounds=((-10.0, 10.0), (-13.0, 11.0)),
        presets={"paper": Preset("paper", "SAM-GS paper (6 starts)", SAMGS_2O, "Borsani et al. 2025, toy2o config"),
                 "refgrid": REF_GRID_PRESET},
        floor=(-52.0, -52.0), default_steps=21000,
        description="The one-optimum valleys above y = 0 and sextic double wells below: two global minimisers "
                    "of the summed loss and a concave Pareto front.",
        method_defaults={"samgs": {"beta2": 0.9}},
    )
