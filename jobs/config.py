"""A benchmark job's config (landscape, methods, starts, steps, seeds, sweep, where it runs) and its plan of
engine calls ("chunks").

The first box of ``jobs/``: it imports the engine (``trajectories``) and nothing else of ``jobs/``; the results
table, the store, the runners and the presets build on it.

A job config is a plain dict (JSON/YAML; the page builds the same dict)::

    name: samgs-gamma-beta1
    landscape: one_optimum            # and optionally task_weights: [1, 1], scale: 1
    methods: [samgs, ls]              # or "all"
    starts: grid:64                   # a preset (paper ...), grid:N, random:N[:SEED], "x,y;x,y" or [[x, y], ...]
    steps: 20000                      # default: the landscape's default
    pipeline: reference               # optimizer: adam, lr: 0.001, momentum: 0.9
    seeds: [0]
    hparams: {samgs: {beta2: 0.99}}   # fixed settings
    sweep:                            # every combination becomes a variant (a row of the tables)
      samgs: {gamma: [0.01, 0.1, 0.5], beta1: "lin(0.5, 0.9, 5)"}
      lr: [0.001, 0.003]
      task_weights: [[1, 1], [2, 1]]
    record_every: 500                 # positions are kept every k steps (classification needs a few)
    early_exit: true                  # a chunk stops once every run has stopped moving
    cluster: local                    # run the chunks as Ray tasks (below); leave it out for this machine's worker

Sweep values: a list, ``"0.1, 0.2"``, ``"lin(A, B, N)"``, ``"log(A, B, N)"`` or ``{"lin": [A, B, N]}``.

Where it runs (``cluster``): left out or ``""``, the job's chunks run in its local worker process (threads on this
machine); ``"local"`` starts a Ray instance on this machine for the job; ``"HOST:PORT"`` (or ``"ray://HOST:PORT"``)
connects to a running Ray cluster and runs each chunk as a Ray task (``jobs/ray_runner.py``). Where a job leaves it
out, ``GRADSCAPE_RAY_ADDRESS`` decides when the job is recorded (:func:`resolve_cluster`); ``"none"`` keeps a job on
the local worker even then. The results do not depend on it.

Chunks: one engine call per (method, seed, range of starts); the range is as large as the memory budget
(``chunk_mb``, measured with :func:`trajectories.estimate_bytes`) and ``chunk_runs`` allow. All variants
of a method (its sweep cells) run together in one lock-step batch within a chunk.
"""
from __future__ import annotations

import io
import ipaddress
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

import landscapes
import optimizers

from trajectories import specs
from trajectories import starts as starts_mod
from trajectories.config import Config, resolve_landscape
from trajectories.device import check_device_name
from trajectories.engine import BYTES_LIMIT, estimate_bytes

MAX_RUNS = 20_000_000          # variants x seeds x starts, per job
MAX_SEEDS = 1000
MAX_SWEEP_VALUES = specs.MAX_SWEEP_VALUES
DEFAULT_CHUNK_MB = 256
DEFAULT_CHUNK_RUNS = 65_536    # keeps each 1000-step progress report / cancel check well under a second

DEFAULTS = {
    "name": "", "landscape": "one_optimum", "task_weights": None, "scale": 1.0, "methods": None,
    "starts": "grid:16", "steps": None, "pipeline": "reference", "optimizer": "adam", "lr": 1e-3,
    "momentum": 0.9, "seeds": [0], "hparams": {}, "sweep": {}, "record_every": None,
    "record": ["positions"], "early_exit": True, "dtype": "float32", "device": "auto", "chunk_mb": DEFAULT_CHUNK_MB,
    "chunk_runs": DEFAULT_CHUNK_RUNS, "landscape_spec": None, "cluster": "",
}
CLUSTER_ENV = "GRADSCAPE_RAY_ADDRESS"
LOCAL_CLUSTER = "local"     # a Ray instance started on this machine for the job
NO_CLUSTER = "none"         # this machine's worker process, whatever GRADSCAPE_RAY_ADDRESS says
_ALIASES = {"seed": "seeds", "method": "methods", "start": "starts"}


# ---------------------------------------------------------------------------------------------
# Values and configs.

def parse_values(spec, what: str = "values") -> list:
    """Sweep values (``trajectories/specs.py``'s :func:`~trajectories.specs.sweep_values`, the one parser)."""
    return specs.sweep_values(spec, what)


