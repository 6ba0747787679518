"""The one vocabulary of run outcomes: the words, order and colours every page, table, legend, CLI and export uses.

The engine classifies each run (``trajectories/metrics.py``) and stores codes; this module says them to people.
Rules:

* **What a run reached first** is its outcome, one of six: *reached the optimum* (within ``TARGET_EPS`` of a global
  minimiser of the weighted sum; with several optima, which one), *reached the Pareto set* (within
  ``PARETO_EPS``, not at an optimum), *stalled*, *still moving*, *blew up*, *turned NaN*. A run that reached the
  optimum (or the set) and then turned NaN or blew up counts as having reached it, and is marked: "then turned NaN
  at the optimum".
* **Success counts** are "reached the optimum" and "reached the Pareto set" (the optimum included), always under
  those names; never "success" or "converged" alone.
* **Tables** have headers in words and no sentinels: a missing step or value is an empty cell ("—" in text).
* **Colours** are colour-blind-safe (Okabe & Ito), one per outcome; optima are blues, the Pareto set green.

Nothing here imports Plotly, matplotlib, Streamlit or the engine: thresholds come in as codes and numbers.
"""
from __future__ import annotations

import math

import numpy as np

PARETO_EPS = 0.1      # the engine's thresholds, restated for the prose (tests/test_vocabulary.py checks they agree)
TARGET_EPS = 0.1

OUTCOME_ORDER = ("optimum 1", "optimum 2", "optimum 3", "pareto", "stalled", "moving", "blowup", "nan")
OUTCOME_COLOURS = {
    "optimum 1": "#0072B2", "optimum 2": "#56B4E9", "optimum 3": "#332288", "pareto": "#009E73",
    "stalled": "#E69F00", "moving": "#F0E442", "blowup": "#D55E00", "nan": "#999999",
}
MISSING = "—"

_WORDS = {"pareto": "reached the Pareto set", "stalled": "stalled", "moving": "still moving", "blowup": "blew up",
          "nan": "turned NaN"}
_LEGEND = {"pareto": "reached the Pareto set (not an optimum)", "stalled": "stalled off the Pareto set",
           "moving": "still moving at the end", "blowup": "blew up (left |θ| < 10⁶)",
           "nan": "turned NaN before reaching the set"}
_ENDINGS = {"nan": "turned NaN", "blowup": "blew up"}
_PLACES = {"optimum": "at the optimum", "pareto": "on the Pareto set"}

DEFINITIONS = {
    "optimum": f"came within {TARGET_EPS:g} (in θ) of a global minimiser of the weighted sum of the losses",
    "pareto": f"ended within {PARETO_EPS:g} of the Pareto set (the optimum included in the counts)",
    "stalled": "stopped moving (its last 10 % of steps within 0.05 of where it ended) away from the Pareto set",
    "moving": "was still moving when the steps ran out, away from the Pareto set",
    "blowup": "θ left the box |θ| < 10⁶ or became infinite (the path stops at its last finite point)",
    "nan": "θ became NaN (not a number; the path stops at its last finite point)",
}


def base(code: str) -> str:
    """"optimum 2" -> "optimum"; other codes unchanged."""
    return "optimum" if str(code).startswith("optimum") else str(code)


def outcome_words(code: str, n_optima: int = 1) -> str:
    """An outcome code in words: "reached the optimum", "reached optimum 2", "stalled", ..."""
    code = str(code)
    if code.startswith("optimum"):
        return "reached the optimum" if n_optima <= 1 else f"reached {code}"
    return _WORDS.get(code, code)


def outcome_label(code: str, optima) -> str:
    """A legend entry for an outcome; optima are named with their coordinates."""
    code = str(code)
    if code.startswith("optimum"):
        i = int(code.split()[1]) - 1
        if len(optima) > i:
            x, y = (round(float(v), 2) + 0.0 for v in optima[i])     # + 0.0: no "-0.00"
            where = f"({x:.2f}, {y:.2f})"
            return f"reached the optimum {where}" if len(optima) == 1 else f"reached optimum {i + 1} {where}"
        return outcome_words(code, 2)
    return _LEGEND.get(code, code)


