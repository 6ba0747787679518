"""Shipped benchmarks and the success table (``python -m trajectories bench``: ``cli/bench.py``).

Presets (every registered method; Adam, lr 1e-3, the reference pipeline, as in the SAM-GS paper):

* ``paper-one-optimum``: one_optimum, the paper's 7 starts, 20 000 steps;
* ``paper-two-optima``: two_optima, the paper's 6 starts, 21 000 steps;
* ``grid-one-optimum`` / ``grid-two-optima``: the same question from a 64 x 64 grid of starts over the box.

The success table, per variant (a method, or a method with one setting of a sweep):

* ``reached``: runs that reached a global minimiser of the (weighted) summed loss — came within 0.1 of it (in
  theta) and ended there, as the paper counts them, or reached it and then turned NaN or blew up there
  (``Result.optimum_index >= 0``; trajectories/metrics.py); ``pareto``: runs that reached the Pareto set (a
  global minimiser included);
* ``median_steps`` / ``p90_steps``: over the runs that reached, the first step within 0.1 of the minimiser
  (``Result.optimum_step``, exact); ``median_steps_pareto`` / ``p90_steps_pareto``: over the runs that reached
  the Pareto set, the first recorded step from which they stay within 0.1 of it (resolution: record_every);
* ``final_distance``: the median final distance to the Pareto set; ``stalled`` / ``moving`` / ``blowup`` /
  ``nan``: the runs with that outcome (before reaching anything); ``died_after``: runs that reached the optimum or
  the set and then turned NaN or blew up (counted as reached);
* ``wall_s``: the method's engine time (its chunks); sweep cells of a method share it equally.

"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from trajectories.engine import run
from trajectories.metrics import died

from .config import JobConfig

PRESETS = {
    "paper-one-optimum": {
        "name": "paper-one-optimum", "landscape": "one_optimum", "methods": "all", "starts": "paper",
        "steps": 20000, "record_every": 100, "early_exit": False,
        "about": "one_optimum, the SAM-GS paper's 7 starts, 20 000 steps: which methods reach the optimum from all 7?",
    },
    "paper-two-optima": {
        "name": "paper-two-optima", "landscape": "two_optima", "methods": "all", "starts": "paper",
        "steps": 21000, "record_every": 100, "early_exit": False,
        "about": "two_optima, the SAM-GS paper's 6 starts, 21 000 steps: which methods reach a global optimum?",
    },
    "grid-one-optimum": {
        "name": "grid-one-optimum", "landscape": "one_optimum", "methods": "all", "starts": "grid:64",
        "steps": 20000, "record_every": 500, "early_exit": True,
        "about": "one_optimum from a 64 x 64 grid of starts over the box, 20 000 steps",
    },
    "grid-two-optima": {
        "name": "grid-two-optima", "landscape": "two_optima", "methods": "all", "starts": "grid:64",
        "steps": 21000, "record_every": 500, "early_exit": True,
        "about": "two_optima from a 64 x 64 grid of starts over the box, 21 000 steps",
    },
}


def preset_config(name: str) -> dict:
    """The job config dict of a shipped preset (``about`` removed)."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return {k: v for k, v in PRESETS[name].items() if k != "about"}


# ---------------------------------------------------------------------------------------------
# This machine's speed (for the cost of a job before it runs).

def measured_rates(store, methods=None, recent: int = 200) -> dict:
    """Run-steps per second per method, from the chunks this machine's store has completed (the most recent
    ``recent`` chunks of each method): total run-steps over total wall time."""
    out = {}
    for job in store.list_jobs(statuses=["finished"], limit=50):
        try:
            cfg = JobConfig.from_dict(job["config"])
        except Exception:    # a config an older version wrote: skip it
            continue
        variants = {}
        for v in cfg.variants():
            variants[v["method"]] = variants.get(v["method"], 0) + 1
        for c in store.chunks(job["id"]):
            m = c["method"]
            if (methods and m not in methods) or c["wall_s"] <= 0:
                continue
            acc = out.setdefault(m, [0.0, 0.0, 0])
            if acc[2] >= recent:
                continue
            acc[0] += (c["hi"] - c["lo"]) * variants.get(m, 1) * c["steps_run"]
            acc[1] += c["wall_s"]
            acc[2] += 1
    return {m: a / w for m, (a, w, n) in out.items() if w > 0 and a >= 1e6}