def _check_distinct(values, what):
    seen = set()
    for v in values:
        key = json.dumps(v, sort_keys=True)
        if key in seen:
            raise ValueError(f"{what}: the value {v!r} is listed twice")
        seen.add(key)


@dataclass(frozen=True)
class JobConfig:
    """A validated, normalised job config (JSON-able through :meth:`to_dict`)."""

    name: str
    landscape: str
    methods: tuple
    starts: object          # the spec string, or a tuple of (x, y)
    steps: int
    pipeline: str
    optimizer: str
    lr: tuple               # one value, or several (a sweep)
    momentum: float
    task_weights: tuple     # () for unit weights, else a tuple of K-tuples (several: a sweep)
    scale: float
    seeds: tuple
    hparams: dict = field(hash=False)     # {method: {name: value}}
    sweep: dict = field(hash=False)       # {method: {name: [values]}}
    record_every: int = 500
    record: tuple = ("positions",)
    early_exit: bool = True
    dtype: str = "float32"
    device: str = "auto"    # auto (CUDA when available, else the CPU), cpu, cuda, cuda:N
    chunk_mb: float = DEFAULT_CHUNK_MB
    chunk_runs: int = DEFAULT_CHUNK_RUNS
    landscape_spec: dict | None = field(default=None, hash=False)   # a custom landscape (landscapes.custom)
    cluster: str = ""       # "": this machine's worker; "local" or a Ray address: chunks as Ray tasks

    # -- parsing ---------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict) -> "JobConfig":
        if not isinstance(d, dict):
            raise ValueError(f"config: expected a mapping of fields, got {type(d).__name__}")
        d = {_ALIASES.get(k, k): v for k, v in d.items()}
        unknown = sorted(set(d) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"config: unknown field {unknown[0]!r} (known: {', '.join(DEFAULTS)})")
        c = dict(DEFAULTS, **{k: v for k, v in d.items() if v is not None or k == "task_weights"})
        spec = c["landscape_spec"]
        if isinstance(spec, str):                       # the encoded form of a shared link
            from landscapes import custom
            spec = custom.decode_spec(spec)
        if spec is not None and not isinstance(spec, dict):
            raise ValueError("landscape_spec: expected a mapping {name, tasks, bounds[, presets]}")
        land = resolve_landscape(str(c["landscape"]), spec) if spec else landscapes.get(str(c["landscape"]))
        methods = c["methods"]
        if methods is None:
            raise ValueError("methods: choose at least one method (a list, or \"all\")")
        if isinstance(methods, str):
            methods = optimizers.names() if methods.strip() == "all" else \
                [m.strip() for m in methods.split(",") if m.strip()]
        if not isinstance(methods, (list, tuple)):
            raise ValueError(f"methods: expected a list of method keys, \"a,b\" or \"all\", got {methods!r}")
        methods = tuple(str(m) for m in methods)
        if not methods:
            raise ValueError("methods: choose at least one method")
        for m in methods:
            optimizers.get(m)
        if len(set(methods)) != len(methods):
            raise ValueError("methods: a method is listed twice")
        steps = c["steps"] if c["steps"] is not None else land.default_steps
        steps_i = specs.number(steps, "steps", lo=1, integer=True)
        rec = c["record_every"]
        if rec is None:
            rec = max(1, min(500, steps_i // 40))
        rec_i = specs.number(rec, "record_every", lo=1, integer=True)
        seeds = c["seeds"]
        if isinstance(seeds, str):
            seeds = parse_values(seeds, "seeds")
        if not isinstance(seeds, (list, tuple)):
            seeds = [seeds]
        if any(isinstance(x, bool) for x in seeds):
            raise ValueError(f"seeds: expected whole numbers, got {seeds!r}")
        try:
            seeds_i = tuple(int(s) for s in seeds)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"seeds: expected whole numbers, got {seeds!r}") from None
        if any(s != float(x) for s, x in zip(seeds_i, seeds)) or any(not 0 <= s < 2 ** 31 for s in seeds_i):
            raise ValueError(f"seeds: expected whole numbers in [0, 2^31), got {seeds!r}")
        if not seeds_i or len(seeds_i) > MAX_SEEDS:
            raise ValueError(f"seeds: give between 1 and {MAX_SEEDS} seeds")
        _check_distinct(seeds_i, "seeds")

        sweep_in = c["sweep"] or {}
        if not isinstance(sweep_in, dict):
            raise ValueError("sweep: expected a mapping like {\"samgs\": {\"gamma\": [0.1, 0.5]}, \"lr\": [...]}")
        hp_in = c["hparams"] or {}
        if not isinstance(hp_in, dict):
            raise ValueError("hparams: expected a mapping like {\"samgs\": {\"gamma\": 0.1}}")
        lr = c["lr"]
        lr_list = parse_values(lr, "lr") if isinstance(lr, (list, tuple, str, dict)) else [lr]
        if "lr" in sweep_in:
            if len(lr_list) > 1:
                raise ValueError("lr: give the learning rates either as a list or in sweep.lr, not both")
            lr_list = parse_values(sweep_in["lr"], "sweep.lr")
        tw = c["task_weights"]
        if "task_weights" in sweep_in:
            tw = sweep_in["task_weights"]
            if not isinstance(tw, (list, tuple)) or not tw or not all(isinstance(w, (list, tuple)) for w in tw):
                raise ValueError("sweep.task_weights: expected a list of weight lists, e.g. [[1, 1], [2, 1]]")
        weights = _weights(tw, land.n_tasks)
        for v in lr_list:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"lr: expected numbers, got {v!r}")
        _check_distinct(lr_list, "lr")
        _check_distinct(weights, "task_weights")

        hparams, sweep = {}, {}
        for key, val in list(hp_in.items()) + [(k, v) for k, v in sweep_in.items() if k not in ("lr", "task_weights")]:
            if key not in methods:
                raise ValueError(f"sweep: {key!r} is not among the chosen methods ({', '.join(methods)})"
                                 if key in sweep_in else f"hparams: {key!r} is not among the chosen methods")
            if not isinstance(val, dict):
                raise ValueError(f"sweep: {key}: expected a mapping of hyperparameter -> values")
            m = optimizers.get(key)
            for name, v in val.items():
                try:
                    m.hparam(name)
                except (KeyError, ValueError):
                    known = ", ".join(h.name for h in m.hparams) or "none"
                    raise ValueError(f"sweep: {key} has no hyperparameter {name!r} (known: {known})") from None
                is_sweep = key in sweep_in and name in sweep_in[key]
                if is_sweep and key in hp_in and name in hp_in[key]:
                    raise ValueError(f"sweep: {key}.{name} is both fixed (hparams) and swept (sweep)")
                if is_sweep or isinstance(v, (list, tuple)):
                    vals = parse_values(v, f"sweep: {key}.{name}")
                    vals = [_check(m, name, x, "sweep") for x in vals]
                    if len(vals) > MAX_SWEEP_VALUES:
                        raise ValueError(f"sweep: {key}.{name}: at most {MAX_SWEEP_VALUES} values")
                    _check_distinct(vals, f"sweep: {key}.{name}")
                    if len(vals) > 1:
                        sweep.setdefault(key, {})[name] = vals
                    else:
                        hparams.setdefault(key, {})[name] = vals[0]
                else:
                    hparams.setdefault(key, {})[name] = _check(m, name, v, "hparams")
        starts = c["starts"]
        if not isinstance(starts, str):
            try:
                arr = np.asarray(starts, dtype=float)
                if arr.ndim != 2 or arr.shape[1] != 2 or not len(arr):
                    raise ValueError
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"starts: expected a spec (paper, grid:N, random:N, 'x,y;x,y') or a list of "
                                 f"[x, y] points, got {starts!r}") from None
            starts = tuple(tuple(float(x) for x in p) for p in arr)
        record = c["record"]
        record = (record,) if isinstance(record, str) else record
        if not isinstance(record, (list, tuple)) or not all(isinstance(r, str) for r in record):
            raise ValueError(f"record: expected field names such as [\"positions\"], got {record!r}")
        record = tuple(record)
        for name in ("name", "pipeline", "optimizer", "dtype", "device"):
            if not isinstance(c[name], str):
                raise ValueError(f"{name}: expected text, got {c[name]!r}")
        if not isinstance(c["early_exit"], bool):
            raise ValueError(f"early_exit: expected true or false, got {c['early_exit']!r}")
        for name in ("momentum", "scale"):
            if isinstance(c[name], bool):
                raise ValueError(f"{name}: expected a number, got {c[name]!r}")
            try:
                c[name] = float(c[name])
            except (TypeError, ValueError, OverflowError):
                raise ValueError(f"{name}: expected a number, got {c[name]!r}") from None
        cfg = cls(name=str(c["name"] or ""), landscape=land.key, methods=methods, starts=starts, steps=steps_i,
                  pipeline=str(c["pipeline"]), optimizer=str(c["optimizer"]), lr=tuple(float(x) for x in lr_list),
                  momentum=float(c["momentum"]), task_weights=weights, scale=float(c["scale"]), seeds=seeds_i,
                  hparams=hparams, sweep=sweep, record_every=rec_i, record=record,
                  early_exit=bool(c["early_exit"]), dtype=str(c["dtype"]), device=check_device_name(c["device"]),
                  chunk_mb=_positive(c["chunk_mb"], "chunk_mb"), chunk_runs=int(_positive(c["chunk_runs"], "chunk_runs")),
                  landscape_spec=getattr(land, "spec", None) or None, cluster=parse_cluster(c["cluster"]))
        cfg.plan()   # validates every method's engine config, the memory and the size
        return cfg

    def to_dict(self) -> dict:
        d = asdict(self)
        d["methods"] = list(self.methods)
        d["starts"] = self.starts if isinstance(self.starts, str) else [list(p) for p in self.starts]
        d["lr"] = self.lr[0] if len(self.lr) == 1 else list(self.lr)
        d["task_weights"] = None if not self.task_weights else [list(w) for w in self.task_weights]
        d["seeds"] = list(self.seeds)
        d["record"] = list(self.record)
        if not self.cluster:     # a local job's config stays as it was before jobs could run on Ray
            del d["cluster"]
        return d

    # -- derived ---------------------------------------------------------------------------------
    @property
    def land(self):
        return resolve_landscape(self.landscape, self.landscape_spec)

    @property
    def title(self) -> str:
        """The job's name, or one made of what tells it apart: landscape, methods, starts, steps, lr, sweep."""
        if self.name:
            return self.name
        n = len(self.methods)
        parts = [self.landscape, f"{optimizers.get(self.methods[0]).name}" if n == 1 else f"{n} methods",
                 self.starts_label, f"{self.steps:,} steps".replace(",", " "),
                 "lr " + ", ".join(f"{x:g}" for x in self.lr)]
        if self.pipeline != "reference":
            parts.append(self.pipeline)
        if self.swept:
            sizes = {n_: len(v) for m in self.sweep.values() for n_, v in m.items()}
            sizes.update({"lr": len(self.lr)} if len(self.lr) > 1 else {})
            sizes.update({"task_weights": len(self.task_weights)} if len(self.task_weights) > 1 else {})
            parts.append("sweep " + " × ".join(f"{k} ({sizes.get(k, '?')})" for k in self.swept))
        return " · ".join(parts)

    @property
    def starts_label(self) -> str:
        return self.starts if isinstance(self.starts, str) else f"{len(self.starts)} points"

    def start_points(self) -> np.ndarray:
        spec = self.starts if isinstance(self.starts, str) else np.array(self.starts, dtype=float)
        return starts_mod.resolve(self.land, spec)

    @property
    def swept(self) -> list[str]:
        """Names that vary between variants: method hyperparameters, then ``lr`` / ``task_weights``."""
        names = []
        for m in self.methods:
            for n in self.sweep.get(m, {}):
                if n not in names:
                    names.append(n)
        if len(self.lr) > 1:
            names.append("lr")
        if len(self.task_weights) > 1:
            names.append("task_weights")
        return names

    def engine_config(self, method: str, seed: int, starts, steps: int | None = None) -> Config:
        """The engine config of one chunk: ``method`` with all its sweep cells, one seed, some starts
        (``steps``: override the job's, e.g. for a warm-up call that only builds the kernels)."""
        hp = dict(self.hparams.get(method, {}))
        hp.update(self.sweep.get(method, {}))
        tw = None if not self.task_weights else \
            list(self.task_weights[0]) if len(self.task_weights) == 1 else [list(w) for w in self.task_weights]
        return Config.make(self.land, [method], np.asarray(starts, dtype=float), steps or self.steps,
                           hparams={method: hp} if hp else {}, optimizer=self.optimizer,
                           lr=self.lr[0] if len(self.lr) == 1 else list(self.lr), momentum=self.momentum,
                           pipeline=self.pipeline, record_every=self.record_every, seed=int(seed),
                           dtype=self.dtype, device=self.device, task_weights=tw, scale=self.scale,
                           record=tuple(self.record),
                           early_exit=self.early_exit)

    def variants(self) -> list[dict]:
        """Every variant of the job (method x sweep cell), in table order, with a stable integer id."""
        pts = self.start_points()[:1]
        out = []
        for m in self.methods:
            for v in self.engine_config(m, self.seeds[0], pts).variants():
                d = v.to_dict()
                d["name"] = optimizers.get(m).name
                d["id"] = len(out)
                out.append(d)
        return out

    def plan(self) -> list["Chunk"]:
        """The engine calls of this job, in order; raises ValueError when the job is refused."""
        pts = self.start_points()
        S = len(pts)
        budget = self.chunk_mb * 2 ** 20
        chunks = []
        total_runs = 0
        for m in self.methods:
            probe = self.engine_config(m, self.seeds[0], pts[:1])
            V = len(probe.variants())
            per_start = estimate_bytes(probe)
            if per_start > BYTES_LIMIT:
                raise ValueError(f"memory: one start of {m} with all {V} sweep cells would need about "
                                 f"{per_start / 2 ** 30:.1f} GiB (limit {BYTES_LIMIT / 2 ** 30:.1f} GiB); "
                                 f"sweep fewer values or record less often (record_every)")
            total_runs += V * S * len(self.seeds)
            if total_runs > MAX_RUNS:
                raise ValueError(f"size: this job has more than {MAX_RUNS:,} runs (variants x seeds x starts); "
                                 f"use fewer starts, seeds or sweep values")
            per_chunk = max(1, min(S, int(budget // max(per_start, 1)), max(1, self.chunk_runs // V)))
            for seed in self.seeds:
                for lo in range(0, S, per_chunk):
                    hi = min(S, lo + per_chunk)
                    chunks.append(Chunk(len(chunks), m, int(seed), lo, hi, V, self.steps))
        return chunks


def _check(method, name, value, where):
    """A hyperparameter value checked against its spec; the message names the method."""
    try:
        return method.hparam(name).check(value)
    except ValueError as e:
        raise ValueError(f"{where}: {method.key}.{e}") from None


def _positive(v, what):
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what}: expected a positive number, got {v!r}") from None
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"{what}: expected a positive number, got {v!r}")
    return x


def _weights(tw, K) -> tuple:
    if tw is None or (isinstance(tw, (list, tuple)) and len(tw) == 0):
        return ()
    if isinstance(tw, str):
        tw = [list(w) for w in specs.weight_sets(tw, "task_weights", K)]
    if not isinstance(tw, (list, tuple)):
        raise ValueError(f"task_weights: expected {K} numbers, got {tw!r}")
    sets = tw if isinstance(tw[0], (list, tuple)) else [tw]
    out = []
    for w in sets:
        if len(w) != K:
            raise ValueError(f"task_weights: expected {K} weights per set, got {len(w)}")
        try:
            ws = tuple(float(x) for x in w)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"task_weights: expected numbers, got {w!r}") from None
        if not all(math.isfinite(x) and x > 0 for x in ws):
            raise ValueError(f"task_weights: weights must be positive numbers, got {list(w)}")
        out.append(ws)
    return tuple(out)


