"""The Explore page's state: its URL parameters, the engine config they describe, the cached engine call,
and the downloads.

The page state is a flat dict keyed by URL parameter (``land``, ``methods``, ``samgs.gamma``, ``lr``,
``starts`` ...). :func:`params` lists every parameter with its default and parser for one landscape (some
defaults — steps, SAM-GS's beta2 — depend on the landscape). :func:`build_config` turns the state into a
validated ``trajectories.Config``; :func:`run` is the engine call, cached on the config's JSON.
Imported after the engine has been loaded (it imports torch through the engine).
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

import landscapes
import optimizers
import trajectories
from landscapes import custom
from optimizers import outer as outer_mod
from trajectories import specs
from trajectories import starts as starts_mod
from figures import browser
from figures.style import Style
from views import common

STATE_KEY = "explore"
WHOLE_PAGE = "explore.whole_page"   # set once this session's page has drawn everything (views/explore.py main)
DEFAULT_METHODS = ("samgs", "nashmtl", "cagrad", "pcgrad", "mgda", "alignedmtl", "famo", "ls")
MAX_STEPS = 50_000
MAX_RUNS = 20_000               # method variants x starts that the page draws
RECORDS_PER_RUN = 1_000         # records kept per run (record_every = steps / this, rounded up)
RECORD_BUDGET = 400_000         # records over all runs (more runs -> a coarser record_every)
MAX_BYTES = 1.5 * 2 ** 30       # memory a page's run may take (trajectories.estimate_bytes)
LR_MIN, LR_MAX = 1e-6, 10.0
START_MODES = {"preset": "Preset", "grid": "n × n grid", "random": "Random", "points": "Points"}
VIEWS = {"map": "Map", "loss": "Loss space", "outcomes": "Outcomes", "diag": "Diagnostics", "table": "Summary",
         "fragility": "Fragility", "playground": "Playground"}
LIVE_VIEWS = ("map", "loss")     # the views drawn by the live map (views/live_map.py)
LAYOUTS = {"overlay": "Overlay", "multiples": "One panel per method"}
WEIGHT_MODES = {"free": "free", "sum1": "w₁ + w₂ = 1"}
IMAGE_FORMATS = ("png", "svg")
WARM: set = set()               # (method, blocks per SIMD loop) run in this server process: kernels built
CUSTOM = "custom"               # the `land` value of a user-defined landscape; its definition is the `spec` param
DEFAULT_SPEC = {"name": "bowls", "tasks": ["(x1 - 1)^2 + x2^2", "(x1 + 1)^2 + x2^2"],
                "bounds": [[-5, 5], [-5, 5]], "presets": {"corners": [[-4, 4], [4, 4], [-4, -4], [4, -4], [0, 4.5]]}}


# -- parameters ------------------------------------------------------------------------------------
def default_methods() -> tuple:
    known = optimizers.names()
    chosen = tuple(m for m in known if m in DEFAULT_METHODS)     # registry (display) order
    return chosen or tuple(known[:1])


def hp_key(method: str, name: str) -> str:
    return f"{method}.{name}"


def hp_default(land, method: str, h) -> float:
    return land.method_defaults.get(method, {}).get(h.name, h.default)


def _methods_parser(text: str) -> tuple:
    keys = [k.strip() for k in text.split(",") if k.strip()]
    known = optimizers.names()
    bad = [k for k in keys if k not in known]
    if bad:
        raise ValueError(f"unknown method(s) {', '.join(map(repr, bad))} (known: {', '.join(known)})")
    if not keys:
        raise ValueError("no methods")
    return tuple(k for k in known if k in keys)


def _hp_parser(h):
    def parse(text: str):
        try:
            return h.check(text)
        except ValueError as e:
            raise ValueError(str(e).removeprefix(f"{h.name}: ")) from None
    return parse


def _starts_parser(land):
    def parse(text: str) -> str:
        try:
            starts_mod.resolve(land, text)
        except ValueError as e:
            raise ValueError(str(e).removeprefix("starts: ")) from None
        return text
    return parse


def land_param() -> common.Param:
    names = landscapes.names()
    return common.Param("land", "one_optimum" if "one_optimum" in names else names[0],
                        common.choice(names + [CUSTOM]))


def _spec_parser(text: str) -> str:
    return custom.encode_spec(custom.decode_spec(text))


def spec_param() -> common.Param:
    """The custom landscape's definition, URL-encoded (landscapes.custom.encode_spec; length-limited)."""
    return common.Param("spec", custom.encode_spec(DEFAULT_SPEC), _spec_parser)


