"""A simulation's full configuration: validated, frozen (hashable for caches), JSON round-trippable.

Sweeps: any method hyperparameter, ``lr`` and ``task_weights`` may be given as a list; the engine
expands them into *variants* (one row of the Result per method x setting) that all advance in the
same lock-step batch.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, fields, replace

import numpy as np

import landscapes
import optimizers
from optimizers import outer as outer_mod

from . import specs
from . import starts as starts_mod
from .device import check_device_name

MAX_STEPS = 1_000_000
MAX_LR = 100.0
DTYPES = ("float32", "float64")
RECORDS = ("positions", "losses", "diagnostics")


def _frozen(obj):
    """Dicts/lists -> sorted tuples, so the config hashes."""
    if isinstance(obj, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return tuple(_frozen(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return _frozen(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _thaw(obj):
    if isinstance(obj, tuple) and obj and all(isinstance(x, tuple) and len(x) == 2 and isinstance(x[0], str)
                                               for x in obj):
        return {k: _thaw(v) for k, v in obj}
    if isinstance(obj, tuple):
        return [_thaw(v) for v in obj]
    return obj


def _number(name, v, lo=-math.inf, hi=math.inf, lo_open=False):
    return specs.number(v, name, lo, hi, lo_open=lo_open)


@dataclass(frozen=True)
class Variant:
    """One row of a Result: a method with one concrete setting."""

    method: str
    hparams: tuple          # ((name, value), ...) resolved, every hyperparameter
    lr: float
    task_weights: tuple
    swept: tuple = ()       # names of the settings that vary between variants of this method

    @property
    def label(self) -> str:
        m = optimizers.get(self.method)
        hp = dict(self.hparams)
        parts = []
        for name in self.swept:
            v = self.lr if name == "lr" else self.task_weights if name == "task_weights" else hp[name]
            parts.append(f"{name}={_fmt(v)}")
        return m.name + (f" ({', '.join(parts)})" if parts else "")

    def to_dict(self):
        return {"method": self.method, "hparams": dict(self.hparams), "lr": self.lr,
                "task_weights": list(self.task_weights), "label": self.label, "swept": list(self.swept)}


def _fmt(v):
    if isinstance(v, (tuple, list)):
        return "(" + ", ".join(_fmt(x) for x in v) + ")"
    return f"{v:g}" if isinstance(v, float) else str(v)


@dataclass(frozen=True)
class Config:
    landscape: str
    methods: tuple
    starts: tuple                       # ((x, y), ...)
    steps: int
    hparams: tuple = ()                 # frozen {method: {name: value or [values]}}
    optimizer: str = "adam"
    lr: object = 1e-3                   # float or tuple (sweep)
    momentum: float = 0.9               # SGD only
    pipeline: str = "reference"
    record_every: int = 1
    seed: int = 0
    dtype: str = "float32"
    device: str = "auto"                # auto (CUDA when available, else CPU), cpu, cuda, cuda:N
    task_weights: object = None         # None (ones), a K-tuple, or a tuple of K-tuples (sweep)
    scale: float = 1.0
    record: tuple = RECORDS
    early_exit: bool = False
    landscape_spec: tuple = ()          # a custom landscape's definition (landscapes.custom), frozen
    starts_spec: str = ""               # the spec the starts came from, for display

    # -- construction and validation ------------------------------------------------------------
    @classmethod
    def make(cls, landscape, methods, starts, steps, **kw) -> "Config":
        land = resolve_landscape(landscape, kw.pop("landscape_spec", None))
        if not isinstance(methods, (str, list, tuple)) or not all(isinstance(m, str) for m in methods):
            raise ValueError(f"methods: expected method keys (a list, or 'a,b'), got {methods!r}")
        hp = kw.get("hparams")
        if hp is not None and (not isinstance(hp, dict) or not all(isinstance(v, dict) for v in hp.values())):
            raise ValueError(f"hparams: expected {{method: {{name: value}}}}, got {hp!r}")
        if isinstance(methods, str):
            methods = [m.strip() for m in methods.split(",") if m.strip()]
        methods = tuple(methods)
        if not methods:
            raise ValueError("methods: choose at least one method")
        for m in methods:
            meth = optimizers.get(m)
            if land.n_tasks < meth.min_tasks:
                raise ValueError(f"methods: {m} needs at least {meth.min_tasks} tasks")
        if len(set(methods)) != len(methods):
            raise ValueError("methods: a method is listed twice")
        starts_spec = starts if isinstance(starts, str) else kw.pop("starts_spec", "")
        kw.pop("starts_spec", None)
        for name in ("record_every", "seed"):
            if name in kw and isinstance(kw[name], (float, np.integer, np.floating)) and float(kw[name]).is_integer():
                kw[name] = int(kw[name])
        pts = starts_mod.resolve(land, starts)
        try:
            steps_i = int(steps)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"steps: expected a whole number, got {steps!r}") from None
        if steps_i != float(steps) or not 1 <= steps_i <= MAX_STEPS:
            raise ValueError(f"steps: must be a whole number between 1 and {MAX_STEPS}, got {steps!r}")
        cfg = cls(landscape=land.key, methods=methods, starts=_frozen(pts.tolist()), steps=steps_i,
                  landscape_spec=_frozen(getattr(land, "spec", None) or {}), starts_spec=starts_spec,
                  **{k: (_frozen(v) if isinstance(v, (dict, list, tuple, np.ndarray)) else v)
                     for k, v in kw.items()})
        cfg.validate()
        return cfg

    def validate(self):
        land = self.land
        outer_mod.get(self.optimizer)
        if self.pipeline not in optimizers.PIPELINES:
            raise ValueError(f"pipeline: expected one of {', '.join(optimizers.PIPELINES)}, got {self.pipeline!r}")
        check_device_name(self.device)
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype: expected one of {', '.join(DTYPES)}, got {self.dtype!r}")
        for lr in self.lrs:
            _number("lr", lr, 0.0, MAX_LR, lo_open=True)
        _number("momentum", self.momentum, 0.0, 0.9999)
        _number("scale", self.scale, 0.0, 1e6, lo_open=True)
        if not isinstance(self.record_every, int) or not 1 <= self.record_every <= MAX_STEPS:
            raise ValueError(f"record_every: must be a whole number >= 1, got {self.record_every!r}")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2 ** 31:
            raise ValueError(f"seed: must be a whole number in [0, 2^31), got {self.seed!r}")
        for r in self.record:
            if r not in RECORDS:
                raise ValueError(f"record: unknown field {r!r} (known: {', '.join(RECORDS)})")
        for w in self.weight_sets:
            if len(w) != land.n_tasks:
                raise ValueError(f"task_weights: expected {land.n_tasks} weights, got {len(w)}")
            for x in w:
                _number("task_weights", x, 0.0, 1e6, lo_open=True)
        hp = self.hparams_dict
        for m in hp:
            if m not in self.methods:
                raise ValueError(f"hparams: {m!r} is not among the chosen methods")
        for v in self.variants():   # checks every value against its spec
            pass

    # -- derived ---------------------------------------------------------------------------------
    @property
    def land(self):
        return resolve_landscape(self.landscape, _thaw(self.landscape_spec) or None)

    @property
    def lrs(self) -> tuple:
        return tuple(self.lr) if isinstance(self.lr, tuple) else (self.lr,)

    @property
    def weight_sets(self) -> tuple:
        K = self.land.n_tasks
        w = self.task_weights
        if w is None or w == ():
            return ((1.0,) * K,)
        try:
            if isinstance(w, tuple) and w and isinstance(w[0], tuple):
                return tuple(tuple(float(x) for x in ws) for ws in w)
            return (tuple(float(x) for x in w),)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"task_weights: expected {K} numbers (or a list of such lists), got {w!r}") from None

    @property
    def hparams_dict(self) -> dict:
        # per method, so a method given no settings thaws to {} (an empty frozen dict is (), which _thaw reads as [])
        return {m: _thaw(v) if v else {} for m, v in self.hparams or ()}

    @property
    def start_array(self) -> np.ndarray:
        return np.array(self.starts, dtype=float).reshape(-1, 2)

    def variants(self) -> list[Variant]:
        out = []
        land = self.land
        given_all = self.hparams_dict
        for key in self.methods:
            m = optimizers.get(key)
            given = dict(land.method_defaults.get(key, {}))
            given.update(given_all.get(key, {}) or {})
            fixed, swept = {}, {}
            for name, v in given.items():
                m.hparam(name)
                if isinstance(v, (list, tuple)):
                    if not v:
                        raise ValueError(f"hparams: {key}.{name}: an empty sweep")
                    swept[name] = [m.hparam(name).check(x) for x in v]
                else:
                    fixed[name] = m.hparam(name).check(v)
            base = m.resolve(fixed)
            names = list(swept)
            sweep_names = names + (["lr"] if len(self.lrs) > 1 else []) + \
                (["task_weights"] if len(self.weight_sets) > 1 else [])
            for lr in self.lrs:
                for w in self.weight_sets:
                    for combo in itertools.product(*[swept[n] for n in names]):
                        hp = dict(base, **dict(zip(names, combo)))
                        out.append(Variant(key, tuple(sorted(hp.items())), float(lr), w, tuple(sweep_names)))
        return out

    def for_method(self, key: str) -> "Config":
        """This config restricted to one of its methods (its rows are the same runs: a method's random draws
        are keyed by its own name and variant index, not by its place among the methods)."""
        if key not in self.methods:
            raise ValueError(f"methods: {key!r} is not among {', '.join(self.methods)}")
        hp = self.hparams_dict.get(key)
        return replace(self, methods=(key,), hparams=_frozen({key: hp}) if hp else ())

    def to_dict(self) -> dict:
        # field by field, not dataclasses.asdict: its deep copy of a 50 x 50 grid's starts took 65 ms a call
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("methods", "record"):
            d[k] = list(getattr(self, k))
        d["starts"] = [list(p) for p in self.starts]
        d["hparams"] = self.hparams_dict
        d["lr"] = list(self.lr) if isinstance(self.lr, tuple) else self.lr
        tw = self.task_weights
        d["task_weights"] = None if tw is None else [list(x) for x in tw] if tw and isinstance(tw[0], tuple) \
            else list(tw)
        d["landscape_spec"] = _thaw(self.landscape_spec) or None
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        d = dict(d)
        return cls.make(d.pop("landscape"), d.pop("methods"), d.pop("starts"), d.pop("steps"), **d)


def resolve_landscape(landscape, spec=None):
    if not isinstance(landscape, str):
        return landscape
    if spec:
        from landscapes import custom
        return custom.from_spec(spec)
    return landscapes.get(landscape)
