"""The landscape contract: an analytic K-task loss over two parameters theta = (theta_1, theta_2).

A landscape gives batched losses ``values(theta[B, 2], scale[B]) -> F[B, K]`` as plain torch ops, and the
per-task gradients ``values_and_grads`` (closed form where a subclass provides one, otherwise autograd
through ``torch.func``). The engine multiplies both by the per-run task weights ``w[B, K]``:
``L = w * F``, ``G = w[..., None] * dF/dtheta``.

Everything a figure or a metric needs about the problem lives here too: the drawing box, named start
presets, the loss floor used by loss-based methods (methods-spec.md §2.3), the Pareto set and front
(computed numerically, see ``landscapes/pareto.py``) and the minimisers of the weighted sum.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    points: tuple[tuple[float, float], ...]
    source: str = ""


@dataclass
class Landscape:
    key: str
    title: str
    n_tasks: int
    bounds: tuple[tuple[float, float], tuple[float, float]]     # ((x_lo, x_hi), (y_lo, y_hi))
    presets: dict[str, Preset]
    floor: tuple[float, ...]          # per task, at scale 1: losses minus this are positive everywhere in the box
    default_steps: int = 20000
    description: str = ""
    method_defaults: dict = field(default_factory=dict)  # e.g. {"samgs": {"beta2": 0.9}}
    scale_task: int | None = 0        # the task whose loss ``scale`` multiplies (None: scale unused)

    # -- losses --------------------------------------------------------------------------------
    def values(self, theta: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """Raw task losses F[B, K] (before task weights). Subclasses implement this or ``task_values``."""
        return torch.stack(self.task_values(theta, scale), 1)

    def task_values(self, theta: torch.Tensor, scale: torch.Tensor) -> list:
        """The K task losses as separate [B] tensors, each built by its own operations, as the published toy
        code's ``Function1`` and ``Function2`` build ``f1`` and ``f2``: ``values_and_grads`` differentiates each
        alone. The default splits ``values``, whose backward per task then runs through every task's operations
        with zeros."""
        if type(self).values is Landscape.values:
            raise NotImplementedError(f"{type(self).__name__} defines neither values nor task_values")
        return list(self.values(theta, scale).unbind(1))

    def values_and_grads(self, theta: torch.Tensor, scale: torch.Tensor):
        """(F[B, K], dF/dtheta [B, K, 2]) by reverse-mode autograd, one backward pass per task.

        This is what the published toy code does (``losses[k].backward()`` per task), so the gradients
        inherit autograd's conventions on kinks and its order of accumulating the contributions to each
        parameter, bit for bit in eager float32 (methods-spec.md §2). Inside the engine the pass is traced
        with ``make_fx`` into plain element-wise operations, so the C kernel runs the same arithmetic.

        Each pass starts from that task's own loss (``task_values``), not from a column of the stacked
        ``F`` as the published trainer's ``losses[k]`` does: from a column, autograd also runs the other tasks'
        backward with zero cotangents. Those zeros add nothing to a finite gradient (x + 0 is x, bit for bit:
        every method on both toys gives the same runs either way), so skipping them saves a quarter of the
        toys' step. The two differ only where another task's partial derivative is infinite (0 x inf is NaN
        through the column, not here); the toys' clamped logarithms and bounded gates have none.
        """
        K = self.n_tasks
        with torch.enable_grad():
            th = theta.detach().requires_grad_(True)
            fs = self.task_values(th, scale)
            ones = torch.ones_like(fs[0])            # not f.sum(): a reduction over runs cannot enter the kernel
            grads = [torch.autograd.grad(fs[k], th, grad_outputs=ones, retain_graph=k < K - 1)[0]
                     for k in range(K)]
        return torch.stack([f.detach() for f in fs], 1), torch.stack(grads, 1)

    def vjp(self, theta: torch.Tensor, scale: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """sum_k w_k dF_k/dtheta [B, 2] by ONE reverse pass with ``grad_outputs = w`` — what the published code's
        ``loss.backward()`` of a weighted loss computes, rounding included (``w`` enters at the top of the
        chain; it is not the same float as ``sum_k w_k g_k``). A landscape with closed-form gradients (its own
        ``values_and_grads``) has no published backward to reproduce: its gradients are weighted instead."""
        if type(self).values_and_grads is not Landscape.values_and_grads:
            return (w[..., None] * self.values_and_grads(theta, scale)[1]).sum(1)
        with torch.enable_grad():
            th = theta.detach().requires_grad_(True)
            F = self.values(th, scale)
            return torch.autograd.grad(F, th, grad_outputs=w)[0]

    def evaluate(self, theta, weights, scale):
        """Weighted losses L[B, K] and gradients G[B, K, 2] as the methods see them."""
        f, g = self.values_and_grads(theta, scale)
        return weights * f, weights[..., None] * g

    def loss_floor(self, weights: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """The per-run floor [B, K] of the weighted losses (methods-spec.md §2.3)."""
        fl = torch.tensor(self.floor, dtype=weights.dtype, device=weights.device).expand_as(weights)
        if self.scale_task is not None:
            mult = torch.ones_like(weights)
            mult[:, self.scale_task] = scale
            fl = fl * mult
        return weights * fl

    # -- numpy conveniences (figures, metrics) ----------------------------------------------------
    def losses_np(self, theta, weights=None, scale: float = 1.0) -> np.ndarray:
        th = torch.as_tensor(np.asarray(theta, dtype=np.float64)).reshape(-1, 2)
        w = torch.ones(th.shape[0], self.n_tasks, dtype=torch.float64) if weights is None else \
            torch.as_tensor(np.asarray(weights, dtype=np.float64)).expand(th.shape[0], self.n_tasks)
        s = torch.full((th.shape[0],), float(scale), dtype=torch.float64)
        with torch.no_grad():
            return (w * self.values(th, s)).numpy()

    def grads_np(self, theta, weights=None, scale: float = 1.0) -> np.ndarray:
        th = torch.as_tensor(np.asarray(theta, dtype=np.float64)).reshape(-1, 2)
        w = torch.ones(th.shape[0], self.n_tasks, dtype=torch.float64) if weights is None else \
            torch.as_tensor(np.asarray(weights, dtype=np.float64)).expand(th.shape[0], self.n_tasks)
        s = torch.full((th.shape[0],), float(scale), dtype=torch.float64)
        with torch.no_grad():
            _, g = self.evaluate(th, w, s)
        return g.numpy()

    def grid(self, n: int):
        """An n x n grid over the box: (xs[n], ys[n], points[n*n, 2]) with x varying fastest."""
        (x0, x1), (y0, y1) = self.bounds
        xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
        X, Y = np.meshgrid(xs, ys)
        return xs, ys, np.stack([X.ravel(), Y.ravel()], 1)

    def contains(self, points) -> np.ndarray:
        p = np.asarray(points, dtype=float).reshape(-1, 2)
        (x0, x1), (y0, y1) = self.bounds
        return (p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1)

    # -- Pareto set -----------------------------------------------------------------------------
    @property
    def pareto_ready(self) -> bool:
        """Whether this object already holds its Pareto set (False: the next use computes or loads it)."""
        return "pareto" in self.__dict__

    @cached_property
    def pareto(self):
        """The Pareto set and front at unit weights and scale (cached here and on disk; landscapes/pareto.py)."""
        from .pareto import cached_pareto
        return cached_pareto(self)

    def prepare_pareto(self, *, budget_s: float | None = None, progress=None, cancel=None):
        """Compute (or load) the Pareto set now, within ``budget_s`` seconds, telling ``progress(fraction, text)``
        and stopping with ``landscapes.pareto.Cancelled`` when ``cancel()`` says so. Returns the set; its
        ``note`` says when it is degenerate or was cut short."""
        import time

        from .pareto import cached_pareto
        if not self.pareto_ready:
            deadline = None if budget_s is None else time.monotonic() + budget_s
            self.__dict__["pareto"] = cached_pareto(self, deadline=deadline, progress=progress, cancel=cancel)
        return self.pareto

    def pareto_set(self, n: int | None = None) -> np.ndarray:
        pts = self.pareto.points
        if n is None or n >= len(pts):
            return pts.copy()
        return pts[np.linspace(0, len(pts) - 1, n).round().astype(int)]

    def pareto_front(self, n: int | None = None, weights=None, scale: float = 1.0) -> np.ndarray:
        return self.losses_np(self.pareto_set(n), weights, scale)

    def optima(self, weights=None, scale: float = 1.0) -> np.ndarray:
        """Global minimisers [m, 2] of the weighted sum of the losses (all of them when tied, e.g. two_optima)."""
        from .pareto import weighted_sum_minimisers
        key = (None if weights is None else tuple(float(w) for w in weights), float(scale))
        cache = self.__dict__.setdefault("_optima_cache", {})
        if key not in cache:
            cache[key] = weighted_sum_minimisers(self, weights, scale)
        return cache[key].copy()
