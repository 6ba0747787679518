"""A simulation's results: numpy arrays with named axes, the config that reproduces them, save/load.

Axes: M rows (one per method variant: a method with one setting of a sweep), S starts, T recorded
steps (``record_steps``), K tasks. Arrays:

* ``positions[M, S, T, 2]``, ``losses[M, S, T, K]``, ``final[M, S, 2]``, ``final_losses[M, S, K]``;
* ``aux[name][M, S, T, ...]``: per-step diagnostics (``cos``, ``gms``, ``curv``, ``gnorm``, ``grad``, ``dir``,
  ``weights`` and method-specific fields such as SAM-GS's ``branch``; NaN where a method has no such field);
* per run: ``outcome`` (what the run reached first), ``status`` / ``status_step`` (how it ended, and when; -1:
  no such step), ``diverged_step``, ``optimum_step``, ``optimum_index``, ``pareto_distance``, ``steps_to_pareto``,
  ``stationarity`` — the codes and rules are in ``trajectories/metrics.py``; their words for people in
  ``figures/vocabulary.py``.

``save(path)`` writes ``path`` (npz, the metadata embedded) and ``path.json`` beside it (the config);
``Result.load(path)`` reads either form back; ``to_bytes()`` is the npz alone (what a job chunk's file holds).

A Result is data: the engine builds it (``trajectories/engine.py``: ``run`` ends by assembling its runners'
outputs and classifying the runs), nothing here runs a simulation.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import metrics
from .config import resolve_landscape

ARRAYS = ("positions", "losses", "final", "final_losses", "diverged_step", "optimum_step", "optimum_index",
          "pareto_distance", "steps_to_pareto", "stationarity", "status", "status_step", "outcome",
          "record_steps", "starts")


@dataclass
class Result:
    config: dict
    variants: list                 # per row: {"method", "label", "hparams", "lr", "task_weights", "swept"}
    starts: np.ndarray
    record_steps: np.ndarray
    positions: np.ndarray | None
    losses: np.ndarray | None
    final: np.ndarray
    final_losses: np.ndarray
    diverged_step: np.ndarray
    optimum_step: np.ndarray
    optimum_index: np.ndarray
    pareto_distance: np.ndarray
    steps_to_pareto: np.ndarray
    stationarity: np.ndarray
    status: np.ndarray
    status_step: np.ndarray
    outcome: np.ndarray
    aux: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)

    # -- names ------------------------------------------------------------------------------------
    @property
    def methods(self) -> list[str]:
        return [v["method"] for v in self.variants]

    @property
    def labels(self) -> list[str]:
        return [v["label"] for v in self.variants]

    @property
    def landscape(self):
        return resolve_landscape(self.config["landscape"], self.config.get("landscape_spec"))

    @property
    def shape(self):
        return self.final.shape[:2]

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def stack(cls, parts: list["Result"], config: dict) -> "Result":
        """The rows of several Results of the same starts and steps, one after the other, as one Result whose
        config is ``config`` (e.g. each method run and cached on its own, shown together). A diagnostic that only
        some parts record is NaN (or -1) in the others' rows, as in a single run."""
        if not parts:
            raise ValueError("stack: no Results")
        first = parts[0]
        for p in parts[1:]:
            if not (np.array_equal(p.starts, first.starts) and np.array_equal(p.record_steps, first.record_steps)):
                raise ValueError("stack: the Results differ in their starts or recorded steps")

        def cat(name):
            arrs = [getattr(p, name) for p in parts]
            return None if any(a is None for a in arrs) else np.concatenate(arrs)

        aux = {}
        for name in dict.fromkeys(k for p in parts for k in p.aux):
            like = next(p.aux[name] for p in parts if name in p.aux)
            fill = np.nan if np.issubdtype(like.dtype, np.floating) else -1
            aux[name] = np.concatenate([p.aux[name] if name in p.aux else
                                        np.full((p.shape[0],) + like.shape[1:], fill, like.dtype) for p in parts])
        timings = {"wall_s": sum(p.timings.get("wall_s", 0.0) for p in parts),
                   "steps_run": max(p.timings.get("steps_run", 0) for p in parts),
                   "run_steps": sum(p.timings.get("run_steps", 0) for p in parts),
                   "backends": {k: v for p in parts for k, v in p.timings.get("backends", {}).items()}}
        fallbacks = {k: v for p in parts for k, v in p.timings.get("kernel_fallbacks", {}).items()}
        if fallbacks:
            timings["kernel_fallbacks"] = fallbacks
        for note in ("device", "backend_fallback"):     # the same for every part of one page's call
            if any(note in p.timings for p in parts):
                timings[note] = next(p.timings[note] for p in parts if note in p.timings)
        kw = {name: cat(name) for name in ARRAYS if name not in ("record_steps", "starts")}
        return cls(config=config, variants=[v for p in parts for v in p.variants], starts=first.starts,
                   record_steps=first.record_steps, aux=aux, timings=timings, **kw)

    # -- persistence ------------------------------------------------------------------------------
    def meta(self) -> dict:
        return {"config": self.config, "variants": self.variants, "timings": self.timings,
                "aux": sorted(self.aux), "format": "gradscape-result/1"}

    def to_bytes(self) -> bytes:
        """The npz file's bytes (compressed, the metadata embedded): what ``save`` writes and a job chunk holds."""
        arrays = {k: getattr(self, k) for k in ARRAYS if getattr(self, k) is not None}
        arrays.update({f"aux.{k}": v for k, v in self.aux.items()})
        arrays["__meta__"] = np.array(json.dumps(self.meta()))
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    def save(self, path) -> Path:
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(".npz")
        tmp = path.with_name(path.name + ".tmp.npz")
        tmp.write_bytes(self.to_bytes())
        tmp.replace(path)
        path.with_suffix(".json").write_text(json.dumps(self.meta(), indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, path) -> "Result":
        path = Path(path)
        if path.suffix == ".json":
            path = path.with_suffix(".npz")
        with np.load(path, allow_pickle=False) as z:
            return cls._from_npz(z)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Result":
        """A Result from :meth:`to_bytes`' output."""
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            return cls._from_npz(z)

    @classmethod
    def _from_npz(cls, z) -> "Result":
        meta = json.loads(str(z["__meta__"]))
        arrays = {k: z[k] for k in z.files if k != "__meta__"}
        aux = {k[4:]: v for k, v in arrays.items() if k.startswith("aux.")}
        kw = {k: arrays.get(k) for k in ARRAYS}
        kw["status"], kw["outcome"] = metrics.upgrade(kw["status"], kw["outcome"])
        return cls(config=meta["config"], variants=meta["variants"], aux=aux, timings=meta.get("timings", {}), **kw)

    # -- tables -----------------------------------------------------------------------------------
    def to_frame(self):
        """One row per (variant, start): where it ended, how far from the Pareto set, status, timings."""
        import pandas as pd
        M, S = self.shape
        rows = []
        for m in range(M):
            for s in range(S):
                row = {"method": self.variants[m]["method"], "label": self.variants[m]["label"],
                       "start_x": self.starts[s, 0], "start_y": self.starts[s, 1],
                       "final_x": self.final[m, s, 0], "final_y": self.final[m, s, 1]}
                for k in range(self.final_losses.shape[-1]):
                    row[f"final_L{k + 1}"] = self.final_losses[m, s, k]
                row.update(pareto_distance=self.pareto_distance[m, s], steps_to_pareto=int(self.steps_to_pareto[m, s]),
                           optimum=int(self.optimum_index[m, s]) + 1 if self.optimum_index[m, s] >= 0 else 0,
                           steps_to_optimum=int(self.optimum_step[m, s]), status=self.status[m, s],
                           status_step=int(self.status_step[m, s]), outcome=self.outcome[m, s],
                           stationarity=self.stationarity[m, s])
                rows.append(row)
        return pd.DataFrame(rows)

    def summary(self):
        """Per variant: how many runs reached the optimum, the Pareto set (the optimum included), stalled, were
        still moving, blew up or turned NaN (before reaching anything), and how many reached something and then
        turned NaN or blew up (counted as having reached it)."""
        import pandas as pd
        rows = []
        S = self.shape[1]
        for m, v in enumerate(self.variants):
            out = self.outcome[m].astype(str)
            reached = self.optimum_index[m] >= 0
            steps = self.optimum_step[m][reached & (self.optimum_step[m] >= 0)]
            dead = metrics.died(self.status[m])
            finite = np.isfinite(self.pareto_distance[m])
            rows.append({"method": v["method"], "label": v["label"], "starts": S,
                         "optimum": int(reached.sum()),
                         "pareto": int((reached | (out == "pareto")).sum()),
                         "stalled": int((out == "stalled").sum()), "moving": int((out == "moving").sum()),
                         "blowup": int((out == "blowup").sum()), "nan": int((out == "nan").sum()),
                         "died_after": int((dead & ((out == "pareto") | reached)).sum()),
                         "median_steps_to_optimum": float(np.median(steps)) if len(steps) else float("nan"),
                         "median_pareto_distance": float(np.median(self.pareto_distance[m][finite]))
                         if finite.any() else float("nan")})
        return pd.DataFrame(rows)
