"""The one home for the text fields every face of Gradscape reads: start specs, numbers, number lists, task
weights, sweep values and hyperparameter assignments.

The engine config, job configs, the CLI and the pages all parse through these functions, so a value means the
same everywhere and a bad one gets the same message. Rules:

* every parser raises ``ValueError`` whose message starts with the field (``"lr: 'abc' is not a number"``);
  ``field=""`` leaves the prefix to the caller (the pages' URL reader names the parameter itself);
* a parser returns plain Python values (floats, ints, tuples), never numpy scalars;
* :class:`StartSpec` is the structure behind a start spec string — ``paper`` (a preset), ``grid:N``,
  ``random:N[:SEED]``, ``"x,y;x,y"`` — parsed once and written back canonically (:meth:`StartSpec.text`), so a
  page can show the parts in widgets and compose the string again. Resolving a spec to points against a
  landscape's box is ``trajectories/starts.py``'s job.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

MAX_GRID = 1000
MAX_STARTS = 1_000_000
MAX_SWEEP_VALUES = 1000
MAX_SEED = 2 ** 31


def _prefix(field: str) -> str:
    return f"{field}: " if field else ""


# -- numbers ----------------------------------------------------------------------------------------------
def number(value, field: str = "", lo: float = -math.inf, hi: float = math.inf, *, integer: bool = False,
           lo_open: bool = False):
    """A finite number in [lo, hi] ((lo, hi] with ``lo_open``), from text or a number; ``integer``: a whole one."""
    p = _prefix(field)
    if isinstance(value, bool):
        raise ValueError(f"{p}expected a number, got {value!r}")
    try:
        x = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{p}{value!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{p}{value!r} is not a finite number")
    if integer and x != int(x):
        raise ValueError(f"{p}{value!r} is not a whole number")
    if x < lo or x > hi or (lo_open and x == lo):
        left = "(" if lo_open else "["
        raise ValueError(f"{p}{x:g} is outside {left}{lo:g}, {hi:g}]")
    return int(x) if integer else x


def numbers(text, field: str = "", count: int | None = None, lo: float = -math.inf, hi: float = math.inf, *,
            lo_open: bool = False) -> tuple:
    """Comma-separated numbers (exactly ``count`` of them when given), each in [lo, hi]."""
    p = _prefix(field)
    if isinstance(text, (list, tuple)):
        parts = list(text)
    else:
        parts = [x for x in str(text).split(",") if x.strip()]
    if count is not None and len(parts) != count:
        raise ValueError(f"{p}expected {count} comma-separated numbers, got {len(parts)}")
    if not parts:
        raise ValueError(f"{p}no numbers given")
    return tuple(number(x, field, lo, hi, lo_open=lo_open) for x in parts)


def weight_sets(text, field: str = "task_weights", K: int | None = None) -> list[tuple]:
    """Task weights: ``"a, b"`` (one set) or ``"a, b; c, d"`` (several: a sweep); each weight positive."""
    sets = [s for s in str(text).split(";") if s.strip()]
    if not sets:
        raise ValueError(f"{field}: no weights given")
    out = [numbers(s, field, K, 0.0, 1e6, lo_open=True) for s in sets]
    if K is None and len({len(w) for w in out}) > 1:
        raise ValueError(f"{field}: every set needs the same number of weights")
    return out


# -- sweep values ----------------------------------------------------------------------------------------------
def sweep_values(spec, field: str = "values") -> list:
    """Values from a list, ``"a, b, c"``, ``"lin(A, B, N)"``, ``"log(A, B, N)"`` or ``{"lin"/"log": [A, B, N]}``."""
    if isinstance(spec, dict):
        if len(spec) != 1 or next(iter(spec)) not in ("lin", "log"):
            raise ValueError(f"{field}: expected {{'lin': [A, B, N]}} or {{'log': [A, B, N]}}, got {spec!r}")
        kind, args = next(iter(spec.items()))
        return _space(kind, args, field)
    if isinstance(spec, str):
        text = spec.strip()
        m = re.fullmatch(r"(lin|log)\s*\((.*)\)", text)
        if m:
            return _space(m.group(1), [a.strip() for a in m.group(2).split(",")], field)
        parts = [p.strip() for p in re.split(r"[,;\s]+", text) if p.strip()]
        if not parts:
            raise ValueError(f"{field}: no values given")
        out = []
        for p in parts:
            try:
                out.append(float(p))
            except ValueError:
                raise ValueError(f"{field}: {p!r} is not a number (write e.g. '0.1, 0.5, 0.9' or "
                                 f"'lin(0.1, 0.9, 5)' or 'log(1e-3, 1, 4)')") from None
        return out
    if isinstance(spec, (list, tuple)):
        if not spec:
            raise ValueError(f"{field}: an empty list")
        return list(spec)
    return [spec]


def _space(kind, args, field):
    if not isinstance(args, (list, tuple)) or len(args) != 3:
        raise ValueError(f"{field}: {kind}(A, B, N) takes three numbers")
    try:
        a, b, n = float(args[0]), float(args[1]), float(args[2])
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{field}: {kind}(A, B, N) takes three numbers, got {args!r}") from None
    if n != int(n) or not 1 <= n <= MAX_SWEEP_VALUES:
        raise ValueError(f"{field}: N in {kind}(A, B, N) must be a whole number between 1 and {MAX_SWEEP_VALUES}")
    if kind == "log":
        if a <= 0 or b <= 0:
            raise ValueError(f"{field}: log(A, B, N) needs A > 0 and B > 0")
        vals = np.geomspace(a, b, int(n))
    else:
        vals = np.linspace(a, b, int(n))
    return [float(f"{v:.12g}") for v in vals]


def hp_assignments(items, field: str = "--hp") -> dict:
    """``["samgs.gamma=0.2", "samgs.beta1=0.5,0.9"]`` -> ``{"samgs": {"gamma": 0.2, "beta1": [0.5, 0.9]}}``."""
    out: dict = {}
    for item in items:
        lhs, eq, rhs = str(item).partition("=")
        method, dot, name = lhs.partition(".")
        if not eq or not dot or not method.strip() or not name.strip():
            raise ValueError(f"{field}: expected METHOD.NAME=VALUE, got {item!r}")
        if not rhs.strip():
            raise ValueError(f"{field}: no value in {item!r}")
        vals = list(numbers(rhs, f"{field} {lhs.strip()}"))
        out.setdefault(method.strip(), {})[name.strip()] = vals if len(vals) > 1 else vals[0]
    return out


# -- start specs ---------------------------------------------------------------------------------------------
START_KINDS = ("preset", "grid", "random", "points")


@dataclass(frozen=True)
class StartSpec:
    """A parsed start spec. ``kind``: preset (``name``), grid (``n`` x ``n`` over the box), random (``n`` points
    drawn with ``seed``), points (explicit ``points``)."""

    kind: str
    name: str = ""
    n: int = 0
    seed: int = 0
    points: tuple = ()

    @classmethod
    def parse(cls, text, presets=(), field: str = "starts") -> "StartSpec":
        """The spec ``text`` means, given the landscape's preset names (``ValueError`` names the field)."""
        p = _prefix(field)
        spec = str(text).strip()
        if spec in presets:
            return cls("preset", name=spec)
        if spec.startswith("grid:"):
            return cls("grid", n=_count(spec[5:], "the grid size N of grid:N", MAX_GRID, p))
        if spec.startswith("random:"):
            parts = spec.split(":")
            if len(parts) > 3:
                raise ValueError(f"{p}expected random:N or random:N:SEED, got {spec!r}")
            n = _count(parts[1], "the count N of random:N", MAX_STARTS, p)
            seed = _count(parts[2], "the seed of random:N:SEED", MAX_SEED, p, lo=0) if len(parts) > 2 else 0
            return cls("random", n=n, seed=seed)
        pts = []
        for item in spec.split(";"):
            item = item.strip()
            if not item:
                continue
            xy = item.split(",")
            if len(xy) != 2:
                known = ", ".join(presets)
                raise ValueError(f"{p}cannot read {item!r}: expected 'x,y' pairs separated by ';'"
                                 + (f", a preset ({known})" if known else "") + ", grid:N or random:N")
            try:
                pts.append((float(xy[0]), float(xy[1])))
            except ValueError:
                raise ValueError(f"{p}{item!r} is not a pair of numbers") from None
        if not pts:
            raise ValueError(f"{p}no start points")
        return cls("points", points=tuple(pts))

    @classmethod
    def of_points(cls, points) -> "StartSpec":
        return cls("points", points=tuple((float(x), float(y)) for x, y in np.asarray(points, float).reshape(-1, 2)))

    def text(self) -> str:
        """The canonical spec string (what URLs, job configs and the CLI carry)."""
        if self.kind == "preset":
            return self.name
        if self.kind == "grid":
            return f"grid:{self.n}"
        if self.kind == "random":
            return f"random:{self.n}" + (f":{self.seed}" if self.seed else "")
        return ";".join(f"{x:.4g},{y:.4g}" for x, y in self.points)

    def describe(self) -> str:
        """In words: "the paper preset", "a 16 × 16 grid", "200 random points", "3 points"."""
        if self.kind == "preset":
            return f"the {self.name} preset"
        if self.kind == "grid":
            return f"a {self.n} × {self.n} grid"
        if self.kind == "random":
            return f"{self.n:,} random point{'s' if self.n != 1 else ''}"
        return f"{len(self.points)} point{'s' if len(self.points) != 1 else ''}"

    @property
    def count(self) -> int | None:
        """How many starts it gives, when that is known without the landscape (a preset's is not)."""
        return {"grid": self.n * self.n, "random": self.n, "points": len(self.points)}.get(self.kind)


def _count(text: str, what: str, hi: int, prefix: str, lo: int = 1) -> int:
    try:
        n = int(text)
    except ValueError:
        raise ValueError(f"{prefix}{what} must be a whole number, got {text!r}") from None
    if not lo <= n <= hi:
        raise ValueError(f"{prefix}{what} must be between {lo} and {hi}, got {n}")
    return n