def landscape_of(state: dict):
    """The landscape object of a page state: a registered one, or the custom definition in ``spec``."""
    if state["land"] == CUSTOM:
        return custom.from_spec(custom.decode_spec(state["spec"]))
    return landscapes.get(state["land"])


def landscape_title(key: str) -> str:
    return "Custom (your expressions)" if key == CUSTOM else landscapes.get(key).title


def params(land) -> list[common.Param]:
    """Every URL parameter of the page (after ``land``) with its default for landscape ``land``."""
    K = land.n_tasks
    out = [common.Param("methods", default_methods(), _methods_parser)]
    for key in optimizers.names():
        for h in optimizers.get(key).hparams:
            out.append(common.Param(hp_key(key, h.name), hp_default(land, key, h), _hp_parser(h)))
    out += [
        common.Param("wmode", "free", common.choice(WEIGHT_MODES if K == 2 else ["free"])),
        common.Param("w1", 0.5, common.number(0.01, 0.99)),
        common.Param("w", (1.0,) * K, common.numbers(K, 0.001, 1000.0)),
        common.Param("scale", 1.0, common.number(0.001, 1000.0)),
        common.Param("opt", "adam", common.choice(outer_mod.OUTERS)),
        common.Param("mom", 0.9, common.number(0.0, 0.999)),
        common.Param("lr", 1e-3, common.number(LR_MIN, LR_MAX)),
        common.Param("steps", int(land.default_steps), common.number(1, MAX_STEPS, integer=True)),
        common.Param("pipe", "reference", common.choice(optimizers.PIPELINES)),
        common.Param("seed", 0, common.number(0, 2 ** 31 - 1, integer=True)),
        common.Param("starts", "paper" if "paper" in land.presets else next(iter(land.presets), "grid:3"),
                     _starts_parser(land)),
        common.Param("view", "map", common.choice(VIEWS)),
        common.Param("layout", "overlay", common.choice(LAYOUTS)),
        common.Param("loss", "sum", common.choice(["sum"] + [f"task{k + 1}" for k in range(K)])),
        common.Param("drow", 0, common.number(0, 10_000, integer=True)),
        common.Param("dstart", 0, common.number(0, starts_mod.MAX_STARTS, integer=True)),
        common.Param("dstep", 0, common.number(0, MAX_STEPS, integer=True)),
        common.Param("img", "png", common.choice(IMAGE_FORMATS)),
        common.Param("teach", False, common.flag),
        common.Param("knobs", (), _knobs_parser(land)),
    ]
    out += overlay_params() + fragility_params() + playground_params()
    return out


def overlay_params() -> list[common.Param]:
    """The map's published paths and direction field (views/explore_overlays.py)."""
    from views import explore_overlays as ov
    return [common.Param("ghosts", False, common.flag), common.Param("field", False, common.flag),
            common.Param("fieldn", ov.FIELD_N, common.number(ov.FIELD_MIN, ov.FIELD_MAX, integer=True))]


def fragility_params() -> list[common.Param]:
    """The fragility view's controls (views/explore_fragility.py)."""
    from trajectories import fragility
    from views import explore_fragility as fv
    return [common.Param("fmode", "one", common.choice(fv.MODES)),
            common.Param("frow", 0, common.number(0, 10_000, integer=True)),
            common.Param("fstart", 0, common.number(0, starts_mod.MAX_STARTS, integer=True)),
            common.Param("fring", fragility.RING, common.number(fv.RING_MIN, fv.RING_MAX, integer=True)),
            common.Param("frad", fragility.RADIUS, common.number(0.0, 0.5, lo_open=True))]


def playground_params() -> list[common.Param]:
    """The aggregator playground's task gradients, losses and pipeline (views/explore_playground.py)."""
    from figures import playground as pg
    return [common.Param("pg", pg.DEFAULT_VECTORS, pg.parse_vectors, fmt=pg.format_vectors),
            common.Param("pgl", pg.DEFAULT_LOSSES, pg.parse_losses),
            common.Param("pgpipe", "reference", common.choice(optimizers.PIPELINES))]


