"""The Benchmark page's "New job" form: a shipped preset or a custom job, its cost before Launch, and a prefill
from Explore ("Benchmark this view").

Widgets -> a job config dict -> ``jobs.config.JobConfig`` (validation) -> its cost (``jobs.config.cost``, from this
machine's measured speed) -> Launch, which asks for a confirmation when the job would take more than
``CONFIRM_S``. Explore hands a view over as ``st.session_state["bench.prefill"]`` (a job config dict); the form
seeds its widgets from it once.
"""
from __future__ import annotations

import json
import os
import re

import streamlit as st

import landscapes
import optimizers
from figures import vocabulary as vocab
from landscapes import custom
from jobs import benchmarks, worker
from jobs.config import CLUSTER_ENV, JobConfig, cost, parse_cluster
from jobs.store import Store
from trajectories import specs

CONFIRM_S = 600                  # a job longer than this asks "are you sure" before it launches
PREFILL = "bench.prefill"
CUSTOM = "custom"
CUSTOM_EXAMPLE = ('{"name": "bowls", "tasks": ["(x1-1)^2 + x2^2", "(x1+1)^2 + x2^2"],\n'
                  ' "bounds": [[-5, 5], [-5, 5]]}')


def _store() -> Store:
    return Store()


def size(b: float) -> str:
    for unit, k in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if b >= k:
            return f"{b / k:.1f} {unit}"
    return f"{b:.0f} B"


def _method_label(key: str) -> str:
    return optimizers.get(key).label


def _sweep_choices(methods) -> list[str]:
    return [f"{m}.{h.name}" for m in methods for h in optimizers.get(m).hparams]


def _default_values(choice: str) -> str:
    m, name = choice.split(".", 1)
    h = optimizers.get(m).hparam(name)
    if h.integer:
        lo, hi = int(h.low), int(min(h.high, h.low + 4))
        return ", ".join(str(v) for v in range(lo, hi + 1))
    if h.log and h.low > 0:
        return f"log({h.low:g}, {h.high:g}, 5)"
    return f"lin({h.low:g}, {h.high:g}, 5)"


def _custom_spec(text: str) -> dict:
    """A custom landscape's definition from the form: JSON or YAML text, or an encoded link value."""
    text = text.strip()
    return custom.decode_spec(text) if text.startswith("1.") else custom.parse_text(text)


# -- prefill from Explore ------------------------------------------------------------------------------------
def apply_prefill(cfg: dict) -> None:
    """Seed the form's widgets from a job config dict (Explore's "Benchmark this view")."""
    ss = st.session_state
    spec = cfg.get("landscape_spec")
    ss["bj_landscape"] = CUSTOM if spec else cfg["landscape"]
    if spec:
        ss["bj_spec"] = json.dumps(spec)
    ss["bj_methods"] = list(cfg["methods"])
    ss["bj_all"] = False
    land = custom.from_spec(spec) if spec else landscapes.get(cfg["landscape"])
    start = specs.StartSpec.parse(cfg["starts"], land.presets)
    if start.kind == "grid" and start.n >= 2:
        ss["bj_starts_kind"], ss["bj_grid"] = "grid", start.n
    elif start.kind == "random":
        ss["bj_starts_kind"], ss["bj_random"], ss["bj_random_seed"] = "random", start.n, start.seed
    elif start.kind == "preset":
        ss["bj_starts_kind"], ss["bj_preset"] = "preset", start.name
    else:
        from trajectories import starts as starts_mod
        pts = starts_mod.resolve(land, cfg["starts"])
        ss["bj_starts_kind"], ss["bj_points"] = "points", specs.StartSpec.of_points(pts).text()
    ss["bj_steps"] = int(cfg["steps"])
    ss["bj_pipeline"] = cfg.get("pipeline", "reference")
    ss["bj_optimizer"] = cfg.get("optimizer", "adam")
    ss["bj_lr"] = f"{float(cfg.get('lr', 1e-3)):g}"
    ss["bj_momentum"] = float(cfg.get("momentum", 0.9))
    ss["bj_scale"] = float(cfg.get("scale", 1.0))
    ss["bj_seeds"] = ", ".join(str(s) for s in cfg.get("seeds", [0]))
    tw = cfg.get("task_weights")
    ss["bj_weights"] = ", ".join(f"{w:g}" for w in tw) if tw else ""
    ss["bj_hparams"] = "; ".join(f"{m}.{k}={v:g}" for m, hp in (cfg.get("hparams") or {}).items()
                                 for k, v in hp.items())
    ss["bj_sweep"] = []


