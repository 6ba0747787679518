"""Shipped benchmarks and the success table (``python -m trajectories bench``: ``cli/bench.py``).

Presets (every registered method; Adam, lr 1e-3, the reference pipeline, as in the SAM-GS paper):

* ``paper-one-optimum``: one_optimum, the paper's 7 starts, 20 000 steps;
* ``paper-two-optima``: two_optima, the paper's 6 starts, 21 000 steps;
* ``grid-one-optimum`` / ``grid-two-optima``: the same question from a 64 x 64 grid of starts over the box.

The success table, per variant (a method, or a method with one setting of a sweep):

* ``reached``: runs that end within 0.1 (in theta) of a global minimiser of the (weighted) summed loss
  (``Result.optimum_index >= 0``), as the paper counts them, except runs that diverged (the engine freezes
  a diverged run at its last finite point, which may lie near the optimum it blew up at: such a run did
  not end there); ``pareto``: runs that end within 0.1 of the Pareto set (a global minimiser included);
* ``median_steps`` / ``p90_steps``: over the runs that reached, the first step within 0.1 of the minimiser
  (``Result.optimum_step``, exact); ``median_steps_pareto`` / ``p90_steps_pareto``: over the runs that reached
  the Pareto set, the first recorded step from which they stay within 0.1 of it (resolution: record_every);
* ``final_distance``: the median final distance to the Pareto set; ``stalled`` / ``moving`` / ``diverged``;
* ``wall_s``: the method's engine time (its chunks); sweep cells of a method share it equally.

"""
from __future__ import annotations

import math

import numpy as np

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
# Tables.

def _pct(x: np.ndarray, q: float) -> float:
    return float(np.percentile(x, q)) if len(x) else float("nan")


def reached_mask(runs) -> np.ndarray:
    """Runs (rows of a runs table) that ended within 0.1 of a global minimiser and did not diverge."""
    return (runs["optimum_index"].to_numpy() >= 0) & (runs["outcome"].to_numpy().astype(str) != "diverged")


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
            "diverged": int((outcome == "diverged").sum()),
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
    """The success table as aligned text (the CLI's output)."""
    t = success_table(result)
    n = t["runs"]
    show = {"method": t["label"],
            "reached optimum": [f"{a}/{b}" for a, b in zip(t["reached"], n)],
            "reached Pareto": [f"{a}/{b}" for a, b in zip(t["pareto"], n)],
            "median steps": _ints(t["median_steps"]), "p90 steps": _ints(t["p90_steps"]),
            "final Pareto dist": [f"{x:.3g}" for x in t["final_distance"]],
            "stalled": t["stalled"], "diverged": t["diverged"],
            "wall s": [f"{x:.2f}" for x in t["wall_s"]]}
    import pandas as pd
    return pd.DataFrame(show).to_string(index=False)


def compare_table(table_a, table_b, name_a: str, name_b: str, values=("reached_share", "pareto_share",
                                                                        "median_steps", "wall_s")):
    """The two success tables joined on the variant label, the chosen columns suffixed by job name."""
    a = table_a.set_index("label")[list(values)].add_suffix(f" · {name_a}")
    b = table_b.set_index("label")[list(values)].add_suffix(f" · {name_b}")
    return a.join(b, how="outer").reset_index()


def _ints(col):
    return ["-" if (isinstance(x, float) and math.isnan(x)) else f"{x:.0f}" for x in col]
