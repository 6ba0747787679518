"""The merged result of a benchmark job: one row per variant (method x sweep cell) and one row per run
(variant x seed x start), built from the job's chunk files (the plan: ``jobs/config.py``).

Reads chunk files and writes the merged table; it knows the store only as an object with ``get``, ``path``,
``chunks`` and ``job_dir`` (``jobs/store.py`` comes after it and does not import it).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from trajectories.result import Result

from .config import JobConfig


RUN_COLUMNS = ("variant", "seed", "start", "start_x", "start_y", "final_x", "final_y", "outcome", "status",
               "status_step", "optimum_index", "optimum_step", "steps_to_pareto", "pareto_distance", "stationarity",
               "chunk")


def chunk_rows(res, chunk, variant_ids: dict) -> dict:
    """The per-run rows (column arrays) of one chunk's Result."""
    M, S = res.final.shape[:2]
    vid = np.array([variant_ids[(v["method"], v["label"])] for v in res.variants], dtype=np.int64)
    steps = int(res.config["steps"])
    opt_step = np.asarray(res.optimum_step, dtype=np.int64).copy()
    reached = np.asarray(res.optimum_index) >= 0
    # reached exactly on the last step: the engine tracks the step *before* each update
    opt_step[reached & (opt_step < 0)] = steps
    return {
        "variant": np.repeat(vid, S),
        "seed": np.full(M * S, chunk.seed, dtype=np.int64),
        "start": np.tile(np.arange(chunk.lo, chunk.lo + S, dtype=np.int64), M),
        "start_x": np.tile(res.starts[:, 0], M).astype(float),
        "start_y": np.tile(res.starts[:, 1], M).astype(float),
        "final_x": res.final[..., 0].ravel().astype(float),
        "final_y": res.final[..., 1].ravel().astype(float),
        "outcome": np.asarray(res.outcome).astype(str).ravel(),
        "status": np.asarray(res.status).astype(str).ravel(),
        "status_step": np.asarray(res.status_step, dtype=np.int64).ravel(),
        "optimum_index": np.asarray(res.optimum_index, dtype=np.int64).ravel(),
        "optimum_step": opt_step.ravel(),
        "steps_to_pareto": np.asarray(res.steps_to_pareto, dtype=np.int64).ravel(),
        "pareto_distance": np.asarray(res.pareto_distance, dtype=float).ravel(),
        "stationarity": np.asarray(res.stationarity, dtype=float).ravel(),
        "chunk": np.full(M * S, chunk.idx, dtype=np.int64),
    }