def parse_cluster(value) -> str:
    """A job's ``cluster`` field, normalised: ``""`` (this machine's worker), ``"none"``, ``"local"``,
    ``"HOST:PORT"`` or ``"ray://HOST:PORT"``; a ValueError naming the field otherwise. Whether anything answers
    there is checked when the job runs (the job then fails with a message saying so)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"cluster: expected a Ray address such as 127.0.0.1:6379, 'local' or nothing, got {value!r}")
    text = value.strip()
    if text.lower() in ("", NO_CLUSTER, LOCAL_CLUSTER):
        return text.lower()
    host, port = split_address(text)
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return f"ray://{where}" if text.startswith("ray://") else where


def split_address(address: str) -> tuple[str, int]:
    """``(host, port)`` of a Ray address ``HOST:PORT`` / ``ray://HOST:PORT`` (an IPv6 host in brackets)."""
    text = address.strip()
    rest = text[len("ray://"):] if text.startswith("ray://") else text
    m = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([A-Za-z0-9.-]+):(\d{1,5})", rest)
    if not m:
        raise ValueError(f"cluster: {address!r} is not a Ray address (write HOST:PORT such as 127.0.0.1:6379, "
                         f"ray://HOST:PORT, or 'local' for a Ray instance on this machine)")
    host, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
    if m.group(1):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"cluster: {host!r} in {address!r} is not an IPv6 address") from None
    if not 1 <= int(port) <= 65535:
        raise ValueError(f"cluster: the port in {address!r} must be between 1 and 65535")
    return host, int(port)


