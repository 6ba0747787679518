"""The method contract: what every gradient-aggregation method in Gradscape provides.

A method is a pair of pure functions over a batch of ``B`` independent runs (optax style):

* ``init(B, K, D, hp, *, dtype, device) -> state``: a dict of tensors, each with a leading ``B``. A stateless
  method leaves ``init`` out: the default, :func:`no_state`, returns ``{}`` (optax's ``stateless``).
* ``step(G, L, state, hp, ctx) -> (d, state, aux)``:
  ``G[B, K, D]`` per-task gradients, ``L[B, K]`` task losses, ``d[B, D]`` the aggregated direction
  (the method's *native* output, before the pipeline's post-processing), ``aux`` a dict of per-run
  diagnostics (``weights[B, K]``, SAM-GS's ``branch[B]`` ...).

Rules that make a step traceable into the fused kernels (``trajectories/kernel/``) and keep
runs independent:

* only element-wise torch ops, reductions over the task / parameter axes, and small matmuls;
  never a reduction over the batch axis, never an in-place op, never Python branching on data
  (use ``torch.where``), never a solver call;
* hyperparameters arrive as ``[B]`` tensors (so one batch can hold a whole sweep), except the
  ``static`` ones (shape-changing, e.g. DWA's window), which arrive as Python numbers;
* randomness comes from ``ctx.uniform`` / ``ctx.normal``: a counter-based hash of the run's key and
  the step, so a run's draws do not depend on which other runs share its batch.

The two pipelines (``ctx.pipeline``):

* ``reference`` reproduces the published SAM-GS toy code (methods-spec.md §1.1 and §12): the
  method's ``reference`` post-processing (× K and/or norm clipping to 1) and its quirks;
* ``clean`` applies each method as its own paper defines it, with loss-based methods working on
  losses shifted by the landscape's floor (``ctx.loss_floor``, methods-spec.md §2.3).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from . import rng

FAMILIES = ("loss weighting", "gradient surgery", "game-theoretic", "similarity-aware")
PIPELINES = ("reference", "clean")


@dataclass(frozen=True)
class HParam:
    """One hyperparameter: drives the slider, the URL key, the CLI flag and the legend."""

    name: str
    default: float
    low: float
    high: float
    step: float
    help: str
    log: bool = False          # a log-scale slider
    integer: bool = False
    static: bool = False       # changes state shapes or the traced code: a new kernel per value

    def check(self, value) -> float:
        """Return ``value`` as a number, or raise ``ValueError`` naming the field."""
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{self.name}: expected a number, got {value!r}") from None
        if not (self.low <= v <= self.high):
            raise ValueError(f"{self.name}: {v:g} is outside [{self.low:g}, {self.high:g}]")
        if self.integer:
            if v != int(v):
                raise ValueError(f"{self.name}: expected an integer, got {v:g}")
            return int(v)
        return v


@dataclass(frozen=True)
class Post:
    """Post-processing applied by the engine to a method's native direction."""

    times_k: bool = False      # multiply by the number of tasks ("to match the sum loss")
    clip: bool = False         # clip1: d * min(1, 1 / (|d| + 1e-6)), torch's clip_grad_norm_(max_norm=1)


def no_state(B, K, D, hp, *, dtype, device) -> dict:
    """The state of a stateless method: nothing (the default ``Method.init``)."""
    return {}


BUILT_IN = "built-in"


