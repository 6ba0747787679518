"""User-defined landscapes: 2 to 4 task losses written as expressions in x1, x2 (``landscapes/expr.py``).

A landscape is given by a *spec*, a small JSON-able dict::

    {"name": "bowls",
     "tasks": ["(x1-1)**2 + x2**2", "(x1+1)**2 + x2**2"],     # 2 to 4 expressions
     "bounds": [[-5, 5], [-5, 5]],                             # the box [[x0, x1], [y0, y1]]
     "presets": {"corners": [[-4, -4], [4, 4]]},               # optional named start sets
     "floor": [-1, -1]}                                        # optional per-task loss floor

* :func:`from_spec` validates every field (a ``ValueError`` whose message starts with the field: ``name:``,
  ``tasks:``, ``bounds:``, ``presets:``, ``floor:``) and builds a :class:`CustomLandscape`; equal specs give
  the same object (a small cache), so its Pareto set and optima are computed once per process (and the
  Pareto set is also cached on disk by ``landscapes/pareto.py``, keyed by the spec).
* :func:`load_file` reads a JSON or YAML file (YAML through ``yaml.safe_load``); :func:`landscape_from_cli`
  is what ``python -m trajectories run --landscape-file FILE`` calls.
* :func:`encode_spec` / :func:`decode_spec`: a URL-safe text for shared links (``"1."`` + base64url of the
  deflated compact JSON), at most :data:`MAX_ENCODED` characters.

The engine traces ``values_and_grads`` into its C kernel, so it uses only element-wise torch operations on
``theta[:, 0]`` and ``theta[:, 1]``: the expressions and their symbolic derivatives (no autograd).
``scale`` multiplies task 1, as on the built-in landscapes.

The loss floor (the shift loss-based methods need, methods-spec.md §2.3) is, unless given, the minimum of
each task over a 201 x 201 grid of the box, refined by a local zoom, minus a margin of 5% of the task's
range over the grid (at least 1e-3 max(1, |min|)). A given floor must lie below that minimum.
"""
from __future__ import annotations

import base64
import json
import math
import re
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import expr as expr_mod
from .base import Landscape, Preset

