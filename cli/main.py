"""Gradscape's command line: ``python -m trajectories run|bench|figure ...`` (``python -m cli`` is the same).

A face like the pages: it parses flags, calls the engine (``run``), the job system (``bench``: ``cli/bench.py``)
or ``figures/`` (``figure``), and turns bad input into a one-line message and exit status 2 (never a traceback).
It may import every package except ``views``; nothing imports it but the two entry points.
"""
from __future__ import annotations

import argparse
import json
import sys

import landscapes
import trajectories
from figures import cli as figure_cli
from figures import vocabulary
from jobs import jobspeed, speed
from landscapes.custom import landscape_from_cli
from optimizers import plugins
from trajectories import specs

from . import bench


def _run_parser(sub):
    p = sub.add_parser("run", help="simulate methods from start points and write a Result (.npz + .json)",
                       description="Simulate every method from every start in lock-step and save the Result.")
    land = p.add_mutually_exclusive_group()
    land.add_argument("--landscape", default="one_optimum",
                      help="a built-in landscape (one_optimum, two_optima, ...; default one_optimum)")
    land.add_argument("--landscape-file", metavar="FILE",
                      help="a custom landscape: JSON or YAML {name, tasks: [expr, ...], bounds: [[x0, x1], [y0, y1]]}")
    p.add_argument("--methods", default="samgs,ls", help="comma-separated method keys (default samgs,ls)")
    p.add_argument("--method-file", action="append", default=[], metavar="PATH",
                   help="a Python file defining METHODS = (Method(...), ...): its methods join the registry after a "
                        "contract check (repeatable; README, 'Bring your own method')")
    p.add_argument("--starts", default="paper",
                   help="a preset name (paper, nashmtl, cagrad), points 'x,y;x,y', grid:N or random:N[:SEED]")
    p.add_argument("--steps", type=int, default=None, help="optimisation steps (default: the landscape's)")
    p.add_argument("--optimizer", default="adam", choices=["adam", "sgd"], help="outer optimiser (default adam)")
    p.add_argument("--lr", default="1e-3", help="learning rate, or a comma-separated list to sweep")
    p.add_argument("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--pipeline", default="reference", choices=["reference", "clean"],
                   help="reference: the published toy code's post-processing; clean: each paper's own")
    p.add_argument("--hp", action="append", default=[], metavar="METHOD.NAME=V[,V...]",
                   help="a hyperparameter, e.g. samgs.gamma=0.2 or samgs.gamma=0.05,0.1,0.2 (a sweep); repeatable")
    p.add_argument("--task-weights", default=None, help="task weights, e.g. 0.3,0.7")
    p.add_argument("--scale", type=float, default=1.0, help="the task-1 scale (default 1)")
    p.add_argument("--record-every", type=int, default=10, help="keep every k-th step (default 10)")
    p.add_argument("--seed", type=int, default=0, help="RNG seed for the random methods (default 0)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--device", default="auto",
                   help="auto (CUDA when available, else the CPU; default), cpu, cuda or cuda:N")
    p.add_argument("--backend", default="auto", choices=["auto", "c", "triton", "compile", "torch"],
                   help="auto: the fused kernel of the device (triton on CUDA, c on the CPU); "
                        "compile: torch.compile; torch: eager")
    p.add_argument("--out", default="result.npz", help="output file (default result.npz; a .json sidecar too)")
    p.add_argument("--quiet", action="store_true", help="no progress or summary")


def cmd_run(a) -> int:
    for problem in plugins.load_files(a.method_file):
        print(f"warning: {problem}", file=sys.stderr)
    if a.landscape_file:
        land = landscape_from_cli(a.landscape_file)
    else:
        land = landscapes.get(a.landscape)
    lrs = list(specs.numbers(a.lr, "--lr"))
    weights = list(specs.numbers(a.task_weights, "--task-weights")) if a.task_weights else None
    steps = a.steps or land.default_steps

    def progress(done, total):
        if not a.quiet:
            print(f"\r{100 * done / total:5.1f}%", end="", file=sys.stderr, flush=True)

    res = trajectories.simulate(land, a.methods, a.starts, steps, hparams=specs.hp_assignments(a.hp),
                                optimizer=a.optimizer,
                                lr=lrs if len(lrs) > 1 else lrs[0], momentum=a.momentum, pipeline=a.pipeline,
                                record_every=a.record_every, seed=a.seed, device=a.device, dtype=a.dtype,
                                task_weights=weights, scale=a.scale, backend=a.backend, progress=progress)
    path = res.save(a.out)
    if not a.quiet:
        print(file=sys.stderr)
        print(vocabulary.summary_table(res.summary()).to_string(index=False, na_rep=vocabulary.MISSING))
        backends = ", ".join(sorted(set(res.timings["backends"].values())))
        print(f"wrote {path} and {path.with_suffix('.json')} ({res.timings['wall_s']:.2f} s on "
              f"{res.timings['device']}, {backends})")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "bench":
        rest = argv[1:]
        if "--speed" in rest:
            return speed.main([x for x in rest if x != "--speed"])
        if "--jobs-speed" in rest:
            return jobspeed.main([x for x in rest if x != "--jobs-speed"])
        return bench.main(rest)
    if argv and argv[0] == "figure":
        return figure_cli.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m trajectories",
                                     description="Gradscape: run MTL gradient-aggregation methods on analytic landscapes.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    _run_parser(sub)
    sub.add_parser("bench", help="benchmarks: --preset NAME [--json], a job CONFIG file [--cluster ADDRESS], --speed or "
                        "--jobs-speed")
    sub.add_parser("figure", help="figures for papers and slides: --preset NAME --out FILE, --from-config ...")
    a = parser.parse_args(argv)
    if a.cmd == "run":
        return cmd_run(a)
    return 2


def entry() -> int:
    try:
        return main()
    except (ValueError, OSError, KeyError) as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(entry())
