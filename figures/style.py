"""The house style shared by the browser (Plotly) and paper (matplotlib) figures.

Colours are colour-blind-safe (Okabe & Ito 2008, then Paul Tol's "muted" set) and fixed per method so
a method keeps its colour across every view; beyond the palette, colours repeat with a dash pattern.
Markers: start = black dot, end = red dot, optimum = star, Pareto set = thick line.
"""
from __future__ import annotations

from dataclasses import dataclass

OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]
TOL_MUTED = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
             "#AA4499", "#DDDDDD"]

# A fixed colour per method key. The eight methods Explore opens with get eight colours that stay apart for every
# viewer: CIEDE2000 >= 18 between any two in normal vision and >= 7 under simulated protanopia, deuteranopia and
# tritanopia (tests/test_style.py checks it; picked from the Okabe-Ito and Tol palettes by that criterion, with
# SAM-GS in the strongest blue and LS in neutral grey). The other methods keep distinct colours of their own.
METHOD_COLOURS = {
    "samgs": "#0072B2", "nashmtl": "#EE7733", "cagrad": "#117733", "pcgrad": "#CC79A7", "mgda": "#332288",
    "alignedmtl": "#009988", "famo": "#882255", "ls": "#666666",
    "imtlg": "#999933", "upgrad": "#6A3D9A", "dualproj": "#44AA99", "config": "#997700", "gradvac": "#AA4499",
    "msi": "#CC6677", "pomsi": "#DDCC77", "pomsi_static": "#88CCEE", "graddrop": "#E69F00", "rlw": "#000000",
    "dwa": "#661100", "uw": "#6699CC", "scaleinvls": "#AA4466", "gradnorm": "#4477AA",
}
DASHES = ["solid", "dash", "dot", "dashdot"]
MPL_DASHES = {"solid": "-", "dash": "--", "dot": ":", "dashdot": "-."}

# The browser's filled contour (light to dark grey-blue, low to high loss); paper figures use it with ``screen``
SCREEN_CONTOUR = [[0.0, "#fbfbfb"], [0.35, "#e3e6ec"], [0.7, "#c3c9d4"], [1.0, "#9aa3b3"]]

START_COLOUR = "#000000"
END_COLOUR = "#D62728"
OPTIMUM_COLOUR = "#FFD700"
PARETO_COLOUR = "#C00000"

from .vocabulary import OUTCOME_COLOURS  # noqa: E402,F401  (one colour per outcome; figures/vocabulary.py)


@dataclass(frozen=True)
class Style:
    """Per-figure options: the loss shown in contours, sizes, how many points a path keeps for drawing."""

    contour: str = "sum"            # "task1", "task2", ... or "sum" (the weighted sum)
    max_points: int = 400           # decimation for drawing only (the stored Result keeps every record)
    line_width: float = 2.0
    pareto_width: float = 5.0
    marker_size: float = 7.0
    show_pareto: bool = True
    show_optima: bool = True
    log_contours: bool = False
    dark: bool = False
    screen: bool = False            # paper figures drawn as the browser draws them (filled grey contours)


def colour(method: str, index: int = 0) -> str:
    """A method's colour: a built-in's from METHOD_COLOURS, a plugin's own (``Method.colour``, which the loader
    fills in when the plugin names none), else one of the palette by the row ``index``."""
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    own = _plugin_colour(method)
    if own:
        return own
    pal = OKABE_ITO + TOL_MUTED
    return pal[index % len(pal)]


def _plugin_colour(method: str) -> str | None:
    import optimizers
    try:
        return optimizers.get(method).colour
    except ValueError:          # not registered in this process (e.g. a saved Result of a plugin)
        return None


def variant_style(variants: list[dict]) -> list[tuple[str, str]]:
    """(colour, dash) per row: a method's colour; its sweep variants get successive dash patterns."""
    seen: dict[str, int] = {}
    out = []
    for i, v in enumerate(variants):
        k = seen.get(v["method"], 0)
        seen[v["method"]] = k + 1
        out.append((colour(v["method"], i), DASHES[k % len(DASHES)]))
    return out


def decimate(n: int, max_points: int):
    """Indices that keep at most ``max_points`` of ``n`` points, the first and last always included."""
    import numpy as np
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(int))


# -- matplotlib specifics (paper figures and animations) -------------------------------------------
# Text stays text: PDF/PS embed TrueType (Type 42) fonts, never Type 3 bitmaps; SVG keeps <text> elements.
# Mathtext in STIX so that labels read like LaTeX (\mathscr{L} gives the Unicode script L, which every
# viewer can show, where \mathcal{L} would be a private-use glyph in SVG text).
MPL_FONTS = {
    "serif": {"font.family": "serif", "font.serif": ["STIXGeneral", "DejaVu Serif"], "mathtext.fontset": "stix"},
    "sans": {"font.family": "sans-serif", "font.sans-serif": ["DejaVu Sans"], "mathtext.fontset": "dejavusans"},
}
LOSS_SYMBOL = r"\mathscr{L}"      # L_k in mathtext labels
THETA_LABELS = (r"$\theta_1$", r"$\theta_2$")
CONTOUR_CMAP = ("#0d0887", "#6a00a8", "#b12a90", "#e16462", "#fca636")   # plasma 0 .. 0.9, as in the SAM-GS plots


def loss_label(k: int) -> str:
    """Mathtext label of task ``k``'s loss (0-based): ``$\\mathscr{L}_1$`` for k = 0."""
    return rf"${LOSS_SYMBOL}_{{{k + 1}}}$"


def mpl_rc(font_size: float, family: str = "serif", line_scale: float = 1.0) -> dict:
    """rcParams for the house style at one size (vector-friendly fonts, thin spines)."""
    rc = {
        "pdf.fonttype": 42, "ps.fonttype": 42, "svg.fonttype": "none", "pgf.rcfonts": False,
        "font.size": font_size, "axes.titlesize": font_size, "axes.labelsize": font_size,
        "xtick.labelsize": font_size * 0.85, "ytick.labelsize": font_size * 0.85,
        "legend.fontsize": font_size * 0.85, "figure.titlesize": font_size * 1.1,
        "axes.linewidth": 0.6 * line_scale, "xtick.major.width": 0.6 * line_scale,
        "ytick.major.width": 0.6 * line_scale, "xtick.major.size": 2.5 * line_scale,
        "ytick.major.size": 2.5 * line_scale,
        "legend.frameon": False, "savefig.bbox": None, "figure.dpi": 100, "path.simplify": True,
        "image.interpolation": "nearest",
    }
    rc.update(MPL_FONTS[family])
    return rc
