"""``python -m trajectories figure ...``: publication figures and animations, headless.

    figure --preset samgs-fig2 --out fig2.pdf [--size double] [--dpi 300] [--format pdf]
    figure --from-config fig2.pdf.json --out fig2.svg        (a spec JSON, or a PDF/PNG/SVG/GIF/PGF carrying one)
    figure --result run.npz --kind basin --out basin.png
    figure --preset samgs-fig4 --animate --frames 120 --duration 8 --out fig4.mp4
    figure --list-presets

Every file gets a sidecar ``<file>.json`` (and, where the format allows, the same spec in its metadata) from
which ``--from-config`` rebuilds it. Refused input exits with status 2 and one line on stderr.
"""
from __future__ import annotations

import argparse
import sys
import time

from . import presets, save
from .paper import KINDS, SIZES


class _Refused(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):           # one line, no usage dump
        raise _Refused(message)


def _csv(text):
    return [x.strip() for x in text.split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m trajectories figure", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--preset", help=f"a named figure: {', '.join(presets.names())}")
    src.add_argument("--from-config", metavar="FILE", help="rebuild from a figure spec (.json) or a file carrying one")
    src.add_argument("--result", metavar="FILE.npz", help="draw a saved Result (trajectories Result.save)")
    src.add_argument("--list-presets", action="store_true", help="list the presets and exit")
    p.add_argument("--out", metavar="FILE", help="output file; its suffix picks the format unless --format is given")
    p.add_argument("--kind", choices=list(KINDS), help="which figure (default: small-multiples, or the preset's)")
    p.add_argument("--size", choices=list(SIZES), help="single (3.3 in), double (6.9 in), slide (16:9), poster")
    p.add_argument("--dpi", type=int, help="raster resolution (PNG, animations; default 300, animations 100)")
    p.add_argument("--format", choices=list(save.FORMATS), help="pdf, svg, png, pgf (needs LaTeX), gif, mp4")
    p.add_argument("--title", help="a figure title (suptitle)")
    g = p.add_argument_group("simulation (presets)")
    g.add_argument("--steps", type=int, help="override the preset's number of steps")
    g.add_argument("--methods", type=_csv, help="override the preset's methods (comma-separated keys)")
    g = p.add_argument_group("figure options")
    g.add_argument("--rows", type=_csv, help="small-multiples rows: contour,loss")
    g.add_argument("--columns", type=int, help="panels per row")
    g.add_argument("--only", type=_csv, metavar="METHODS", help="draw only these methods (keys or labels)")
    g.add_argument("--metric", help="heatmap metric: optimum, converged, pareto_distance, steps_to_optimum, ...")
    g.add_argument("--fields", type=_csv, help="diagnostics: loss,pareto_distance,cos,gms,curv,dnorm,weight1,branch")
    g.add_argument("--start", type=int, help="diagnostics: one start's curves (its index) instead of the median")
    g.add_argument("--contour", help="contour of: sum (default), task1, task2")
    g.add_argument("--log-contours", action="store_true", help="contours of log(loss - min + 1)")
    g.add_argument("--max-points", type=int, help="points kept per path for drawing (default 400)")
    g = p.add_argument_group("animation (GIF, MP4)")
    g.add_argument("--animate", action="store_true", help="write an animation of the paths advancing")
    g.add_argument("--frames", type=int, help="number of frames (default 60)")
    g.add_argument("--duration", type=float, help="length in seconds (default 6)")
    return p


_OPTION_ARGS = {"rows": "rows", "columns": "columns", "only": "methods", "metric": "metric", "fields": "fields",
                "start": "start", "title": "title"}


def _options(args, kind) -> dict:
    import inspect

    from . import paper
    accepted = {p.name for p in inspect.signature(paper.KINDS[kind]).parameters.values() if p.kind == p.KEYWORD_ONLY}
    out = {}
    for arg, opt in _OPTION_ARGS.items():
        v = getattr(args, arg)
        if v is None:
            continue
        if opt not in accepted:
            raise ValueError(f"--{arg.replace('_', '-')}: not an option of the {kind} figure")
        out[opt] = v
    return out


def _style(args, base: dict) -> dict:
    st = dict(base or {})
    if args.contour is not None:
        st["contour"] = args.contour
    if args.log_contours:
        st["log_contours"] = True
    if args.max_points is not None:
        if args.max_points < 2:
            raise ValueError(f"--max-points: must be at least 2, got {args.max_points}")
        st["max_points"] = args.max_points
    return st


def _spec(args):
    """The FigureSpec the arguments ask for, and the Result to draw when one was given (else None)."""
    from .spec import FigureSpec
    result = None
    if (args.steps is not None or args.methods is not None) and not args.preset:
        raise ValueError("--steps/--methods: only with --preset (a Result or a spec fixes its own simulation)")
    if args.preset:
        spec = FigureSpec.from_preset(args.preset, steps=args.steps, methods=args.methods)
    elif args.from_config:
        spec = FigureSpec.from_dict(save.read_spec(args.from_config))
    else:
        from trajectories import Result
        try:
            result = Result.load(args.result)
        except FileNotFoundError:
            raise ValueError(f"result: {args.result} does not exist") from None
        except Exception as e:      # a damaged or foreign file: say so in one line
            raise ValueError(f"result: cannot read {args.result} as a Gradscape Result ({type(e).__name__}: {e})") \
                from None
        spec = FigureSpec.from_result(result)
    if args.kind is not None and args.kind != spec.kind:
        spec = spec.updated(kind=args.kind)
        spec.options = {}                           # the preset's options belong to its own kind
    fmt = save.format_of(args.out, args.format)
    animate = args.animate or fmt in save.ANIMATION_FORMATS or spec.animation is not None
    if args.animate and fmt not in save.ANIMATION_FORMATS:
        raise ValueError(f"--animate: an animation is written as gif or mp4, not {fmt}")
    if not animate and (args.frames is not None or args.duration is not None):
        raise ValueError("--frames/--duration: only for animations (--animate, or an --out ending .gif/.mp4)")
    if animate:
        anim = dict(spec.animation or {"frames": 60, "duration": 6.0})
        if args.frames is not None:
            anim["frames"] = args.frames
        if args.duration is not None:
            anim["duration"] = args.duration
        for k in ("columns", "only"):
            if getattr(args, k) is not None:
                anim["columns" if k == "columns" else "methods"] = getattr(args, k)
        first = spec.animation is None
        spec = spec.updated(animation=anim)
        if first:
            spec = spec.updated(size=args.size or "slide", dpi=args.dpi or 100)
    else:
        spec = spec.updated(options=_options(args, spec.kind))
    spec = spec.updated(size=args.size, dpi=args.dpi, style=_style(args, spec.style), fmt=fmt)
    return spec, result


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["figure"]:
        argv = argv[1:]
    try:
        args = parser().parse_args(argv)
        if args.list_presets:
            for name in presets.names():
                print(f"{name:22s} {presets.get(name).title}")
            return 0
        if not (args.preset or args.from_config or args.result):
            raise _Refused("choose what to draw: --preset NAME, --from-config FILE or --result FILE.npz")
        if not args.out:
            raise _Refused("--out FILE is required")
        t0 = time.perf_counter()
        spec, result = _spec(args)
        from .spec import render
        paths = render(spec, args.out, result=result)
        print(f"wrote {', '.join(str(p) for p in paths)} in {time.perf_counter() - t0:.1f} s")
        return 0
    except _Refused as e:
        print(f"figure: {e}", file=sys.stderr)
        return 2
    except (ValueError, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"figure: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("figure: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
