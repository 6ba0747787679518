"""Shipped benchmarks and the success table; ``python -m trajectories bench``.

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

CLI::

    python -m trajectories bench CONFIG.json|CONFIG.yaml [--json] [--data DIR]
    python -m trajectories bench --preset paper-one-optimum [--json] [--data DIR]
    python -m trajectories bench --list
    ... [--method-file PATH]     (methods of your own: README, "Bring your own method")
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time

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


# ---------------------------------------------------------------------------------------------
# CLI.

class _Bar:
    """A one-line terminal progress bar on stderr (plain lines every 10 % when stderr is not a terminal)."""

    def __init__(self, title: str, chunks_total: int, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.title, self.chunks_total = title, chunks_total
        self.last_decile = -1

    def __call__(self, frac, rate, eta, chunks_done):
        rate_s = f"{rate / 1e6:.1f} M run-steps/s" if rate else "starting"
        eta_s = _duration(eta) if eta is not None else "?"
        if self.tty:
            width = max(10, min(40, shutil.get_terminal_size((80, 20)).columns - 70))
            fill = int(round(frac * width))
            line = (f"\r{self.title[:20]:20s} [{'#' * fill}{'.' * (width - fill)}] {frac * 100:5.1f}%  "
                    f"{rate_s}  ETA {eta_s}  chunks {chunks_done}/{self.chunks_total} ")
            self.stream.write(line)
            self.stream.flush()
        else:
            d = int(frac * 10)
            if d > self.last_decile:
                self.last_decile = d
                self.stream.write(f"{self.title}: {frac * 100:.0f}%  {rate_s}  ETA {eta_s}\n")
                self.stream.flush()

    def close(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _duration(s) -> str:
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"


def run_headless(config, *, data=None, quiet=False, stream=None):
    """Record ``config`` (dict or JobConfig) as a job in the store and run it in this process with a
    progress bar; returns (store, job_id, status)."""
    from . import jobs, worker
    from .store import Store
    cfg = config if isinstance(config, jobs.JobConfig) else jobs.JobConfig.from_dict(config)
    store = Store(data)
    job_id = jobs.create(cfg, store)
    bar = None if quiet else _Bar(cfg.name or job_id, len(cfg.plan()), stream)
    try:
        # the CLI is an explicit request: it does not wait behind the page's queue
        status = worker.run_job(store, job_id, on_progress=bar, limit=10 ** 6)
    finally:
        if bar:
            bar.close()
    return store, job_id, status


def main(argv=None) -> int:
    """``python -m trajectories bench CONFIG | --preset NAME [--json] [--data DIR] | --list``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        argv = argv[1:]
    ap = argparse.ArgumentParser(prog="python -m trajectories bench",
                                 description="Run a benchmark job (a JSON/YAML config or a shipped preset), "
                                             "store it, and print its success table.")
    ap.add_argument("config", nargs="?", help="a job config file (.json, .yaml)")
    ap.add_argument("--preset", choices=list(PRESETS), help="a shipped benchmark instead of a config file")
    ap.add_argument("--json", action="store_true",
                    help='print [{"method", "reached", "total", "median_steps", "wall_s"}, ...] instead of the table')
    ap.add_argument("--data", default=None, help="the data folder (default: $GRADSCAPE_DATA or ./gradscape-data)")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    ap.add_argument("--list", action="store_true", help="list the shipped presets")
    ap.add_argument("--method-file", action="append", default=[], metavar="PATH",
                    help="a Python file defining METHODS = (Method(...), ...): its methods join the registry after "
                         "a contract check, so a config (or a preset's 'all') can name them (repeatable)")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if args.list:
        for k, v in PRESETS.items():
            print(f"{k:20s} {v['about']}")
        return 0
    if bool(args.config) == bool(args.preset):
        print("bench: give either a config file or --preset NAME (see --list)", file=sys.stderr)
        return 2
    from optimizers import plugins

    from . import jobs
    try:
        for problem in plugins.load_files(args.method_file):
            print(f"bench: warning: {problem}", file=sys.stderr)
        cfg = jobs.JobConfig.from_dict(preset_config(args.preset)) if args.preset else jobs.load_config(args.config)
    except (ValueError, KeyError) as e:
        print(f"bench: {_msg(e)}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        store, job_id, status = run_headless(cfg, data=args.data, quiet=args.quiet)
    except KeyboardInterrupt:
        print("\nbench: interrupted (the job is recorded as failed)", file=sys.stderr)
        return 130
    except (ValueError, OSError) as e:
        print(f"bench: {_msg(e)}", file=sys.stderr)
        return 2
    job = store.get(job_id)
    if status != "finished":
        print(f"bench: job {job_id} {status}: {job['message']}", file=sys.stderr)
        return 1
    result = jobs.load_result(store, job_id)
    if args.json:
        print(json.dumps(json_records(result)))
    else:
        land = result.landscape
        print(f"{cfg.title}  (job {job_id}, {time.perf_counter() - t0:.1f} s, stored in {store.root})")
        print(f"reached optimum: ends within 0.1 of a global minimiser of the summed loss "
              f"({'; '.join('(%.3f, %.3f)' % tuple(p) for p in land.optima())})")
        print(format_table(result))
    return 0


def _msg(e) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