KNOB_ALIASES = {"gamma": "samgs.gamma", "beta1": "samgs.beta1", "beta2": "samgs.beta2"}
PLAIN_KNOBS = ("lr", "steps", "seed", "pipe", "w1")


def knob_keys(land) -> list[str]:
    """Controls a presentation link may keep on screen (``knobs=gamma,lr``): SAM-GS's three by their short
    names, the learning rate, steps, seed, pipeline, w1, and any method's hyperparameter as ``method.name``."""
    hps = [hp_key(k, h.name) for k in optimizers.names() for h in optimizers.get(k).hparams]
    return list(KNOB_ALIASES) + list(PLAIN_KNOBS) + hps


def _knobs_parser(land):
    allowed = knob_keys(land)

    def parse(text: str) -> tuple:
        names = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
        bad = [k for k in names if k not in allowed]
        if bad:
            raise ValueError(f"unknown control(s) {', '.join(map(repr, bad))} (e.g. gamma, beta1, beta2, lr, steps, "
                             f"or method.setting such as cagrad.c)")
        return names
    return parse


URL_KEY = "explore.url"           # the query parameters the page last read or wrote


def _address() -> dict[str, str]:
    return {k: st.query_params[k] for k in st.query_params.keys() if k not in common.RESERVED}


def page_state() -> tuple[dict, list[str]]:
    """The page state of this session. The address is the state: it is read (validated) on the first run and
    whenever the address differs from the one the page last wrote — Back, Forward, an edited or pasted link —
    and kept in the session otherwise (a run caused by a widget starts from the state the widgets changed)."""
    raw = _address()
    if STATE_KEY in st.session_state and raw == st.session_state.get(URL_KEY):
        return st.session_state[STATE_KEY], []
    navigated = STATE_KEY in st.session_state
    state, problems = _read_state(raw)
    st.session_state[STATE_KEY] = state
    st.session_state[URL_KEY] = raw
    if navigated:             # the widgets still hold the values of the view we left: seed them afresh
        for k in [k for k in st.session_state.keys() if isinstance(k, str) and k.startswith("x.")]:
            del st.session_state[k]
    return state, problems


def sync_url(state: dict) -> None:
    """Write the state into the address (a new history entry when it changed: Back returns to the last view)."""
    desired = url_params(state)
    common.sync_url(desired)
    st.session_state[URL_KEY] = desired


def _read_state(raw: dict) -> tuple[dict, list[str]]:
    lp, sp = land_param(), spec_param()
    first, problems = common.read_params([lp, sp], raw)
    land = landscape_of(first)
    specs = params(land)
    values, more = common.read_params(specs, raw)
    problems += more + common.unknown_params(raw, [lp.key, sp.key] + [p.key for p in specs])
    return {**first, **values}, problems


def read_state(raw: dict) -> tuple[dict, list[str]]:
    """The page state an address describes (URL parameters as text), with the problems found — without touching
    the session (the Lessons page and the tests read views this way)."""
    return _read_state(raw)


def url_params(state: dict) -> dict[str, str]:
    """The URL of this state: every value that differs from its default (chosen methods' settings only)."""
    land = landscape_of(state)
    lp = land_param()
    specs = [lp] + ([spec_param()] if state["land"] == CUSTOM else []) + params(land)
    chosen = set(state["methods"])
    specs = [p for p in specs if "." not in p.key or p.key.split(".", 1)[0] in chosen]
    return common.url_values(specs, state)


