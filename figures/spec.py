"""A figure's full recipe (``FigureSpec``): the simulation config, the figure kind and options, the size,
the format and DPI, the style and, for animations, the frame count and duration.

Every exported file carries its spec (``figures/save.py``), so ``figure --from-config FILE`` runs the same
simulation (``trajectories.Config.from_dict``) and draws the same figure. ``render`` is the one entry point the
CLI and the app's Export panel share; it holds a lock while drawing because matplotlib's rcParams are global
and the app renders from several threads.
"""
from __future__ import annotations

import copy
import json
import tempfile
import threading
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import save as save_mod

SPEC_FORMAT = "gradscape-figure/1"
SIZE_DEFAULTS = {"figure": "double", "animation": "slide"}
DPI_DEFAULTS = {"figure": 300, "animation": 100}
_LOCK = threading.RLock()


@dataclass
class FigureSpec:
    simulation: dict                        # trajectories.Config.to_dict(): reruns the exact simulation
    kind: str = "small-multiples"           # figures.paper.KINDS (ignored by animations)
    options: dict = field(default_factory=dict)
    size: str = "double"                    # figures.paper.SIZES
    dpi: int = 300
    fmt: str | None = None                  # figures.save.FORMATS; None: from the output file's suffix
    style: dict = field(default_factory=dict)   # figures.style.Style fields that differ from the defaults
    animation: dict | None = None           # {"frames": N, "duration": seconds, ...} for GIF / MP4
    preset: str | None = None
    title: str = ""
    format: str = SPEC_FORMAT

    # -- (de)serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))     # plain JSON types (tuples -> lists)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "FigureSpec":
        if not isinstance(d, dict):
            raise ValueError("from-config: expected a JSON object (a Gradscape figure spec)")
        if d.get("format") != SPEC_FORMAT:
            hint = " (this looks like a Result's config: use --result FILE.npz)" if "config" in d else ""
            raise ValueError(f"from-config: not a Gradscape figure spec (format {d.get('format')!r}, "
                             f"expected {SPEC_FORMAT!r}){hint}")
        known = {f.name for f in fields(cls)}
        bad = sorted(set(d) - known)
        if bad:
            raise ValueError(f"from-config: unknown field(s) {', '.join(bad)}")
        if not isinstance(d.get("simulation"), dict):
            raise ValueError("from-config: the spec has no 'simulation' config")
        return cls(**copy.deepcopy(d))

    # -- construction ----------------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, name, *, steps=None, methods=None, **overrides) -> "FigureSpec":
        from trajectories import Config

        from . import presets
        p = presets.get(name)
        sim = p.simulation_kwargs()
        if steps is not None:
            sim["steps"] = steps
        if methods is not None:
            sim["methods"] = methods
        if not sim["methods"]:
            raise ValueError(f"preset: none of the methods of {name} ({', '.join(presets.PAPER_METHODS)}) is "
                             "available in this build")
        cfg = Config.make(sim.pop("landscape"), sim.pop("methods"), sim.pop("starts"), sim.pop("steps"), **sim)
        spec = cls(simulation=cfg.to_dict(), kind=p.kind, options=dict(p.options), size=p.size, preset=name,
                   title=p.title)
        return spec.updated(**overrides)

    @classmethod
    def from_result(cls, result, **overrides) -> "FigureSpec":
        spec = cls(simulation=copy.deepcopy(result.config), title=default_title(result))
        return spec.updated(**overrides)

    def updated(self, **kw) -> "FigureSpec":
        """A copy with the given fields replaced (``None`` values are ignored); options merge."""
        d = self.to_dict()
        for k, v in kw.items():
            if v is None:
                continue
            if k == "options":
                d["options"] = dict(d["options"], **v)
            elif k not in d:
                raise ValueError(f"spec: unknown field {k!r}")
            else:
                d[k] = v
        return FigureSpec.from_dict(json.loads(json.dumps(d)))

    @property
    def is_animation(self) -> bool:
        return self.animation is not None

    def check(self, fmt: str):
        """Refuse a spec that cannot produce ``fmt`` (before any simulation runs)."""
        from . import paper
        paper.size_of(self.size)
        save_mod.check_dpi(self.dpi)
        if fmt in save_mod.ANIMATION_FORMATS and not self.is_animation:
            raise ValueError(f"format: {fmt} is an animation; add --animate (or choose pdf, svg, png, pgf)")
        if self.is_animation and fmt not in save_mod.ANIMATION_FORMATS:
            raise ValueError(f"format: an animation is written as gif or mp4, not {fmt}")
        if self.is_animation:
            from . import animate
            animate.check_timing(fmt, **{k: v for k, v in self.animation.items() if k in ("frames", "duration")})
        elif self.kind not in paper.KINDS:
            raise ValueError(f"kind: unknown {self.kind!r} (known: {', '.join(paper.KINDS)})")
        if self.style:
            paper.style_from_dict(self.style)
        if fmt == "pgf" and save_mod.latex_system() is None:
            raise ValueError("format: PGF needs LaTeX (xelatex, lualatex or pdflatex), and none is installed; "
                             "export PDF or SVG instead")


def default_title(result) -> str:
    land = result.config.get("landscape", "")
    meths = ", ".join(dict.fromkeys(result.labels))
    return f"{land}: {meths}"


def simulate(spec: FigureSpec, progress=None, cancel=None):
    """Run the spec's simulation (validated by ``trajectories.Config``; bad input raises ValueError)."""
    import trajectories
    cfg = trajectories.Config.from_dict(spec.simulation)
    return trajectories.run(cfg, progress=progress, cancel=cancel)


def build_figure(spec: FigureSpec, result):
    from . import paper
    return paper.build(spec.kind, result, spec.style or None, spec.size, **spec.options)


def render(spec: FigureSpec, out, result=None, fmt=None, progress=None) -> list[Path]:
    """Write ``out`` (a figure or an animation, by format) and its sidecar JSON; returns the written paths.
    ``result``: the Result to draw (default: run ``spec.simulation``)."""
    out = Path(out)
    fmt = save_mod.format_of(out, fmt or spec.fmt)
    spec = spec.updated(fmt=fmt)
    spec.check(fmt)
    if result is None:
        result = simulate(spec, progress)
    with _LOCK:
        if spec.is_animation:
            from . import animate
            path = animate.animate(result, out, fmt=fmt, size=spec.size, dpi=spec.dpi, style=spec.style or None,
                                   spec=spec, **spec.animation)
            return [path, save_mod.write_sidecar(path, spec)]
        fig = build_figure(spec, result)      # a plain Figure (no pyplot registry): freed with its last reference
        return save_mod.save_figure(fig, out, fmt, spec.dpi, spec, title=spec.title or default_title(result))


def render_bytes(spec: FigureSpec, result, fmt) -> bytes:
    """The file's bytes (for the app's download button)."""
    fmt = save_mod.format_of("x." + fmt)
    spec = spec.updated(fmt=fmt)
    spec.check(fmt)
    with _LOCK:
        if spec.is_animation:
            from . import animate
            with tempfile.TemporaryDirectory() as d:
                p = animate.animate(result, Path(d) / f"animation.{fmt}", fmt=fmt, size=spec.size, dpi=spec.dpi,
                                    style=spec.style or None, spec=spec, **spec.animation)
                return p.read_bytes()
        fig = build_figure(spec, result)
        return save_mod.figure_bytes(fig, fmt, spec.dpi, spec, title=spec.title or default_title(result))
