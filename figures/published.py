"""The published SAM-GS toy runs, shipped as data: Explore draws them as *ghosts* under the runs that have one.

``reference_data/published_paths.npz`` (built by ``scripts/build_published_paths.py`` from ``../shared/reference/``)
holds, per (landscape, method), the start points, every 100th step of each path (float32), the run's robust /
sensitive label and the outcome regions a correct implementation may end in. Two sources:

* ``paper``: the SAM-GS authors' own toy code, run from the paper's 7 + 6 start points;
* ``grid``: 25 starts per landscape (θ ∈ {-8, -4, 0, 4, 8}²) from an independent re-implementation of the authors'
  toy pipeline that reproduces every golden run of these methods bit for bit (CAGrad and Nash-MTL with exact
  K = 2 weights).

RLW and GradDrop are not shipped: their published paths are one draw of another random stream.

A run of a Result *has* a published path when everything that made the path is the same: the landscape (a built-in
one), the method and every hyperparameter, the start (to 1e-9), the reference pipeline, Adam with lr 1e-3, task
weights 1, scale 1, float32 — and no more steps than were published (the ghost is then cut where the run stops: the
first n steps of a run do not depend on how many follow). :func:`matches` finds them; :func:`why_none` says why a
view has none; :func:`largest_distance` measures a run against its ghost at the ghost's points.

Pure: numpy only; nothing here runs the engine.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FORMAT = "gradscape-published/1"
DATA = Path(__file__).resolve().parent / "reference_data" / "published_paths.npz"
# what every published run used besides its method, hyperparameters and start
RUN_SETTINGS = dict(pipeline="reference", optimizer="adam", lr=1e-3, dtype="float32", task_weights=None, scale=1.0)
SOURCES = {
    "paper": "the SAM-GS authors' toy code, run from the paper's start points",
    "grid": "an independent re-implementation of the authors' toy pipeline (bit for bit on every golden run), "
            "25 grid starts",
}
START_TOL = 1e-9
NOT_SHIPPED = {"rlw": "RLW", "graddrop": "GradDrop"}


@dataclass(frozen=True)
class PublishedRun:
    """One published run: where it started, what made it, its path every ``stride`` steps."""

    landscape: str
    method: str
    source: str
    start: tuple
    hparams: tuple            # ((name, value), ...) as the engine resolves them
    steps: int
    stride: int
    robust: bool
    outcomes: tuple           # the outcome regions a correct implementation may end in (reference README)
    path: np.ndarray = field(repr=False)     # [steps // stride + 1, 2] float32

    @property
    def record_steps(self) -> np.ndarray:
        return np.arange(len(self.path)) * self.stride

    def cut(self, steps: int) -> np.ndarray:
        """The path up to step ``steps`` (the first n steps of a run are the same whatever follows)."""
        return self.path[: steps // self.stride + 1]

    @property
    def label(self) -> str:
        return "robust" if self.robust else "sensitive"


@functools.lru_cache(maxsize=1)
def runs() -> tuple[PublishedRun, ...]:
    """Every shipped run (read once per process)."""
    with np.load(DATA, allow_pickle=False) as z:
        meta = json.loads(str(z["index"]))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{DATA.name}: format {meta.get('format')!r}, expected {FORMAT!r}")
        out = []
        for e in meta["entries"]:
            arr = z[e["array"]]
            for s, start in enumerate(e["starts"]):
                out.append(PublishedRun(e["landscape"], e["method"], e["source"], tuple(map(float, start)),
                                        tuple(sorted(e["hparams"].items())), int(e["steps"]), int(e["stride"]),
                                        bool(e["robust"][s]), tuple(e["outcomes"][s].split(",")), arr[s]))
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _by_key() -> dict:
    out: dict = {}
    for r in runs():
        out.setdefault((r.landscape, r.method), []).append(r)
    return out


def available(landscape: str, method: str) -> list[PublishedRun]:
    return list(_by_key().get((landscape, method), []))


# -- matching a Result --------------------------------------------------------------------------------
def _same_number(a, b) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=1e-15)


def _ones(w) -> bool:
    return w is None or all(_same_number(x, 1.0) for x in np.ravel(w))


def why_none(config: dict) -> str | None:
    """Why no run of ``config`` (a Result's config) can have a published path, or None when some may."""
    if config.get("landscape_spec"):
        return "published paths exist only for the built-in one-optimum and two-optima landscapes"
    if not any(k[0] == config.get("landscape") for k in _by_key()):
        return f"no published paths for the landscape {config.get('landscape')!r}"
    wrong = []
    if config.get("pipeline") != RUN_SETTINGS["pipeline"]:
        wrong.append(f"the {config.get('pipeline')} pipeline (published: reference)")
    if config.get("optimizer") != RUN_SETTINGS["optimizer"]:
        wrong.append(f"the optimiser {config.get('optimizer')} (published: Adam)")
    if config.get("dtype", "float32") != RUN_SETTINGS["dtype"]:
        wrong.append(f"{config.get('dtype')} (published: float32)")
    if not _same_number(config.get("scale", 1.0) or 1.0, 1.0):
        wrong.append(f"task-1 scale {config.get('scale'):g} (published: 1)")
    if wrong:
        return "this view uses " + ", ".join(wrong)
    return None


def _hp_equal(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(_same_number(a[k], b[k]) for k in a)


def _row_problem(config: dict, variant: dict) -> str | None:
    if not available(config["landscape"], variant["method"]):
        return "no published runs" if variant["method"] not in NOT_SHIPPED else \
            "random: its published path is one draw of another random stream (not shipped)"
    if not _same_number(variant.get("lr", config.get("lr")), RUN_SETTINGS["lr"]):
        return f"lr {variant.get('lr'):g} (published: 0.001)"
    if not _ones(variant.get("task_weights")):
        return "task weights other than 1"
    pub = dict(available(config["landscape"], variant["method"])[0].hparams)
    hp = variant.get("hparams", {})
    if not any(_hp_equal(hp, dict(r.hparams)) for r in available(config["landscape"], variant["method"])):
        diff = [f"{k} {hp.get(k)!s} (published {v:g})" for k, v in pub.items() if not _same_number(hp.get(k, v), v)]
        return "hyperparameters differ: " + ", ".join(diff or ["(another setting)"])
    return None


@dataclass(frozen=True)
class Match:
    row: int                  # the Result's variant row
    start: int                # the Result's start index
    run: PublishedRun


def matches(result) -> list[Match]:
    """The runs of ``result`` that have a published path, each with it."""
    config = result.config
    if why_none(config) is not None:
        return []
    steps = int(config["steps"])
    out = []
    starts = np.asarray(result.starts, dtype=float)
    for m, v in enumerate(result.variants):
        if _row_problem(config, v) is not None:
            continue
        hp = v.get("hparams", {})
        for r in available(config["landscape"], v["method"]):
            if steps > r.steps or not _hp_equal(hp, dict(r.hparams)):
                continue
            hit = np.flatnonzero(np.abs(starts - np.asarray(r.start)).max(1) <= START_TOL)
            out.extend(Match(m, int(s), r) for s in hit)
    seen, unique = set(), []
    for mt in sorted(out, key=lambda mt: (mt.row, mt.start, mt.run.source != "paper")):   # the authors' run first
        if (mt.row, mt.start) not in seen:
            seen.add((mt.row, mt.start))
            unique.append(mt)
    return unique


def row_notes(result) -> dict[int, str]:
    """Per row without any published path although its method has some: why (hyperparameters, lr, ...)."""
    config = result.config
    if why_none(config) is not None:
        return {}
    have = {mt.row for mt in matches(result)}
    out = {}
    for m, v in enumerate(result.variants):
        if m in have:
            continue
        problem = _row_problem(config, v)
        if problem is None:
            problem = ("none of its starts is a published start (the paper preset and the reference grid are)"
                       if int(config["steps"]) <= max(r.steps for r in available(config["landscape"], v["method"]))
                       else f"more steps than were published ({config['steps']:,})")
        out[m] = problem
    return out


def ghosts(result) -> list[list[np.ndarray]]:
    """Per row, the published paths of its matched runs, cut at the run's steps (for ``live_map(ghosts=...)``)."""
    out: list[list[np.ndarray]] = [[] for _ in result.variants]
    steps = int(result.config["steps"])
    for mt in matches(result):
        out[mt.row].append(mt.run.cut(steps))
    return out


def needed_record_every(result) -> int | None:
    """The record interval that has every ghost point (None: no ghosts)."""
    ms = matches(result)
    return ms[0].run.stride if ms else None


def largest_distance(run: PublishedRun, positions, record_steps, steps: int) -> float:
    """max over the ghost's points up to ``steps`` of |run(step) - ghost(step)|; ``positions[T, 2]`` recorded at
    ``record_steps`` must include every ghost step (ValueError otherwise). A run that diverged (NaN) gives inf."""
    ghost = run.cut(steps).astype(np.float64)
    want = run.record_steps[: len(ghost)]
    rec = np.asarray(record_steps)
    idx = np.searchsorted(rec, want)
    if (idx >= len(rec)).any() or not np.array_equal(rec[np.minimum(idx, len(rec) - 1)], want):
        raise ValueError(f"record_every: the run is not recorded at every {run.stride}th step")
    gap = np.linalg.norm(np.asarray(positions, dtype=np.float64)[idx] - ghost, axis=-1)
    return float(np.max(np.where(np.isfinite(gap), gap, np.inf)))