MIN_TASKS, MAX_TASKS = 2, 4
MAX_NAME = 40
MAX_BOUND = 1e6
MIN_WIDTH = 1e-3
MAX_PRESETS = 8
MAX_PRESET_POINTS = 64
MAX_ENCODED = 2000
MAX_JSON_BYTES = 64 * 1024
MAX_FILE_BYTES = 256 * 1024
FLOOR_GRID = 201
FIELDS = ("name", "tasks", "bounds", "presets", "floor")
_NAME = re.compile(r"[\w .,+()-]+")
_PRESET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
_NUMBER_TEXT = re.compile(r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*")
_B64 = re.compile(r"[A-Za-z0-9_-]*")


# ---------------------------------------------------------------------------------------------
# The landscape


@dataclass(eq=False)
class CustomLandscape(Landscape):
    """A landscape from a validated spec (build it with :func:`from_spec`)."""

    spec: dict = field(default_factory=dict)
    expressions: tuple = ()           # expr.Expression per task, sharing one builder

    def _columns(self, theta):
        return theta[:, 0], theta[:, 1]

    def values(self, theta: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        x1, x2 = self._columns(theta)
        fs = expr_mod.evaluate([e.root for e in self.expressions], x1, x2)
        fs[0] = fs[0] * scale
        return torch.stack(fs, 1)

    def values_and_grads(self, theta: torch.Tensor, scale: torch.Tensor):
        """(F[B, K], dF/dtheta[B, K, 2]) from the expressions and their symbolic derivatives."""
        x1, x2 = self._columns(theta)
        roots = []
        for e in self.expressions:
            roots += [e.root, e.d_x1, e.d_x2]
        out = expr_mod.evaluate(roots, x1, x2)
        fs = out[0::3]
        gs = [torch.stack([out[3 * k + 1], out[3 * k + 2]], 1) for k in range(len(self.expressions))]
        fs[0] = fs[0] * scale
        gs[0] = gs[0] * scale[:, None]
        return torch.stack(fs, 1), torch.stack(gs, 1)


# ---------------------------------------------------------------------------------------------
# Validation


def _number(where: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"{where}: expected a number, got {_show(v)}")
    if isinstance(v, str):
        if len(v) > 40 or not _NUMBER_TEXT.fullmatch(v):
            raise ValueError(f"{where}: expected a number, got {_show(v)}")
    try:
        x = float(v)
    except (OverflowError, ValueError):
        raise ValueError(f"{where}: expected a number, got {_show(v)}") from None
    if not math.isfinite(x):
        raise ValueError(f"{where}: must be a finite number, got {_show(v)}")
    return x


def _show(v) -> str:
    s = repr(v) if isinstance(v, (str, int, float, bool)) or v is None else type(v).__name__
    return s if len(s) <= 40 else s[:37] + "..."


def _list(where: str, v, lo: int, hi: int, what: str) -> list:
    if not isinstance(v, (list, tuple)):
        raise ValueError(f"{where}: expected a list of {what}, got {_show(v)}")
    if not lo <= len(v) <= hi:
        n = f"{lo}" if lo == hi else f"{lo} to {hi}"
        raise ValueError(f"{where}: expected {n} {what}, got {len(v)}")
    return list(v)


def _name(v) -> str:
    if v is None:
        return "custom"
    if not isinstance(v, str):
        raise ValueError(f"name: expected text, got {_show(v)}")
    v = v.strip()
    if not v:
        raise ValueError("name: must not be empty")
    if len(v) > MAX_NAME:
        raise ValueError(f"name: at most {MAX_NAME} characters, got {len(v)}")
    if not _NAME.fullmatch(v):
        bad = next(c for c in v if not _NAME.fullmatch(c))
        raise ValueError(f"name: the character {bad!r} is not allowed (letters, digits, spaces and _ . , + ( ) -)")
    return v


def _tasks(v) -> list[str]:
    items = _list("tasks", v, MIN_TASKS, MAX_TASKS, "expressions (one per task)")
    out = []
    for k, t in enumerate(items, 1):
        if isinstance(t, (int, float)) and not isinstance(t, bool):
            t = repr(t)
        if not isinstance(t, str):
            raise ValueError(f"tasks: task {k}: expected an expression as text, got {_show(t)}")
        out.append(t.strip())
    return out


def _bounds(v) -> list[list[float]]:
    rows = _list("bounds", v, 2, 2, "ranges [[x0, x1], [y0, y1]]")
    out = []
    for axis, row in zip(("x1", "x2"), rows):
        lo, hi = _list(f"bounds: the {axis} range", row, 2, 2, "numbers [low, high]")
        lo, hi = _number(f"bounds: the {axis} range", lo), _number(f"bounds: the {axis} range", hi)
        if max(abs(lo), abs(hi)) > MAX_BOUND:
            raise ValueError(f"bounds: the {axis} range [{lo:g}, {hi:g}] goes beyond ±{MAX_BOUND:g}")
        if not hi - lo >= MIN_WIDTH:
            raise ValueError(f"bounds: the {axis} range [{lo:g}, {hi:g}] must have low < high "
                             f"(width at least {MIN_WIDTH:g})")
        out.append([lo, hi])
    return out


def _presets(v, bounds) -> dict:
    if v is None or (isinstance(v, (list, tuple)) and not v):
        return {}
    if not isinstance(v, dict):
        raise ValueError(f"presets: expected a mapping name -> [[x, y], ...], got {_show(v)}")
    if len(v) > MAX_PRESETS:
        raise ValueError(f"presets: at most {MAX_PRESETS} presets, got {len(v)}")
    (x0, x1), (y0, y1) = bounds
    out = {}
    for name, pts in v.items():
        if not isinstance(name, str) or not _PRESET_NAME.fullmatch(name):
            raise ValueError(f"presets: the name {_show(name)} must be a letter followed by up to 31 letters, "
                             "digits, _ or -")
        where = f"presets: {name}"
        pts = _list(where, pts, 1, MAX_PRESET_POINTS, "points [x, y]")
        clean = []
        for p in pts:
            x, y = _list(where, p, 2, 2, "coordinates [x, y]")
            x, y = _number(where, x), _number(where, y)
            if not (x0 <= x <= x1 and y0 <= y <= y1):
                raise ValueError(f"{where}: ({x:g}, {y:g}) is outside the box [{x0:g}, {x1:g}] x [{y0:g}, {y1:g}]")
            clean.append([x, y])
        out[name] = clean
    return out


def canonical(spec) -> dict:
    """The validated spec in canonical form (floats, stripped text, empty optional fields left out).

    Checks the form of every field and parses every task; does not evaluate anything."""
    if not isinstance(spec, dict):
        raise ValueError(f"landscape: expected a mapping with fields {', '.join(FIELDS)}, got {_show(spec)}")
    unknown = [k for k in spec if k not in FIELDS]
    if unknown:
        raise ValueError(f"landscape: unknown field {_show(unknown[0])} (fields: {', '.join(FIELDS)})")
    for req in ("tasks", "bounds"):
        if req not in spec:
            raise ValueError(f"{req}: missing (a landscape needs tasks and bounds)")
    out = {"name": _name(spec.get("name")), "tasks": _tasks(spec["tasks"]), "bounds": _bounds(spec["bounds"])}
    presets = _presets(spec.get("presets"), out["bounds"])
    if presets:
        out["presets"] = presets
    if spec.get("floor") is not None:
        fl = _list("floor", spec["floor"], len(out["tasks"]), len(out["tasks"]), "numbers (one per task)")
        out["floor"] = [_number("floor", f) for f in fl]
    return out


def _parse_tasks(tasks: list[str]) -> tuple:
    builder = expr_mod.Builder()
    out = []
    for k, text in enumerate(tasks, 1):
        try:
            out.append(expr_mod.parse(text, builder))
        except ValueError as e:
            raise ValueError(f"tasks: task {k}: {e}") from None
    return tuple(out)


def _grid_losses(expressions, bounds, n: int, box=None) -> tuple[np.ndarray, np.ndarray]:
    (x0, x1), (y0, y1) = box or bounds
    X, Y = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    pts = np.stack([X.ravel(), Y.ravel()], 1)
    t = torch.as_tensor(pts, dtype=torch.float64)
    with torch.no_grad():
        F = torch.stack(expr_mod.evaluate([e.root for e in expressions], t[:, 0], t[:, 1]), 1).numpy()
    return pts, F


def _task_minima(expressions, bounds) -> tuple[np.ndarray, np.ndarray]:
    """Per task: (min, max) of the finite values over the grid, the min refined by three local zooms."""
    pts, F = _grid_losses(expressions, bounds, FLOOR_GRID)
    (x0, x1), (y0, y1) = bounds
    lo, hi = np.empty(F.shape[1]), np.empty(F.shape[1])
    for k in range(F.shape[1]):
        ok = np.isfinite(F[:, k])
        if not ok.any():
            raise ValueError(f"tasks: task {k + 1} is not finite anywhere in the box (NaN or infinite on every "
                             f"point of a {FLOOR_GRID} x {FLOOR_GRID} grid)")
        f = np.where(ok, F[:, k], np.inf)
        best = int(np.argmin(f))
        m, hi[k] = f[best], F[ok, k].max()
        c = pts[best]
        hx, hy = (x1 - x0) / (FLOOR_GRID - 1), (y1 - y0) / (FLOOR_GRID - 1)
        for _ in range(3):
            box = ((max(x0, c[0] - hx), min(x1, c[0] + hx)), (max(y0, c[1] - hy), min(y1, c[1] + hy)))
            p2, F2 = _grid_losses(expressions, bounds, 21, box)
            f2 = np.where(np.isfinite(F2[:, k]), F2[:, k], np.inf)
            j = int(np.argmin(f2))
            if f2[j] < m:
                m, c = f2[j], p2[j]
            hx, hy = hx / 10, hy / 10
        lo[k] = m
    return lo, hi


def _floor(spec, expressions) -> tuple[float, ...]:
    lo, hi = _task_minima(expressions, spec["bounds"])
    if "floor" in spec:
        for k, (f, m) in enumerate(zip(spec["floor"], lo), 1):
            if not f < m:
                raise ValueError(f"floor: task {k}'s loss goes down to {m:.6g} in the box, so its floor must be "
                                 f"below that (got {f:g})")
        return tuple(spec["floor"])
    margin = np.maximum(0.05 * hi - 0.05 * lo, 1e-3 * np.maximum(1.0, np.abs(lo)))
    floor = lo - margin
    for k, f in enumerate(floor, 1):
        if not np.isfinite(f):
            raise ValueError(f"tasks: task {k} spans too wide a range in the box for an automatic loss floor "
                             "(give floor explicitly)")
    return tuple(float(v) for v in floor)


def slug(name: str) -> str:
    s = re.sub(r"[^a-z0-9_-]+", "_", name.lower()).strip("_")
    return s or "landscape"


def _build(spec: dict) -> CustomLandscape:
    expressions = _parse_tasks(spec["tasks"])
    floor = _floor(spec, expressions)
    presets = {k: Preset(k, f"{k} ({len(v)} start{'s' if len(v) > 1 else ''})", tuple(tuple(p) for p in v),
                         "custom landscape")
               for k, v in spec.get("presets", {}).items()}
    return CustomLandscape(
        key=f"custom-{slug(spec['name'])}", title=spec["name"], n_tasks=len(spec["tasks"]),
        bounds=tuple(tuple(b) for b in spec["bounds"]), presets=presets, floor=floor, default_steps=20000,
        description="Custom: " + "; ".join(f"f{k} = {t}" for k, t in enumerate(spec["tasks"], 1)),
        spec=spec, expressions=expressions)


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 32
_LOCK = threading.Lock()


def from_spec(spec) -> CustomLandscape:
    """Validate ``spec`` and build its landscape (the same object for equal specs, from a small cache)."""
    clean = canonical(spec)
    key = json.dumps(clean, sort_keys=True)
    with _LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    land = _build(clean)
    with _LOCK:
        _CACHE[key] = land
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return land


def validate(spec) -> dict:
    """The canonical spec if ``spec`` builds a landscape (raises ValueError naming the field otherwise)."""
    return from_spec(spec).spec


# ---------------------------------------------------------------------------------------------
# Files and the CLI


def _json_constant(name):
    raise ValueError(f"{name} is not a number JSON allows")


def _loads(text: str, kind: str):
    """JSON or YAML text -> Python data, any syntax problem as one line."""
    import yaml
    try:
        if kind == "json":
            return json.loads(text, parse_constant=_json_constant)
        return yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno})") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ValueError(f"not valid YAML ({(e.problem or e.context or 'syntax error').strip()}{where})") from None
    except yaml.YAMLError as e:
        raise ValueError(f"not valid YAML ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    except RecursionError:
        raise ValueError(f"not valid {kind.upper()} (nested too deeply)") from None
    except ValueError as e:          # e.g. an integer with too many digits
        raise ValueError(f"not valid {kind.upper()} ({str(e).splitlines()[0]})") from None


def parse_text(text: str) -> dict:
    """The canonical spec from JSON or YAML text (a form field); ValueError naming the problem."""
    if len(text) > MAX_FILE_BYTES:
        raise ValueError(f"landscape: the definition is {len(text)} characters long (limit {MAX_FILE_BYTES})")
    try:
        data = _loads(text, "json")
    except ValueError:
        data = _loads(text, "yaml")
    return validate(data)


def load_file(path) -> CustomLandscape:
    """A landscape from a JSON or YAML file (``.json``; ``.yaml``/``.yml``; other names: JSON, else YAML).

    Every problem is a one-line ValueError that starts with the file name."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ValueError(f"{p.name}: the file is {size} bytes (limit {MAX_FILE_BYTES})")
        raw = p.read_bytes()[:MAX_FILE_BYTES + 1]
    except OSError as e:
        raise ValueError(f"{path}: cannot read the file ({e.strerror or type(e).__name__})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{p.name}: not UTF-8 text") from None
    suffix = p.suffix.lower()
    try:
        if suffix == ".json":
            data = _loads(text, "json")
        elif suffix in (".yaml", ".yml"):
            data = _loads(text, "yaml")
        else:
            try:
                data = _loads(text, "json")
            except ValueError:
                data = _loads(text, "yaml")
        return from_spec(data)
    except ValueError as e:
        hint = ""
        if "unmatched '('" in str(e) and suffix != ".json":
            hint = " (YAML splits an unquoted [a, b] list at every comma: quote expressions with commas)"
        raise ValueError(f"{p.name}: {e}{hint}") from None


def landscape_from_cli(path) -> Landscape:
    """``python -m trajectories run --landscape-file FILE``: the landscape, or a one-line ValueError."""
    return load_file(path)


# ---------------------------------------------------------------------------------------------
# Shared links


def encode_spec(spec) -> str:
    """URL-safe text for ``spec``: "1." + base64url(deflate(compact JSON)), at most MAX_ENCODED characters."""
    clean = validate(spec)
    raw = json.dumps(clean, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = comp.compress(raw) + comp.flush()
    text = "1." + base64.urlsafe_b64encode(data).decode().rstrip("=")
    if len(text) > MAX_ENCODED:
        raise ValueError(f"landscape: the definition is too long to share in a link ({len(text)} characters "
                         f"encoded, limit {MAX_ENCODED}); shorten the expressions or drop presets")
    return text


def decode_spec(text) -> dict:
    """The canonical spec from :func:`encode_spec`'s text (validated; ValueError if malformed or too long)."""
    if not isinstance(text, str):
        raise ValueError("landscape: expected the encoded definition as text")
    if len(text) > MAX_ENCODED:
        raise ValueError(f"landscape: the encoded definition is {len(text)} characters long (limit {MAX_ENCODED})")
    if not text.startswith("1.") or not _B64.fullmatch(text[2:]):
        raise ValueError("landscape: not an encoded landscape definition (expected '1.' and base64url text)")
    body = text[2:]
    try:
        data = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        d = zlib.decompressobj(-15)
        raw = d.decompress(data, MAX_JSON_BYTES)
        if d.unconsumed_tail or not d.eof:
            raise ValueError("truncated or too large")
        spec = json.loads(raw.decode("utf-8"), parse_constant=_json_constant)
    except (ValueError, zlib.error, UnicodeDecodeError, RecursionError) as e:
        raise ValueError(f"landscape: the encoded definition is damaged ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    return validate(spec)