def calibrate(cfg, method: str, runs: int = 1024, steps: int = 2000) -> float:
    """Run-steps per second of ``method`` in ``cfg``'s setting (landscape, pipeline, dtype, optimiser), measured
    now on a small batch after one warm-up call (which builds or loads its kernel)."""
    pts = cfg.start_points()
    pts = pts[np.arange(runs) % len(pts)]
    base = cfg.engine_config(method, cfg.seeds[0], pts[:1], steps=1)
    run(base)
    ecfg = cfg.engine_config(method, cfg.seeds[0], pts, steps=steps)
    ecfg = replace(ecfg, early_exit=False, record_every=steps)
    t = time.perf_counter()
    res = run(ecfg)
    wall = time.perf_counter() - t
    return res.timings["run_steps"] / max(wall, 1e-9)


# ---------------------------------------------------------------------------------------------
# Tables.

def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if len(x) else float("nan")


def reached_mask(runs) -> np.ndarray:
    """Runs (rows of a runs table) that reached a global minimiser (their outcome is "optimum k")."""
    return np.char.startswith(runs["outcome"].to_numpy().astype(str), "optimum")


def success_table(result, by: str = "variant"):
    """The success table of a JobResult (pandas), one row per variant (``by="variant"``) or per method."""
    import pandas as pd
    runs = result.runs
    var = result.variants.set_index("variant")
    swept = list(result.swept)
    groups = (runs.groupby("variant", sort=True) if by == "variant" else
              runs.assign(method=var.loc[runs["variant"], "method"].to_numpy()).groupby("method", sort=False))
    rows = []
    for key, g in groups:
        outcome = g["outcome"].to_numpy().astype(str)
        reached = reached_mask(g)
        pareto = (outcome == "pareto") | np.char.startswith(outcome, "optimum")
        steps = g["optimum_step"].to_numpy()[reached].astype(float)
        psteps = g["steps_to_pareto"].to_numpy().astype(float)
        psteps = psteps[pareto & (psteps >= 0)]
        dist = g["pareto_distance"].to_numpy().astype(float)
        dist = dist[np.isfinite(dist)]
        n = len(g)
        if by == "variant":
            v = var.loc[key]
            row = {"method": v["method"], "name": v["name"], "label": v["label"]}
            row.update({s: v[s] for s in swept})
            wall = float(v["wall_s"])
        else:
            sub = var[var["method"] == key]
            row = {"method": key, "name": sub["name"].iloc[0], "label": sub["name"].iloc[0]}
            wall = float(sub["wall_s"].sum())
        row.update({
            "runs": n,
            "reached": int(reached.sum()), "reached_share": reached.sum() / n if n else float("nan"),
            "pareto": int(pareto.sum()), "pareto_share": pareto.sum() / n if n else float("nan"),
            "median_steps": float(np.median(steps)) if len(steps) else float("nan"),
            "p90_steps": _pct(steps, 90),
            "median_steps_pareto": float(np.median(psteps)) if len(psteps) else float("nan"),
            "p90_steps_pareto": _pct(psteps, 90),
            "final_distance": float(np.median(dist)) if len(dist) else float("nan"),
            "stalled": int((outcome == "stalled").sum()), "moving": int((outcome == "moving").sum()),
            "blowup": int((outcome == "blowup").sum()), "nan": int((outcome == "nan").sum()),
            "died_after": int((pareto & died(g["status"].to_numpy())).sum()),
            "wall_s": wall,
        })
        rows.append(row)
    return pd.DataFrame(rows)


def json_records(result) -> list[dict]:
    """The ``--json`` output: one record per variant, {"method", "reached", "total", "median_steps", "wall_s"}
    (plus "setting" {name: value} for the cells of a sweep)."""
    table = success_table(result)
    out = []
    for _, r in table.iterrows():
        rec = {"method": r["method"], "reached": int(r["reached"]), "total": int(r["runs"]),
               "median_steps": None if math.isnan(r["median_steps"]) else _num(r["median_steps"]),
               "wall_s": round(float(r["wall_s"]), 4)}
        if result.swept:
            rec["setting"] = {s: _num(r[s]) if isinstance(r[s], (int, float, np.number)) else r[s]
                              for s in result.swept}
        out.append(rec)
    return out


def _num(x):
    x = float(x)
    return int(x) if x.is_integer() else x


def format_table(result) -> str:
    """The success table as plain aligned text (the CLI shows it in words: figures/vocabulary.text_table)."""
    return success_table(result).to_string(index=False)


def compare_table(table_a, table_b, name_a: str, name_b: str, values=("reached_share", "pareto_share",
                                                                        "median_steps", "wall_s")):
    """The two success tables joined on the variant label, the chosen columns suffixed by job name."""
    a = table_a.set_index("label")[list(values)].add_suffix(f" · {name_a}")
    b = table_b.set_index("label")[list(values)].add_suffix(f" · {name_b}")
    return a.join(b, how="outer").reset_index()