# -- the custom job --------------------------------------------------------------------------------------------
def custom_config() -> dict:
    """The config dict the custom-job widgets describe (ValueError naming the field when one is refused)."""
    c1, c2, c3 = st.columns(3)
    spec = None
    with c1:
        st.selectbox("Landscape", landscapes.names() + [CUSTOM], key="bj_landscape",
                     format_func=lambda k: "Custom (expressions)" if k == CUSTOM else landscapes.get(k).title)
        if st.session_state["bj_landscape"] == CUSTOM:
            text = st.text_area("Definition (JSON or YAML, as for --landscape-file)", CUSTOM_EXAMPLE,
                                key="bj_spec", height=130,
                                help="{name, tasks: [expr, ...], bounds: [[x0, x1], [y0, y1]], presets}; the "
                                     "Explore page's studio link works too (its spec=1.… value)")
            spec = _custom_spec(text)
            land = custom.from_spec(spec)
        else:
            land = landscapes.get(st.session_state["bj_landscape"])
        methods = st.multiselect("Methods", optimizers.names(), default=[m for m in ("samgs", "ls")
                                                                           if m in optimizers.names()],
                                 format_func=_method_label, key="bj_methods")
        st.checkbox("All methods", key="bj_all")
    with c2:
        kind = st.radio("Starts", ["grid", "random", "preset", "points"], horizontal=True, key="bj_starts_kind",
                        format_func={"grid": "n × n grid", "random": "random", "preset": "preset",
                                     "points": "points"}.get)
        if kind == "grid":
            n = st.number_input("Grid size n (n × n starts)", 2, 512, 16, key="bj_grid")
            starts = specs.StartSpec("grid", n=int(n)).text()
        elif kind == "random":
            n = st.number_input("Number of random starts", 1, 1_000_000, 500, key="bj_random")
            seed = st.number_input("Seed of the draw", 0, 2 ** 31 - 1, 0, key="bj_random_seed")
            starts = specs.StartSpec("random", n=int(n), seed=int(seed)).text()
        elif kind == "preset":
            if st.session_state.get("bj_preset") not in land.presets:
                st.session_state.pop("bj_preset", None)
            starts = st.selectbox("Preset", list(land.presets), key="bj_preset",
                                  format_func=lambda p: land.presets[p].label)
        else:
            starts = st.text_input("Points (x,y;x,y)", "-8,5;3,7.5", key="bj_points")
        steps = st.number_input("Steps", 1, 1_000_000, int(land.default_steps), step=1000, key="bj_steps")
    with c3:
        pipeline = st.selectbox("Pipeline", list(optimizers.PIPELINES), key="bj_pipeline")
        optimizer = st.selectbox("Outer optimiser", ["adam", "sgd"], key="bj_optimizer")
        lr = st.text_input("Learning rate (one value, or several to sweep)", "0.001", key="bj_lr")
        seeds = st.text_input("Seeds", "0", key="bj_seeds", help="e.g. '0' or '0, 1, 2': each seed repeats every run")
        weights = st.text_input("Task weights (blank: all 1; 'a, b' or sets 'a, b; c, d' to sweep)", "",
                                key="bj_weights")
    all_methods = st.session_state.get("bj_all")
    chosen = optimizers.names() if all_methods else methods
    sweep_params = st.multiselect("Sweep over hyperparameters (every combination is a variant)",
                                  _sweep_choices(chosen), key="bj_sweep")
    sweep: dict = {}
    for choice in sweep_params:
        vals = st.text_input(f"Values of {choice}", _default_values(choice), key=f"bj_sweep_{choice}",
                             help="'0.1, 0.5, 0.9', 'lin(A, B, N)' or 'log(A, B, N)'")
        m, name = choice.split(".", 1)
        sweep.setdefault(m, {})[name] = vals
    with st.expander("Advanced"):
        a1, a2, a3 = st.columns(3)
        name = a1.text_input("Job name", "", key="bj_name",
                             help="blank: one made of the landscape, methods, starts, steps, lr and sweep")
        record_every = a2.number_input("Record positions every k steps", 1, 1_000_000,
                                       max(1, min(500, int(steps) // 40)), key="bj_record_every")
        early = a3.checkbox("Stop early once every run has stopped moving", True, key="bj_early")
        hp_text = a1.text_input("Fixed method settings (method.name=value; …)", "", key="bj_hparams",
                                help="e.g. samgs.gamma=0.3; cagrad.c=0.5 (a view from Explore brings its own)")
        momentum = a2.number_input("SGD momentum", 0.0, 0.9999, 0.9, step=0.05, key="bj_momentum", format="%g")
        scale = a3.number_input("Task-1 scale", 0.001, 1000.0, 1.0, step=0.5, key="bj_scale", format="%g")
    cfg = {"name": name.strip(), "landscape": land.key, "landscape_spec": spec,
           "methods": "all" if all_methods else methods,
           "starts": starts, "steps": int(steps), "pipeline": pipeline, "optimizer": optimizer,
           "lr": lr, "seeds": seeds, "record_every": int(record_every), "early_exit": bool(early),
           "momentum": float(momentum), "scale": float(scale)}
    if hp_text.strip():
        items = [p for p in re.split(r"[;\s]+", hp_text) if p.strip()]
        cfg["hparams"] = specs.hp_assignments(items, "fixed method settings")
    if weights.strip():
        tw = [list(w) for w in specs.weight_sets(weights, "task_weights", land.n_tasks)]
        if len(tw) > 1:
            cfg["sweep"] = {"task_weights": tw}
        else:
            cfg["task_weights"] = tw[0]
    if sweep:
        cfg.setdefault("sweep", {}).update(sweep)
    return cfg


# -- cost and launch ---------------------------------------------------------------------------------------
@st.cache_resource(max_entries=256, show_spinner=False)
def _calibrated(method: str, setting: str) -> float:
    """This machine's run-steps per second for ``method`` in a setting (landscape, pipeline, dtype, optimiser),
    measured once per server process."""
    cfg = JobConfig.from_dict(json.loads(setting))
    return benchmarks.calibrate(cfg, method)


MEASURE_AT_ONCE = 3             # methods measured while a form is drawn; the others are estimated from them


def rates_for(cfg: JobConfig) -> tuple[dict, str]:
    """(run-steps per second per method, a note when some are estimated). A method's speed is taken from the chunks
    this machine has completed, else measured now — a few methods at a time, so that opening the page never waits
    for every kernel of every method; the rest take the median of those measured until they are measured too."""
    rates = benchmarks.measured_rates(_store(), cfg.methods)
    missing = [m for m in cfg.methods if m not in rates]
    setting = {"landscape": cfg.landscape, "landscape_spec": cfg.landscape_spec, "pipeline": cfg.pipeline,
               "optimizer": cfg.optimizer, "dtype": cfg.dtype, "starts": "grid:8", "steps": 10}
    measure = sorted(missing, key=lambda m: (m not in ("samgs", "ls"), missing.index(m)))[:MEASURE_AT_ONCE]
    if measure:
        with st.spinner(f"Measuring this machine's speed for {vocab.plural(len(measure), 'method')} (once)…"):
            for m in measure:
                rates[m] = _calibrated(m, json.dumps({**setting, "methods": [m]}, sort_keys=True))
    rest = [m for m in missing if m not in measure]
    if not rest:
        return rates, ""
    known = sorted(rates.values())
    for m in rest:
        rates[m] = known[len(known) // 2]
    return rates, (f" (measured for {len(cfg.methods) - len(rest)} of {len(cfg.methods)} methods, the others "
                   f"estimated from them)")


def show_cost(cfg: JobConfig, key: str) -> bool:
    """The job's cost in one line; for a long job a confirmation box. True when it may be launched."""
    rates, rough = rates_for(cfg)
    c = cost(cfg, rates)
    secs = c["seconds"]
    line = (f"**{c['runs']:,} runs** ({len(cfg.variants())} variant{'s' if len(cfg.variants()) != 1 else ''} × "
            f"{vocab.plural(len(cfg.seeds), 'seed')} × {len(cfg.start_points()):,} starts) × {cfg.steps:,} steps = "
            f"**{vocab.big(c['run_steps'])} run-steps**, in {vocab.plural(c['chunks'], 'engine call')}; about "
            f"**{vocab.duration(secs)}** on this machine{rough}" + (" (less if runs stop early)" if cfg.early_exit else "") +
            f"; memory up to {size(c['peak_bytes'])} per engine call, about {size(c['stored_bytes'])} of results.")
    st.caption(line)
    st.session_state[f"{key}_cost"] = c
    if secs is not None and secs > CONFIRM_S:
        st.warning(f"This job would take about {vocab.duration(secs)} here. Fewer starts, methods or steps make it "
                   f"shorter; it runs in the background and can be cancelled.", icon=":material/schedule:")
        return st.checkbox(f"Yes, run it for about {vocab.duration(secs)}", key=f"{key}_confirm")
    return True


def launch(cfg_dict: dict):
    cluster = st.session_state.get("bj_cluster", "").strip()
    if cluster:
        cfg_dict = dict(cfg_dict, cluster=cluster)
    try:
        cfg = JobConfig.from_dict(cfg_dict)
        plan = cfg.plan()
        job_id = worker.launch(cfg, _store())
    except (ValueError, KeyError) as e:
        st.error(str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e), icon="⚠️")
        return
    except OSError as e:
        st.error(f"Could not start the worker: {e}", icon="⚠️")
        return
    runs = sum(c.runs for c in plan)
    st.session_state["bench_launched"] = job_id
    st.session_state["job_pick"] = job_id
    st.toast(f"Launched {cfg.title}: {runs:,} runs in {vocab.plural(len(plan), 'engine call')}")


def cluster_field():
    """Where the next job runs: blank for this machine's worker (or $GRADSCAPE_RAY_ADDRESS), or a Ray cluster."""
    default = os.environ.get(CLUSTER_ENV, "").strip()
    st.text_input("Ray cluster", "", key="bj_cluster",
                  placeholder=f"{default} (from {CLUSTER_ENV})" if default else "blank: this machine's worker process",
                  help="Run the job's chunks as Ray tasks: a running cluster's HOST:PORT (or ray://HOST:PORT), or "
                       "'local' to start a Ray instance on this machine for the job; 'none' keeps it on this "
                       f"machine's worker{' even though ' + CLUSTER_ENV + ' is set' if default else ''}. "
                       "The results are the same either way; the time above is this machine's.")
    try:
        parse_cluster(st.session_state.get("bj_cluster", ""))
    except ValueError as e:
        st.error(str(e), icon="⚠️")


def launch_panel(has_jobs: bool):
    prefill = st.session_state.pop(PREFILL, None)
    if prefill:
        try:
            apply_prefill(prefill)
        except (ValueError, KeyError) as e:
            st.warning(f"The view from Explore could not be turned into a job ({e}); the form keeps its values.")
            prefill = None
    with st.expander("New job", expanded=not has_jobs or bool(prefill), icon=":material/rocket_launch:"):
        if prefill:
            st.info("The form holds your Explore view: check the starts and steps, then launch.",
                    icon=":material/input:")
        cluster_field()
        preset_tab, custom_tab = st.tabs(["Shipped benchmark", "Custom job"],
                                         default="Custom job" if prefill else None)
        with preset_tab:
            name = st.selectbox("Benchmark", list(benchmarks.PRESETS), key="bj_preset_name",
                                format_func=lambda k: f"{k} — {benchmarks.PRESETS[k]['about']}")
            ok = show_cost(JobConfig.from_dict(benchmarks.preset_config(name)), "bj_preset")
            if st.button("Launch benchmark", key="bj_launch_preset", type="primary", disabled=not ok):
                launch(benchmarks.preset_config(name))
        with custom_tab:
            ok = False
            try:
                cfg = custom_config()
                valid = JobConfig.from_dict(cfg)
                ok = show_cost(valid, "bj")
            except (ValueError, KeyError) as e:
                cfg = None
                st.error(str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e), icon="⚠️")
            if st.button("Launch job", key="bj_launch", type="primary", disabled=cfg is None or not ok):
                launch(cfg)