def change_landscape(state: dict, new_key: str, new_spec: str | None = None) -> list[str]:
    """Switch ``state`` to another landscape (``new_spec``: a new custom definition, encoded): settings still
    at the old landscape's defaults follow the new ones; start points that do not fit the new box go back to
    its preset. Returns notes for the user."""
    old = landscape_of(state)
    new = landscape_of({**state, "land": new_key, "spec": new_spec or state["spec"]})
    if new_spec:
        state["spec"] = new_spec
    notes = []
    old_defaults = {p.key: p for p in params(old)}
    for p in params(new):
        if p.key in ("starts", "w", "loss", "wmode", "dstart", "drow", "dstep", "frow", "fstart"):
            continue
        if p.key in state and old_defaults.get(p.key) is not None and old_defaults[p.key].is_default(state[p.key]):
            state[p.key] = p.default
    new_params = {p.key: p for p in params(new)}
    try:
        new_params["starts"].parse(state["starts"])
    except ValueError:
        state["starts"] = new_params["starts"].default
        notes.append(f"Start points reset to the {new.key} preset “{state['starts']}” (the old ones do not fit).")
    if len(state["w"]) != new.n_tasks:
        state["w"] = (1.0,) * new.n_tasks
    if new.n_tasks != 2:
        state["wmode"] = "free"
    if state["loss"] not in ["sum"] + [f"task{k + 1}" for k in range(new.n_tasks)]:
        state["loss"] = "sum"
    state.update(land=CUSTOM if new_key == CUSTOM else new.key, drow=0, dstart=0, dstep=0, frow=0, fstart=0)
    return notes


# -- starts -----------------------------------------------------------------------------------------
def start_fields(spec: str, land) -> tuple[str, dict]:
    """The start-point widgets' values for ``spec``: (mode, {preset, grid, random, rseed, points}), read through
    the one start-spec parser (trajectories/specs.py)."""
    fields = {"preset": "paper" if "paper" in land.presets else next(iter(land.presets), ""), "grid": 5,
              "random": 10, "rseed": 0, "points": ""}
    try:
        parsed = specs.StartSpec.parse(spec, land.presets)
        pts = starts_mod.resolve(land, spec)
        fields["points"] = points_spec(pts) if len(pts) <= 400 else ""
    except ValueError:
        fields["points"] = spec
        return "points", fields
    if parsed.kind == "preset":
        fields["preset"] = parsed.name
    elif parsed.kind == "grid":
        fields["grid"] = parsed.n
    elif parsed.kind == "random":
        fields["random"], fields["rseed"] = parsed.n, parsed.seed
    return parsed.kind, fields


def compose_starts(mode: str, fields: dict) -> str:
    """The spec string of the start widgets' values (``StartSpec.text``); typed points are kept as typed."""
    if mode == "preset":
        return specs.StartSpec("preset", name=fields["preset"]).text()
    if mode == "grid":
        return specs.StartSpec("grid", n=int(fields["grid"])).text()
    if mode == "random":
        return specs.StartSpec("random", n=int(fields["random"]), seed=int(fields["rseed"])).text()
    return fields["points"]


def points_spec(points) -> str:
    return specs.StartSpec.of_points(points).text()


def click_starts(spec: str, land, x: float, y: float) -> tuple[str, str]:
    """A click at (x, y): remove the nearest start if it is close, otherwise add (x, y).

    Returns (new spec, what happened). "Close" is 4 % of the box's width.
    """
    pts = starts_mod.resolve(land, spec)
    (x0, x1), _ = land.bounds
    radius = 0.04 * (x1 - x0)
    if len(pts):
        d = np.hypot(pts[:, 0] - x, pts[:, 1] - y)
        i = int(d.argmin())
        if d[i] <= radius:
            if len(pts) == 1:
                return spec, "The last start point cannot be removed (at least one is needed)."
            kept = np.delete(pts, i, axis=0)
            return _named(kept, land), f"Removed the start ({pts[i, 0]:.3g}, {pts[i, 1]:.3g})."
    if not land.contains([[x, y]]).all():
        return spec, f"({x:.3g}, {y:.3g}) is outside the box."
    return _named(np.vstack([pts, [[x, y]]]), land), f"Added a start at ({x:.3g}, {y:.3g})."


def _named(points: np.ndarray, land) -> str:
    """The preset's name when ``points`` are exactly a preset's points, else the explicit list."""
    for name, preset in land.presets.items():
        p = np.asarray(preset.points, dtype=float)
        if p.shape == points.shape and np.allclose(p, points, rtol=0, atol=1e-9):
            return name
    return points_spec(points)


# -- config -----------------------------------------------------------------------------------------
def task_weights(state: dict, land) -> tuple | None:
    if state["wmode"] == "sum1" and land.n_tasks == 2:
        return (float(state["w1"]), 1.0 - float(state["w1"]))
    w = tuple(float(x) for x in state["w"])
    return None if all(x == 1.0 for x in w) else w