def resolve_cluster(cfg: "JobConfig", env=None) -> "JobConfig":
    """``cfg`` with its cluster decided for good when the job is recorded: the config's own value, else
    ``GRADSCAPE_RAY_ADDRESS`` (validated like the field), else this machine's worker (``""``)."""
    env = os.environ if env is None else env
    if cfg.cluster == NO_CLUSTER:
        return replace(cfg, cluster="")
    if cfg.cluster:
        return cfg
    text = env.get(CLUSTER_ENV, "").strip()
    if not text:
        return cfg
    try:
        cluster = parse_cluster(text)
    except ValueError as e:
        raise ValueError(f"{CLUSTER_ENV}: {str(e).removeprefix('cluster: ')}") from None
    return replace(cfg, cluster="" if cluster == NO_CLUSTER else cluster)


def load_config(path) -> JobConfig:
    """A job config from a JSON or YAML file; ValueError with a one-line message when it is refused."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ValueError(f"config: cannot read {path}: {e.strerror or e}") from None
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml
            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as e:   # json/yaml syntax errors
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"config: {path} is not valid {'YAML' if p.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: "
                         f"{first}") from None
    return JobConfig.from_dict(data)


@dataclass(frozen=True)
class Chunk:
    """One engine call of a job: ``method`` (all its sweep cells) x ``seed`` x starts[lo:hi]."""

    idx: int
    method: str
    seed: int
    lo: int
    hi: int
    variants: int
    steps: int

    @property
    def runs(self) -> int:
        return self.variants * (self.hi - self.lo)

    @property
    def run_steps(self) -> int:
        return self.runs * self.steps

    @property
    def file(self) -> str:
        return f"chunk-{self.idx:05d}.npz"


# ---------------------------------------------------------------------------------------------
# Comparing two jobs.

COMPARE_FIELDS = ("methods", "steps", "pipeline", "optimizer", "lr", "momentum", "task_weights", "scale", "seeds",
                  "sweep", "hparams", "dtype")


def differences(a: JobConfig, b: JobConfig) -> tuple[list[str], list[str]]:
    """(why the two jobs' success shares cannot be compared, what else differs), each as short phrases. Shares
    compare only over the same runs' starting conditions: the same landscape and the same start points."""
    blockers = []
    if a.landscape != b.landscape or (a.landscape_spec or None) != (b.landscape_spec or None):
        blockers.append(f"landscape {a.landscape} vs {b.landscape}")
    else:
        pa, pb = a.start_points(), b.start_points()
        if pa.shape != pb.shape or not np.allclose(pa, pb, rtol=0, atol=1e-12):
            blockers.append(f"start points {a.starts_label} vs {b.starts_label}")
    other = []
    da, db = a.to_dict(), b.to_dict()
    for f in COMPARE_FIELDS:
        if json.dumps(da[f], sort_keys=True) != json.dumps(db[f], sort_keys=True):
            other.append(f"{f} {_short(da[f])} vs {_short(db[f])}")
    return blockers, other


def _short(v) -> str:
    text = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "…"


# ---------------------------------------------------------------------------------------------
# What a job costs (shown before it is launched).

def cost(cfg: JobConfig, rates: dict) -> dict:
    """What ``cfg`` will take: ``runs``, ``run_steps``, ``seconds`` (from ``rates``, run-steps per second per
    method as measured on this machine; None when a method's rate is unknown), ``peak_bytes`` (the largest engine
    call's memory, ``trajectories.estimate_bytes``) and ``stored_bytes`` (every chunk's records, about what its
    files hold uncompressed). Early exit can only make the time shorter."""
    plan = cfg.plan()
    pts = cfg.start_points()
    runs = sum(c.runs for c in plan)
    run_steps = sum(c.run_steps for c in plan)
    seconds = 0.0
    for c in plan:
        rate = rates.get(c.method)
        if not rate:
            seconds = None
            break
        seconds += c.run_steps / rate
    sizes = {}
    for c in plan:
        key = (c.method, c.hi - c.lo)
        if key not in sizes:
            sizes[key] = estimate_bytes(cfg.engine_config(c.method, c.seed, pts[c.lo:c.hi]))
    per_chunk = [sizes[(c.method, c.hi - c.lo)] for c in plan]
    return {"runs": runs, "run_steps": run_steps, "seconds": seconds, "chunks": len(plan),
            "peak_bytes": max(per_chunk, default=0), "stored_bytes": sum(per_chunk)}


def dump_config(cfg: JobConfig) -> str:
    """The config as pretty JSON (for download / the CLI)."""
    buf = io.StringIO()
    json.dump(cfg.to_dict(), buf, indent=2, sort_keys=True)
    return buf.getvalue()