def ending(status: str) -> tuple[str, str]:
    """("nan" | "blowup" | "", place) from a status code such as "nan:optimum"."""
    kind, _, place = str(status).partition(":")
    return (kind, place) if kind in _ENDINGS else ("", "")


def died_after_reaching(outcome, status) -> np.ndarray:
    """Runs that reached the optimum or the Pareto set and then turned NaN or blew up (marked on maps)."""
    o = np.asarray(outcome).astype(str)
    s = np.asarray(status).astype(str)
    dead = np.char.startswith(s, "nan") | np.char.startswith(s, "blowup")
    return dead & (np.char.startswith(o, "optimum") | (o == "pareto"))


def ending_words(status: str, step=None) -> str:
    """"turned NaN at the optimum (step 14 310)", "blew up (step 80)", or "" for a run that ended finite."""
    kind, place = ending(status)
    if not kind:
        return ""
    text = _ENDINGS[kind] + (f" {_PLACES[place]}" if place in _PLACES else "")
    return text + (f" (step {fmt_int(step)})" if _present(step) else "")


def run_words(outcome: str, status: str, *, optimum_step=None, status_step=None, n_optima: int = 1) -> str:
    """One run in a sentence: "reached the optimum at step 12 429, then turned NaN at the optimum (step 14 310)"."""
    text = outcome_words(outcome, n_optima)
    if str(outcome).startswith("optimum") and _present(optimum_step):
        text += f" at step {fmt_int(optimum_step)}"
    kind, _ = ending(status)
    if kind and base(outcome) in ("optimum", "pareto"):
        return f"{text}, then {ending_words(status, status_step)}"
    if kind:
        return text + (f" at step {fmt_int(status_step)}" if _present(status_step) else "") + \
            (f" {_PLACES[ending(status)[1]]}" if ending(status)[1] in _PLACES else "")
    if status == "settled" and base(outcome) == "stalled" and _present(status_step):
        return f"{text} (by step {fmt_int(status_step)})"
    return text


# -- numbers ------------------------------------------------------------------------------------------------
def _present(v) -> bool:
    if v is None:
        return False
    try:
        x = float(v)
    except (TypeError, ValueError):
        return False
    return math.isfinite(x) and x >= 0


def fmt_int(v) -> str:
    """A step count with thin grouping (12 429); "—" for a missing value (None, NaN, or the engine's -1)."""
    if not _present(v):
        return MISSING
    return f"{int(round(float(v))):,}".replace(",", " ")


def step_or_none(v):
    """A step for a table cell: an int, or None (an empty cell) for the engine's -1 / NaN."""
    return int(round(float(v))) if _present(v) else None


def big(n: float) -> str:
    """A large count in words: 512 000, 10.2 million, 5.2 trillion."""
    n = float(n)
    for word, k in (("trillion", 1e12), ("billion", 1e9), ("million", 1e6)):
        if n >= k:
            return f"{n / k:.3g} {word}"
    return fmt_int(n)


def count(n: int, total: int) -> str:
    return f"{int(n)}/{int(total)}"