def record_every(steps: int, runs: int) -> int:
    """Keep at most RECORDS_PER_RUN records per run and RECORD_BUDGET over all runs."""
    per_run = max(2, min(RECORDS_PER_RUN, RECORD_BUDGET // max(1, runs)))
    return max(1, math.ceil(steps / per_run))


def build_config(state: dict):
    """The engine config of ``state`` (ValueError naming the field when it is not runnable here)."""
    land = landscape_of(state)
    methods = tuple(state["methods"])
    if not methods:
        raise ValueError("methods: choose at least one method")
    hp = {}
    for m in methods:
        spec = optimizers.get(m).hparams
        if spec:
            hp[m] = {h.name: state[hp_key(m, h.name)] for h in spec}
    steps = int(state["steps"])
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps: at most {MAX_STEPS:,} on this page, got {steps:,}")
    cfg = trajectories.Config.make(
        land, methods, state["starts"], steps, hparams=hp, optimizer=state["opt"], lr=float(state["lr"]),
        momentum=float(state["mom"]), pipeline=state["pipe"], seed=int(state["seed"]),
        task_weights=task_weights(state, land), scale=float(state["scale"]))
    runs = len(cfg.variants()) * len(cfg.starts)
    if runs > MAX_RUNS:
        raise ValueError(f"starts: {len(cfg.starts):,} starts × {len(cfg.variants())} methods = {runs:,} runs is "
                         f"more than this page draws ({MAX_RUNS:,}); use fewer starts or methods "
                         f"(the CLI, python -m trajectories, runs bigger sweeps)")
    cfg = dataclasses.replace(cfg, record_every=record_every(steps, runs))
    need = trajectories.estimate_bytes(cfg)
    if need > MAX_BYTES:
        raise ValueError(f"memory: this view would need about {need / 2 ** 30:.1f} GiB "
                         f"(the page's limit is {MAX_BYTES / 2 ** 30:.1f} GiB); use fewer starts, methods or steps")
    return cfg


def _kernel_kind(cfg) -> int:
    return trajectories.engine.c_ilp(len(cfg.starts), cfg.dtype)


def cold_methods(cfg) -> list[str]:
    """The view's methods whose kernels this server process has not built yet. A grid's kernels are others
    than the paper starts' (large batches interleave blocks of runs: ``trajectories.engine.c_ilp``)."""
    kind = _kernel_kind(cfg)
    return [m for m in cfg.methods if (m, kind) not in WARM]


def mark_warm(cfg) -> None:
    WARM.update((m, _kernel_kind(cfg)) for m in cfg.methods)


@st.cache_resource(max_entries=96, show_spinner=False)
def _run_method(cfg_json: str):
    """One method's runs (cached on its config, for every session: a slider of one method reruns only it)."""
    if len(RAN) > 4096:       # only an ordering hint (see _run): kept small
        RAN.clear()
    RAN.add(cfg_json)
    return trajectories.run(trajectories.Config.from_dict(json.loads(cfg_json)))


RAN: set = set()          # configs _run_method has computed in this process (most still in its cache)

METHOD_THREADS = 2       # methods computed side by side: one's kernel runs while another's results are assembled


@st.cache_resource(max_entries=24, show_spinner=False)
def _run(cfg_json: str):
    cfg = trajectories.Config.from_dict(json.loads(cfg_json))
    ctx = get_script_run_ctx()

    def one(method: str):
        add_script_run_ctx(threading.current_thread(), ctx)     # the cache belongs to this page's runtime
        return _run_method(jobs[method])
    # Two methods at a time: each engine call has serial parts (setting up, assembling the Result) that leave a
    # core idle; measured on 8 methods x 12 x 12 starts x 20 000 steps, 0.46 s side by side against 0.88 s one
    # after the other (and 0.60 s as one call over every method)
    # the methods to compute go first (a γ move: SAM-GS), so they do not wait behind cache look-ups
    jobs = {m: cfg.for_method(m).to_json() for m in cfg.methods}
    order = sorted(cfg.methods, key=lambda m: jobs[m] in RAN)
    with ThreadPoolExecutor(METHOD_THREADS) as pool:
        done = dict(zip(order, pool.map(one, order)))
    return trajectories.Result.stack([done[m] for m in cfg.methods], cfg.to_dict())


def run(cfg):
    """The engine on a view: each method's rows come from its own cached call (bit for bit what one call over
    every method gives: a method's draws are keyed by its own name), stacked in the page's order. The Result is
    shared by every session that shows this view, so nothing may change it."""
    return _run(cfg.to_json())


@st.cache_resource(max_entries=24, show_spinner=False)
def _map_figure(cfg_json: str, layout: str, loss: str, img: str, height, extras_key: str, _result, _extras):
    land = _result.landscape
    return browser.live_map(_result, Style(contour=loss), layout=layout, height=height, title=height is None,
                            image=browser.image_config(f"gradscape-{land.key}-{layout}", img), **_extras)


def map_figure(result, layout: str, loss: str, img: str, height=None, extras: dict | None = None,
               extras_key: str = ""):
    """The live map of a Result (cached with it: sessions showing the same view share the prepared figure).
    ``extras``: what views/explore_overlays.py draws under the runs, told apart in the cache by ``extras_key``."""
    return _map_figure(json.dumps(result.config, sort_keys=True), layout, loss, img, height, extras_key, result,
                       extras or {})


@st.cache_resource(max_entries=12, show_spinner=False)
def _loss_figure(cfg_json: str, img: str, height, _result):
    return browser.live_loss_space(_result, Style(), height=height, title=height is None,
                                   image=browser.image_config(f"gradscape-{_result.landscape.key}-loss-space", img))


def loss_figure(result, img: str, height=None):
    return _loss_figure(json.dumps(result.config, sort_keys=True), img, height, result)


def settings_line(state: dict, cfg) -> str:
    """One line saying what runs (presentation mode): landscape, methods, SAM-GS's settings, optimiser, steps,
    pipeline."""
    land = cfg.land
    names = ", ".join(optimizers.get(m).name for m in cfg.methods)
    parts = [f"**{land.title}**", names]
    if "samgs" in cfg.methods:
        parts.append(f"γ {state['samgs.gamma']:g}, β₁ {state['samgs.beta1']:g}, β₂ {state['samgs.beta2']:g}")
    w = task_weights(state, land)
    if w:
        parts.append("weights " + ", ".join(f"{x:g}" for x in w))
    opt = outer_mod.OUTERS[cfg.optimizer].name
    parts.append(f"{opt} lr {cfg.lrs[0]:g}" + (f", momentum {cfg.momentum:g}" if cfg.optimizer == "sgd" else ""))
    parts.append(f"{cfg.steps:,} steps")
    parts.append(f"{cfg.pipeline} pipeline")
    parts.append(f"{len(cfg.starts)} start{'s' if len(cfg.starts) != 1 else ''}")
    return " · ".join(parts)


# -- downloads --------------------------------------------------------------------------------------
def result_npz(result) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = result.save(Path(tmp) / "gradscape-result.npz")
        return path.read_bytes()


def trajectories_csv(result) -> bytes:
    """Every recorded point of every run: method, label, start index and coordinates, step, theta, losses."""
    import pandas as pd
    M, S = result.shape
    steps = np.asarray(result.record_steps)
    T = len(steps)
    cols = {
        "method": np.repeat([v["method"] for v in result.variants], S * T),
        "label": np.repeat(result.labels, S * T),
        "start": np.tile(np.repeat(np.arange(S), T), M),
        "start_x": np.tile(np.repeat(result.starts[:, 0], T), M),
        "start_y": np.tile(np.repeat(result.starts[:, 1], T), M),
        "step": np.tile(steps, M * S),
    }
    if result.positions is not None:
        cols["x"] = result.positions[..., 0].ravel()
        cols["y"] = result.positions[..., 1].ravel()
    if result.losses is not None:
        for k in range(result.losses.shape[-1]):
            cols[f"L{k + 1}"] = result.losses[..., k].ravel()
    buf = io.StringIO()
    pd.DataFrame(cols).to_csv(buf, index=False, float_format="%.7g")
    return buf.getvalue().encode()


def config_json(cfg) -> bytes:
    return json.dumps(cfg.to_dict(), indent=2, sort_keys=True).encode()


# -- views as job configs, and configs as views ------------------------------------------------------------
def job_config(state: dict) -> dict:
    """The Benchmark job this view describes (``jobs.config`` config dict): the same landscape, methods (with
    the settings that differ from their defaults), starts, steps, optimiser, pipeline, weights and seed."""
    cfg = build_config(state)
    land = cfg.land
    hp = {}
    for m in cfg.methods:
        for h in optimizers.get(m).hparams:
            v = state[hp_key(m, h.name)]
            if common.fmt_value(v) != common.fmt_value(hp_default(land, m, h)):
                hp.setdefault(m, {})[h.name] = v
    w = task_weights(state, land)
    return {"name": "", "landscape": land.key, "landscape_spec": getattr(land, "spec", None) or None,
            "methods": list(cfg.methods), "starts": state["starts"], "steps": cfg.steps, "pipeline": cfg.pipeline,
            "optimizer": cfg.optimizer, "lr": cfg.lrs[0], "momentum": cfg.momentum,
            "task_weights": list(w) if w else None, "scale": cfg.scale, "seeds": [cfg.seed], "hparams": hp}


def state_from_config(data: dict, state: dict) -> dict:
    """A page state showing the view a config describes: Explore's own download (``Config.to_dict``) or a job config
    of one setting (``jobs.config``). ValueError names what cannot be shown (a sweep, too many steps)."""
    if not isinstance(data, dict):
        raise ValueError("config: expected a JSON object")
    if "seeds" in data or "sweep" in data or ("record_every" in data and "starts_spec" not in data):
        from jobs.config import JobConfig
        job = JobConfig.from_dict(data)
        if job.swept:
            raise ValueError(f"config: a sweep ({', '.join(job.swept)}) has many views; Explore shows one — open "
                             f"the job on the Benchmark page, or fix the swept settings")
        cfg = job.engine_config(job.methods[0], job.seeds[0], job.start_points()[:1])
        spec_text = job.starts if isinstance(job.starts, str) else points_spec(job.start_points())
        methods, hparams = job.methods, job.hparams
        lr, weights, seed = job.lr[0], (job.task_weights[0] if job.task_weights else None), job.seeds[0]
    else:
        cfg = trajectories.Config.from_dict(data)
        if len(cfg.lrs) > 1 or len(cfg.weight_sets) > 1 or any(isinstance(v, list) for hp in
                                                                cfg.hparams_dict.values() for v in hp.values()):
            raise ValueError("config: a sweep has many views; Explore shows one")
        spec_text = cfg.starts_spec or points_spec(cfg.start_array)
        methods, hparams = cfg.methods, cfg.hparams_dict
        lr, weights, seed = cfg.lrs[0], (None if cfg.task_weights is None else cfg.weight_sets[0]), cfg.seed
    land = cfg.land
    new = dict(state)
    if land.key in landscapes.names() and not getattr(land, "spec", None):
        new["land"] = land.key
    else:
        new["land"], new["spec"] = CUSTOM, custom.encode_spec(land.spec)
    defaults = {p.key: p.default for p in params(land)}
    for key in ("wmode", "w1", "w", "loss", "dstart", "drow", "dstep"):
        new[key] = defaults[key]
    new.update(methods=tuple(m for m in optimizers.names() if m in methods), lr=float(lr), steps=int(cfg.steps),
               pipe=cfg.pipeline, opt=cfg.optimizer, mom=float(cfg.momentum), seed=int(seed),
               scale=float(cfg.scale), starts=spec_text)
    for m in new["methods"]:
        for h in optimizers.get(m).hparams:
            new[hp_key(m, h.name)] = (hparams.get(m) or {}).get(h.name, hp_default(land, m, h))
    if weights is not None and any(float(x) != 1.0 for x in weights):
        w = tuple(float(x) for x in weights)
        if land.n_tasks == 2 and abs(sum(w) - 1.0) < 1e-12 and 0.01 <= w[0] <= 0.99:
            new["wmode"], new["w1"] = "sum1", w[0]
        else:
            new["w"] = w
    build_config(new)          # refuses what this page cannot run (steps, runs, memory), naming the field
    return new
