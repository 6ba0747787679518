"""The aggregator playground: two or three task gradients, and what every method makes of them (the SAM-GS paper's
figure 1, live).

* :func:`parse_vectors` / :func:`format_vectors`, :func:`parse_losses`: the playground's state as text (the page's
  address), validated here, once;
* :func:`directions`: each method's first step from a fresh state on G[1, K, 2] with losses L[1, K]
  (``optimizers.probe.first_step``): the native direction, the direction of the chosen pipeline, the weights;
* :func:`triad`: cos(g_i, g_j) and GMS (the gradient-magnitude similarity) averaged over pairs, as the engine's
  diagnostics compute them (methods-spec.md §3);
* :func:`build_figure`: the task gradients as draggable arrows (annotations) and every method's d as a coloured
  arrow from the origin, with equal axes.

Losses default to 1 for every task: the loss-based methods (scale-invariant LS, DWA, UW, FAMO, ...) then weight the
tasks equally on their first step, and the clean pipeline's shift by the landscape's floor is 0 (dragged vectors
have no landscape).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

import optimizers
from optimizers import probe

from . import style as style_mod

DEFAULT_VECTORS = ((2.0, 0.0), (-1.0, 1.0))     # methods-spec.md §9, T2: conflicting, unequal
DEFAULT_LOSSES = (1.0, 1.0)
MAX_NORM = 1000.0
# methods-spec.md §9 (K = 2, rows g1, g2), offered as presets on the page
TEST_VECTORS = {
    "T1": ("orthogonal, equal norms", ((1.0, 0.0), (0.0, 1.0))),
    "T2": ("conflicting, unequal", ((2.0, 0.0), (-1.0, 1.0))),
    "T3": ("imbalanced (ratio 50)", ((3.0, 4.0), (0.1, 0.0))),
    "T4": ("exactly opposite", ((1.0, 2.0), (-2.0, -4.0))),
    "T5": ("equal", ((1.0, 2.0), (1.0, 2.0))),
}
TASK_COLOURS = ("#1a1a1a", "#1a1a1a", "#1a1a1a")     # the tasks in black: the colours are the methods'


def _number(text: str, what: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise ValueError(f"{what}: {text.strip()!r} is not a number") from None
    if not math.isfinite(x):
        raise ValueError(f"{what}: {text.strip()!r} is not a finite number")
    return x


def parse_vectors(text: str) -> tuple:
    """"x,y;x,y[;x,y]" -> ((x, y), ...): two or three task gradients, each coordinate finite, each norm ≤ 1000."""
    items = [t for t in str(text).split(";") if t.strip()]
    if not 2 <= len(items) <= 3:
        raise ValueError(f"expected 2 or 3 vectors 'x,y' separated by ';', got {len(items)}")
    out = []
    for k, item in enumerate(items, 1):
        xy = item.split(",")
        if len(xy) != 2:
            raise ValueError(f"g{k}: expected 'x,y', got {item.strip()!r}")
        v = (_number(xy[0], f"g{k}"), _number(xy[1], f"g{k}"))
        if math.hypot(*v) > MAX_NORM:
            raise ValueError(f"g{k}: its norm {math.hypot(*v):.4g} is over {MAX_NORM:g}")
        out.append(v)
    return tuple(out)


def format_vectors(vectors) -> str:
    return ";".join(f"{x:.6g},{y:.6g}" for x, y in vectors)


def parse_losses(text: str) -> tuple:
    """"1,1[,1]" -> the task losses: 2 or 3 numbers in (0, 1000] (positive: there is no landscape floor to shift
    negative losses by)."""
    parts = [t for t in str(text).split(",") if t.strip()]
    if not 2 <= len(parts) <= 3:
        raise ValueError(f"expected 2 or 3 comma-separated losses, got {len(parts)}")
    out = tuple(_number(p, f"L{k}") for k, p in enumerate(parts, 1))
    for k, x in enumerate(out, 1):
        if not 0 < x <= MAX_NORM:
            raise ValueError(f"L{k}: {x:g} is outside (0, {MAX_NORM:g}] (losses are positive here)")
    return out


def polar(v) -> tuple[float, float]:
    """(angle in degrees in (-180, 180], length) of a vector."""
    return math.degrees(math.atan2(v[1], v[0])), math.hypot(*v)


def from_polar(angle_deg: float, length: float) -> tuple[float, float]:
    a = math.radians(angle_deg)
    x, y = length * math.cos(a), length * math.sin(a)
    return (round(x, 12) + 0.0, round(y, 12) + 0.0)          # no -0.0, no 1e-17 for a right angle


# -- the numbers ---------------------------------------------------------------------------------------
@dataclass
class Direction:
    key: str
    label: str
    colour: str
    native: np.ndarray        # [2]
    d: np.ndarray             # [2]: after the pipeline's post-processing
    weights: np.ndarray       # [K]
    stateful: bool
    random: bool
    note: str                 # e.g. SAM-GS's branch


def directions(methods, vectors, losses=None, *, hparams: dict | None = None, pipeline: str = "reference",
               seed: int = 0) -> list[Direction]:
    """Each method's first step from a fresh state (``optimizers.probe.first_step``) on the task gradients
    ``vectors`` (K x 2) with ``losses`` (default 1 each); ``hparams``: {method: {name: value}}."""
    G = torch.tensor(np.asarray(vectors, dtype=float)[None])
    K = G.shape[1]
    L = torch.tensor([list(losses if losses is not None else (1.0,) * K)], dtype=torch.float64)
    if L.shape[1] != K:
        raise ValueError(f"losses: expected {K} (one per task), got {L.shape[1]}")
    out = []
    for i, key in enumerate(methods):
        m = optimizers.get(key)
        if K < m.min_tasks:
            continue
        step = probe.first_step(m, G, L, hparams=(hparams or {}).get(key), pipeline=pipeline, seed=seed)
        note = ""
        if "branch" in step.aux:
            note = "equalisation branch" if float(step.aux["branch"][0]) > 0.5 else "momentum branch"
        random = m.random and not (key in ("pcgrad", "gradvac") and K == 2)    # their draws only order K >= 3 tasks
        out.append(Direction(key, m.label, style_mod.colour(key, i), step.native[0].numpy(), step.d[0].numpy(),
                             step.weights[0].numpy(), probe.stateful(m), random, note))
    return out


def triad(vectors) -> dict:
    """cos and GMS averaged over the task pairs (NaN where undefined), as trajectories.engine.diagnostics."""
    G = np.asarray(vectors, dtype=float)
    n = np.linalg.norm(G, axis=1)
    cs, gs = [], []
    for i in range(len(G)):
        for j in range(i + 1, len(G)):
            with np.errstate(invalid="ignore", divide="ignore"):
                cs.append(G[i] @ G[j] / (n[i] * n[j]))
                gs.append(2 * n[i] * n[j] / (n[i] ** 2 + n[j] ** 2))
    return {"cos": float(np.mean(cs)), "gms": float(np.mean(gs))}


def cosine(a, b) -> float:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


# -- the figure ----------------------------------------------------------------------------------------
def view_radius(vectors, dirs) -> float:
    """Half the width of the square view: the longest task gradient with room, or a d that is not much longer."""
    g = max(float(np.linalg.norm(v)) for v in vectors) or 1.0
    ds = [float(np.linalg.norm(x.d)) for x in dirs if np.isfinite(x.d).all()]
    longest = max([g] + [x for x in ds if x <= 2.5 * g])
    return 1.25 * longest


def build_figure(vectors, dirs: list[Direction], *, height: int = 540) -> dict:
    """The playground as a plain Plotly figure dict: the task gradients as arrows (annotations whose labels, at their
    tips, can be dragged when the page allows it), each method's d as an arrow from the origin (a line and an
    arrowhead marker);
    a d longer than the view is drawn to the view's edge, dotted, its label giving the true norm."""
    R = view_radius(vectors, dirs)
    traces = []
    for x in dirs:
        d = np.asarray(x.d, dtype=float)
        n = float(np.linalg.norm(d))
        if not np.isfinite(d).all():
            continue
        shown = d if n <= R else d / n * R * 0.98
        tag = (" (stateful: first step)" if x.stateful else "") + (" (random)" if x.random else "")
        traces.append(dict(type="scatter", x=[0.0, float(shown[0])], y=[0.0, float(shown[1])], mode="lines+markers",
                           name=f"{x.label}{tag}", legendgroup=x.key, uid=f"d-{x.key}",
                           line=dict(color=x.colour, width=3, dash="dot" if n > R else "solid"),
                           marker=dict(symbol=["circle", "arrow"], size=[1, 15], angleref="previous",
                                       color=x.colour),
                           hovertemplate=f"{x.label}: d = ({d[0]:.4g}, {d[1]:.4g}), |d| = {n:.4g}<extra></extra>"))
    annotations = []
    for k, v in enumerate(vectors):
        # Plotly puts an annotation's text at the tail (ax, ay) and lets the user drag it there
        # (edits.annotationTail): so the tail is the vector's tip, the anchor (x, y) the origin, and the arrowhead
        # is drawn at the tail's end (arrowside "start"): dragging the label g_k drags the tip of g_k.
        c = TASK_COLOURS[k % len(TASK_COLOURS)]
        annotations.append(dict(x=0.0, y=0.0, ax=float(v[0]), ay=float(v[1]), xref="x", yref="y", axref="x",
                                ayref="y", showarrow=True, arrowside="start", startarrowhead=2, startarrowsize=1.2,
                                arrowwidth=3.5, arrowcolor=c, text=f"<b>g{k + 1}</b>", font=dict(color=c, size=15),
                                bgcolor="rgba(255,255,255,0.85)", bordercolor=c, borderwidth=1.5, borderpad=3,
                                hovertext=f"drag to move g{k + 1}"))
    layout = dict(height=height, margin=dict(l=50, r=20, t=30, b=40), plot_bgcolor="white", showlegend=True,
                  legend=dict(orientation="h", yanchor="top", y=-0.08, x=0),
                  xaxis=dict(range=[-R, R], zeroline=True, zerolinecolor="#bbb", gridcolor="#eee", title="θ₁",
                             constrain="domain"),
                  yaxis=dict(range=[-R, R], zeroline=True, zerolinecolor="#bbb", gridcolor="#eee", title="θ₂",
                             scaleanchor="x", scaleratio=1, constrain="domain"),
                  annotations=annotations, dragmode=False, uirevision="playground",
                  editrevision=format_vectors(vectors))      # new vectors replace whatever was dragged
    return dict(data=traces, layout=layout)