def variants_frame(cfg, variants: list[dict], chunks: list[dict]):
    """One row per variant: id, method, name, label, the swept values, settings, and wall time (its
    share of its method's chunks: the variants of a chunk run together in one batch)."""
    swept = cfg.swept
    per_method = {}
    for v in variants:
        per_method[v["method"]] = per_method.get(v["method"], 0) + 1
    wall = {}
    for c in chunks:
        wall[c["method"]] = wall.get(c["method"], 0.0) + float(c["wall_s"])
    rows = []
    for v in variants:
        row = {"variant": v["id"], "method": v["method"], "name": v["name"], "label": v["label"]}
        for n in swept:
            if n == "lr":
                row[n] = float(v["lr"])
            elif n == "task_weights":
                row[n] = ", ".join(f"{x:g}" for x in v["task_weights"])
            else:
                row[n] = float(v["hparams"][n]) if n in v["hparams"] else float("nan")
        row["lr"] = float(v["lr"])
        row["task_weights"] = ", ".join(f"{x:g}" for x in v["task_weights"])
        row["hparams"] = json.dumps(v["hparams"], sort_keys=True)
        row["wall_s"] = wall.get(v["method"], 0.0) / per_method[v["method"]]
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class JobResult:
    """A job's merged results: ``variants`` (one row per method x sweep cell) and ``runs`` (one row per
    variant x seed x start), plus the chunks they came from. ``complete`` is False for a failed or
    cancelled job (its completed chunks only)."""

    job_id: str
    config: JobConfig
    variants: object        # pandas DataFrame
    runs: object            # pandas DataFrame
    chunks: list
    complete: bool
    notes: list = field(default_factory=list)

    @property
    def swept(self) -> list[str]:
        return self.config.swept

    @property
    def landscape(self):
        return self.config.land

    @property
    def wall_s(self) -> float:
        return float(sum(c["wall_s"] for c in self.chunks))

    @classmethod
    def from_chunks(cls, job_id: str, cfg, chunk_records: list[dict], folder: Path,
                    complete: bool) -> "JobResult":
        """Merge the chunk files of a job (files that cannot be read are skipped with a note)."""
        variants = cfg.variants()
        ids = {(v["method"], v["label"]): v["id"] for v in variants}
        plan = {c.idx: c for c in cfg.plan()}
        parts, used, notes = [], [], []
        for rec in chunk_records:
            chunk = plan.get(rec["idx"])
            try:
                if chunk is None:
                    raise ValueError("not in the job's plan")
                res = Result.load(Path(folder) / rec["file"])
                parts.append(chunk_rows(res, chunk, ids))
                used.append(rec)
            except Exception as e:   # a damaged file must not break the job's view
                notes.append(f"chunk {rec['idx']} ({rec['file']}) skipped: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        if parts:
            runs = pd.DataFrame({k: np.concatenate([p[k] for p in parts]) for k in RUN_COLUMNS})
        else:
            runs = pd.DataFrame({k: np.array([], dtype=float) for k in RUN_COLUMNS})
        runs = runs.sort_values(["variant", "seed", "start"], kind="stable").reset_index(drop=True)
        return cls(job_id, cfg, variants_frame(cfg, variants, used), runs, used,
                   complete and not notes, notes)

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write ``path`` (npz: every column + metadata) atomically."""
        path = Path(path)
        arrays = {}
        for prefix, df in (("runs.", self.runs), ("variants.", self.variants)):
            for col in df.columns:
                arr = df[col].to_numpy()
                if arr.dtype == object:
                    arr = arr.astype(str)
                arrays[prefix + col] = arr
        meta = {"job_id": self.job_id, "config": self.config.to_dict(), "chunks": self.chunks,
                "complete": self.complete, "notes": self.notes, "format": "gradscape-job/1",
                "variant_columns": list(self.variants.columns), "run_columns": list(self.runs.columns)}
        arrays["__meta__"] = np.array(json.dumps(meta))
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path) -> "JobResult":
        with np.load(Path(path), allow_pickle=False) as z:
            meta = json.loads(str(z["__meta__"]))
            runs = pd.DataFrame({c: z["runs." + c] for c in meta["run_columns"]})
        if "status" in runs and "outcome" in runs:        # files written before the outcome vocabulary
            from .metrics import upgrade
            runs["status"], runs["outcome"] = upgrade(runs["status"].to_numpy(), runs["outcome"].to_numpy())
            variants = pd.DataFrame({c: z["variants." + c] for c in meta["variant_columns"]})
        cfg = JobConfig.from_dict(meta["config"])
        return cls(meta["job_id"], cfg, variants, runs, meta["chunks"], meta["complete"], meta.get("notes", []))

    def as_result(self, seed: int | None = None):
        """The runs of one seed as a Result-like object (per-run arrays ``[variant, start]``, the variants as
        dicts) for the paper figures that need no paths: ``figures.paper`` basin maps and sweep heatmaps."""
        seed = self.config.seeds[0] if seed is None else int(seed)
        land = self.landscape
        pts = self.config.start_points()
        runs = self.runs[self.runs["seed"] == seed]
        vids = [int(v) for v in self.variants["variant"]]
        row = {v: i for i, v in enumerate(vids)}
        M, S = len(vids), len(pts)
        r_i = np.array([row[int(v)] for v in runs["variant"]], dtype=np.int64)
        s_i = runs["start"].to_numpy(dtype=np.int64)

        def grid(col, fill, dtype):
            a = np.full((M, S), fill, dtype=dtype)
            a[r_i, s_i] = runs[col].to_numpy().astype(dtype)
            return a

        variants = []
        for _, v in self.variants.iterrows():
            tw = [float(x) for x in str(v["task_weights"]).split(",")] if str(v["task_weights"]).strip() else None
            hp = json.loads(v["hparams"])
            variants.append({"method": v["method"], "label": v["label"], "lr": float(v["lr"]), "task_weights": tw,
                             "hparams": hp,
                             "swept": [n for n in self.swept if n in ("lr", "task_weights") or n in hp]})
        final = np.full((M, S, 2), np.nan)
        final[r_i, s_i, 0] = runs["final_x"].to_numpy(float)
        final[r_i, s_i, 1] = runs["final_y"].to_numpy(float)
        scale = float(self.config.scale)
        final_losses = np.stack([land.losses_np(np.nan_to_num(final[m]), variants[m]["task_weights"], scale)
                                 for m in range(M)])
        final_losses[~np.isfinite(final).all(-1)] = np.nan
        return SimpleNamespace(
            landscape=land, starts=pts, variants=variants, labels=[v["label"] for v in variants],
            methods=[v["method"] for v in variants], config={**self.config.to_dict(), "seed": seed},
            outcome=grid("outcome", "", object).astype(str), status=grid("status", "", object).astype(str),
            status_step=grid("status_step", -1, np.int64) if "status_step" in runs else np.full((M, S), -1),
            optimum_index=grid("optimum_index", -1, np.int64), optimum_step=grid("optimum_step", -1, np.int64),
            pareto_distance=grid("pareto_distance", np.nan, float), stationarity=grid("stationarity", np.nan, float),
            final=final, final_losses=final_losses, positions=None, losses=None)

    def frame(self):
        """``runs`` joined with the variant columns (method, name, label, swept values)."""
        cols = ["variant", "method", "name", "label"] + [c for c in self.swept if c not in ("lr", "task_weights")]
        cols += ["lr", "task_weights"]
        return self.runs.merge(self.variants[cols], on="variant", how="left")


def load_result(store, job_id: str) -> JobResult:
    """The result of a job in ``store``: its merged file when finished, else its completed chunks."""
    job = store.get(job_id)
    if job is None:
        raise KeyError(f"no job {job_id!r}")
    merged = store.path(job_id, "runs.npz")
    if job["status"] == "finished" and merged.exists():
        try:
            return JobResult.load(merged)
        except Exception:   # fall back to the chunks
            pass
    cfg = JobConfig.from_dict(job["config"])
    return JobResult.from_chunks(job_id, cfg, store.chunks(job_id), store.job_dir(job_id),
                                 complete=job["status"] == "finished")
