"""``python -m trajectories bench``: run a benchmark job headless and print its success table.

    python -m trajectories bench CONFIG.json|CONFIG.yaml [--json] [--data DIR] [--cluster ADDRESS]
    python -m trajectories bench --preset paper-one-optimum [--json] [--data DIR] [--cluster ADDRESS]
    python -m trajectories bench --list
    ... [--method-file PATH]     (methods of your own: README, "Bring your own method")

The job is recorded in the store like the page's jobs and runs in this process (this process is the Ray driver
when the job runs on a cluster), with a progress bar on stderr. Bad input: one line naming the field, status 2;
a job that fails or is cancelled: its message, status 1.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace

from figures import vocabulary
from jobs import worker
from jobs.benchmarks import PRESETS, json_records, preset_config, success_table
from jobs.config import CLUSTER_ENV, NO_CLUSTER, JobConfig, load_config, parse_cluster, resolve_cluster
from jobs.results import load_result
from jobs.store import Store
from optimizers import plugins


class _Bar:
    """A one-line terminal progress bar on stderr (plain lines every 10 % when stderr is not a terminal)."""

    def __init__(self, title: str, chunks_total: int, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.title, self.chunks_total = title, chunks_total
        self.last_decile = -1

    def __call__(self, frac, rate, eta, chunks_done):
        rate_s = f"{rate / 1e6:.1f} M run-steps/s" if rate else "starting"
        eta_s = vocabulary.duration(eta) if eta is not None else "?"
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


def run_headless(config, *, data=None, quiet=False, stream=None):
    """Record ``config`` (dict or JobConfig) as a job in the store and run it in this process with a
    progress bar; returns (store, job_id, status)."""
    cfg = config if isinstance(config, JobConfig) else JobConfig.from_dict(config)
    store = Store(data)
    job_id = worker.create(cfg, store)
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
    ap.add_argument("--cluster", default=None, metavar="ADDRESS",
                    help="run the chunks as Ray tasks: a cluster's HOST:PORT (ray://HOST:PORT), or 'local' for a Ray "
                         "instance on this machine; 'none' for this process's threads (default: the config's "
                         f"cluster field, else ${CLUSTER_ENV}, else this process)")
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
    try:
        for problem in plugins.load_files(args.method_file):
            print(f"bench: warning: {problem}", file=sys.stderr)
        cfg = JobConfig.from_dict(preset_config(args.preset)) if args.preset else load_config(args.config)
        if args.cluster is not None:
            cfg = replace(cfg, cluster=parse_cluster(args.cluster) or NO_CLUSTER)
        cfg = resolve_cluster(cfg)
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
    result = load_result(store, job_id)
    if args.json:
        print(json.dumps(json_records(result)))
    else:
        land = result.landscape
        print(f"{cfg.title}  (job {job_id}, {time.perf_counter() - t0:.1f} s, stored in {store.root})")
        print(f"reached the optimum: came within 0.1 of a global minimiser of the summed loss "
              f"({'; '.join('(%.3f, %.3f)' % tuple(p) for p in land.optima())}); reached the Pareto set: "
              f"ended within 0.1 of it")
        print(vocabulary.text_table(success_table(result)))
    return 0


def _msg(e) -> str:
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__


if __name__ == "__main__":
    sys.exit(main())