@dataclass(frozen=True)
class Method:
    """One method: its metadata, its pure ``init`` / ``step`` pair and how each pipeline post-processes d.

    ``origin`` is ``"built-in"`` for the modules of ``optimizers/methods/``; a method loaded from a file or an
    entry point (``optimizers/plugins.py``) carries where it came from, and a ``colour`` for the figures.
    """

    key: str
    name: str
    family: str
    paper: str
    summary: str
    step: Callable
    init: Callable = no_state
    hparams: tuple[HParam, ...] = ()
    reference: Post = Post()
    clean: Post = Post()
    aux: tuple[str, ...] = ("weights",)   # aux keys the step returns, recorded by the engine
    random: bool = False
    reconstructed: bool = False            # rule reconstructed from a description, not from code
    min_tasks: int = 2
    # reference pipeline only: the published code backpropagates a weighted loss, so the engine replaces d by
    # the landscape's one-pass vector-Jacobian product with aux["weights"] (the same vector up to rounding)
    reference_vjp: bool = False
    pipelines: dict = field(default_factory=dict)  # pipeline -> one line on what it does
    origin: str = BUILT_IN                 # or the file / entry point a plugin was loaded from
    colour: str | None = None              # "#rrggbb"; built-ins take theirs from figures/style.py

    @property
    def plugin(self) -> bool:
        return self.origin != BUILT_IN

    @property
    def label(self) -> str:
        """The name a page lists the method under (a plugin says so)."""
        return f"{self.name} (local plugin)" if self.plugin else self.name

    def post(self, pipeline: str) -> Post:
        if pipeline not in PIPELINES:
            raise ValueError(f"pipeline: expected one of {PIPELINES}, got {pipeline!r}")
        return self.reference if pipeline == "reference" else self.clean

    def hparam(self, name: str) -> HParam:
        for h in self.hparams:
            if h.name == name:
                return h
        known = ", ".join(h.name for h in self.hparams) or "none"
        raise ValueError(f"{self.key}: unknown hyperparameter {name!r} (known: {known})")

    def defaults(self) -> dict:
        return {h.name: h.default for h in self.hparams}

    def resolve(self, given: dict | None) -> dict:
        """Defaults overlaid with ``given``, every value checked against its spec."""
        out = self.defaults()
        for name, value in (given or {}).items():
            out[name] = self.hparam(name).check(value)
        return out


@dataclass
class Context:
    """What a step may use besides G, L and its state.

    ``t`` is the 1-based step count (a float tensor ``[B]``), ``key`` the per-run RNG key (int64 ``[B]``),
    ``loss_floor[B, K]`` the shift that makes the landscape's losses positive (methods-spec.md §2.3).
    """

    pipeline: str
    t: torch.Tensor
    key: torch.Tensor
    loss_floor: torch.Tensor

    def uniform(self, shape: tuple[int, ...], salt: int) -> torch.Tensor:
        """U[0, 1) of shape ``[B, *shape]``, a pure function of (run key, step, salt)."""
        return rng.uniform(self.key, self.t, salt, shape, self.loss_floor.dtype)

    def normal(self, shape: tuple[int, ...], salt: int) -> torch.Tensor:
        return rng.normal(self.key, self.t, salt, shape, self.loss_floor.dtype)


# ---------------------------------------------------------------------------------------------
# Small batched helpers shared by the methods (all traceable).

EPS = 1e-12


def norms(G: torch.Tensor) -> torch.Tensor:
    """|g_k| for G[B, K, D] -> [B, K]."""
    return torch.sqrt((G * G).sum(-1))


def gram(G: torch.Tensor) -> torch.Tensor:
    """M = G G^T, [B, K, K]."""
    return G @ G.transpose(1, 2)


def combine(w: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """sum_k w_k g_k for w[B, K], G[B, K, D] -> [B, D]."""
    return (w[..., None] * G).sum(1)


def unit(G: torch.Tensor) -> torch.Tensor:
    """g_k / |g_k|, with a zero gradient mapped to the zero vector."""
    n = norms(G)[..., None]
    return torch.where(n > 0, G / torch.where(n > 0, n, 1.0), 0.0)


def clip1(d: torch.Tensor) -> torch.Tensor:
    """torch.nn.utils.clip_grad_norm_(max_norm=1) on one parameter tensor: d * min(1, 1/(|d| + 1e-6))."""
    n = torch.sqrt((d * d).sum(-1, keepdim=True))
    return d * torch.clamp(1.0 / (n + 1e-6), max=1.0)


def col(x: torch.Tensor) -> torch.Tensor:
    """A per-run hyperparameter [B] as a column [B, 1] for broadcasting over tasks."""
    return x[:, None]


def simplex_project(v: torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each row of v[B, K] onto the probability simplex (sort-free, traceable).

    Uses the threshold tau = max_j (sum_{i: v_i >= v_j} v_i - 1) / #{i: v_i >= v_j} over the candidates
    that satisfy the support condition; K is small, so the K x K comparison matrix is cheap.
    """
    ge = (v[:, None, :] >= v[:, :, None]).to(v.dtype)        # [B, j, i]: v_i >= v_j
    cnt = ge.sum(-1)
    tau_j = ((ge * v[:, None, :]).sum(-1) - 1.0) / cnt
    valid = v > tau_j                                         # j is in the support
    tau = torch.where(valid, tau_j, torch.full_like(tau_j, -float("inf"))).amax(-1, keepdim=True)
    return torch.clamp(v - tau, min=0.0)