def duration(s) -> str:
    """"42 s", "3 min 05 s", "2 h 10 min"; "–" for None or a value that is not a finite number."""
    if s is None or not math.isfinite(float(s)):
        return MISSING
    s = round(max(0.0, float(s)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def plural(n: int, one: str, many: str | None = None) -> str:
    """"1 method", "3 methods"."""
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


# -- tables ---------------------------------------------------------------------------------------------------
HEADERS = {
    # per method (Explore's summary, Result.summary)
    "label": "Method", "starts": "Starts", "runs": "Runs",
    "optimum": "Reached the optimum", "pareto": "Reached the Pareto set", "stalled": "Stalled",
    "moving": "Still moving", "blowup": "Blew up", "nan": "Turned NaN",
    "died_after": "Reached, then turned NaN or blew up",
    "median_steps_to_optimum": "Median steps to the optimum",
    "median_pareto_distance": "Median final distance to the Pareto set",
    # per method, jobs (jobs.benchmarks.success_table)
    "reached": "Reached the optimum", "reached_share": "Reached the optimum (share)",
    "pareto_share": "Reached the Pareto set (share)", "median_steps": "Median steps to the optimum",
    "p90_steps": "90th-percentile steps to the optimum", "median_steps_pareto": "Median steps to the Pareto set",
    "p90_steps_pareto": "90th-percentile steps to the Pareto set",
    "final_distance": "Median final distance to the Pareto set", "wall_s": "Engine time (s)",
    # per run
    "start": "Start", "start_x": "Start x", "start_y": "Start y", "final_x": "End x", "final_y": "End y",
    "outcome": "Outcome", "status": "How it ended", "optimum_step": "Step it reached the optimum",
    "steps_to_optimum": "Step it reached the optimum", "steps_to_pareto": "Step it reached the Pareto set",
    "status_step": "Step it ended so", "pareto_distance": "Distance to the Pareto set",
    "stationarity": "Pareto-stationarity (min-norm)", "seed": "Seed", "lr": "Learning rate",
    "task_weights": "Task weights",
}
STEP_COLUMNS = ("optimum_step", "steps_to_optimum", "steps_to_pareto", "status_step", "median_steps_to_optimum",
                "median_steps", "p90_steps", "median_steps_pareto", "p90_steps_pareto")


def header(column: str) -> str:
    """A column's header in words (a swept hyperparameter keeps its name, e.g. ``gamma``)."""
    return HEADERS.get(column, column)


def status_words(status: str) -> str:
    """How a run ended: "stopped moving", "still moving", "turned NaN at the optimum", "blew up"."""
    kind, _ = ending(status)
    if kind:
        return ending_words(status)
    return {"settled": "stopped moving", "moving": "still moving"}.get(str(status), str(status))


def summary_table(summary, starts: int | None = None):
    """Explore's per-method table (from ``Result.summary()``): counts as "k/S", steps without sentinels."""
    import pandas as pd
    S = int(starts if starts is not None else summary["starts"].iloc[0]) if len(summary) else 0
    rows = []
    for _, r in summary.iterrows():
        row = {header("label"): r["label"]}
        for c in ("optimum", "pareto", "stalled", "moving", "blowup", "nan"):
            row[header(c)] = count(r[c], S)
        row[header("died_after")] = int(r["died_after"])
        row[header("median_steps_to_optimum")] = step_or_none(r["median_steps_to_optimum"])
        row[header("median_pareto_distance")] = None if not np.isfinite(r["median_pareto_distance"]) else \
            float(r["median_pareto_distance"])
        rows.append(row)
    return pd.DataFrame(rows)


def runs_table(frame, n_tasks: int, n_optima: int = 1):
    """Explore's per-run table (from ``Result.to_frame()``): the outcome in words, how it ended, no sentinels."""
    import pandas as pd
    rows = []
    for _, r in frame.iterrows():
        row = {header("label"): r["label"], "Start": f"({r['start_x']:.3g}, {r['start_y']:.3g})",
               header("outcome"): outcome_words(r["outcome"], n_optima),
               header("status"): status_words(r["status"]),
               header("steps_to_optimum"): step_or_none(r["steps_to_optimum"]),
               header("steps_to_pareto"): step_or_none(r["steps_to_pareto"]),
               header("status_step"): step_or_none(r["status_step"]) if str(r["status"]) != "moving" else None,
               header("pareto_distance"): float(r["pareto_distance"]) if np.isfinite(r["pareto_distance"]) else None}
        for k in range(n_tasks):
            row[f"Final L{k + 1}"] = float(r[f"final_L{k + 1}"]) if np.isfinite(r[f"final_L{k + 1}"]) else None
        rows.append(row)
    return pd.DataFrame(rows)


def job_runs_table(frame, n_optima: int = 1):
    """The Benchmark page's table of runs (from ``JobResult.frame()``): words, headers, no sentinels."""
    out = frame.copy()
    out["outcome"] = [outcome_words(o, n_optima) for o in out["outcome"].astype(str)]
    out["status"] = [status_words(s) for s in out["status"].astype(str)]
    for c in STEP_COLUMNS:
        if c in out:
            out[c] = out[c].map(step_or_none).astype("Int64")
    drop = [c for c in ("variant", "chunk", "optimum_index", "method", "name") if c in out]
    out = out.drop(columns=drop)
    front = [c for c in ("label", "seed", "start", "start_x", "start_y") if c in out]
    out = out[front + [c for c in out.columns if c not in front]]
    return out.rename(columns={c: header(c) for c in out.columns})


def success_table(table):
    """A job's success table (``jobs.benchmarks.success_table``) with headers in words, steps without
    sentinels; the machine columns method/name are dropped (the label names the variant)."""
    out = table.drop(columns=[c for c in ("method", "name") if c in table]).copy()
    for c in STEP_COLUMNS:
        if c in out:
            out[c] = out[c].map(step_or_none).astype("Int64")
    return out.rename(columns={c: header(c) for c in out.columns})


def text_table(table) -> str:
    """A job's success table as aligned text (the CLI): counts as k/n, steps with "—" where none."""
    import pandas as pd
    n = table["runs"]
    show = {header("label"): table["label"],
            "reached the optimum": [count(a, b) for a, b in zip(table["reached"], n)],
            "reached the Pareto set": [count(a, b) for a, b in zip(table["pareto"], n)],
            "median steps": [fmt_int(x) for x in table["median_steps"]],
            "p90 steps": [fmt_int(x) for x in table["p90_steps"]],
            "final Pareto dist": [MISSING if not np.isfinite(x) else f"{x:.3g}" for x in table["final_distance"]],
            "stalled": table["stalled"], "still moving": table["moving"],
            "blew up": table["blowup"], "turned NaN": table["nan"],
            "then NaN/blew up": table["died_after"],
            "wall s": [f"{x:.2f}" for x in table["wall_s"]]}
    return pd.DataFrame(show).to_string(index=False)


# -- the diagnostics, explained where they are drawn ------------------------------------------------------------
DIAGNOSTICS = {
    "cos": ("cosine conflict", "cos(g₁, g₂), the cosine of the angle between the two task gradients. Below 0 the "
            "tasks pull apart (angle conflict): their sum is shorter than it would be if they agreed, so progress "
            "slows; −1 means exactly opposite."),
    "gms": ("GMS", "gradient magnitude similarity, 2|g₁||g₂| / (|g₁|² + |g₂|²): 1 when the two gradients are "
            "equally long, towards 0 when one dominates (magnitude conflict) and the sum follows the long one. "
            "SAM-GS equalises the gradients whenever GMS falls below its threshold γ."),
    "curv": ("curvature measure", "(1 − cos²) |g₁ − g₂|² / |g₁ + g₂|², the curvature bounding measure of PCGrad's "
             "paper (Yu et al. 2020): 0 when the gradients are parallel, large when they conflict and their sum is "
             "short — where, with conflict and unequal sizes (the paper's \"tragic triad\"), plain descent "
             "struggles. Drawn on a log scale."),
    "weights": ("task weights", "the weight each task's gradient gets in the step the method took (for methods that "
                "do not weight explicitly, the least-norm weights that reproduce its direction)."),
    "branch": ("SAM-GS branch", "1 where SAM-GS equalised the gradients (GMS below γ: each scaled to unit length, "
               "summed, rescaled to their mean length), 0 where it took its momentum step (β₁, tempered by β₂ when "
               "the sizes differ)."),
}


def legend_note() -> str:
    """The definitions in one paragraph (captions under tables and maps)."""
    return (f"**Reached the optimum**: came within {TARGET_EPS:g} of a global minimiser of the weighted sum. "
            f"**Reached the Pareto set**: ended within {PARETO_EPS:g} of it (the optimum included). **Stalled**: "
            f"stopped moving elsewhere. **Still moving**: had not stopped when the steps ran out. **Blew up** / "
            f"**turned NaN**: θ left |θ| < 10⁶ or became NaN; a run that reached the optimum first counts as "
            f"having reached it (marked ×).")
