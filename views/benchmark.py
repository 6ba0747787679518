"""Benchmark page: launch jobs (a separate worker process each), watch them, open their results.

From how much of the landscape, and for which settings, does each method reach the Pareto set, and how
fast? Widgets -> a job config -> ``jobs.worker.launch`` (a worker process); the job list polls the
store once a second; a finished job's results are read from the store and drawn by figures.benchmark.
"""
from __future__ import annotations

import json
import math
import os
import time

import streamlit as st

import landscapes
from landscapes import custom
import optimizers
from figures import benchmark as figs
from jobs import benchmarks, worker
from jobs.config import CLUSTER_ENV, JobConfig, parse_cluster, parse_values
from jobs.results import JobResult, load_result
from jobs.store import ACTIVE, Store
from views import export

STATUS_ICONS = {"queued": ":material/schedule:", "running": ":material/play_circle:",
                "finished": ":material/check_circle:", "failed": ":material/error:", "cancelled": ":material/cancel:"}
VALUE_CHOICES = ("reached_share", "pareto_share", "median_steps", "p90_steps", "median_steps_pareto",
                 "final_distance")


# ---------------------------------------------------------------------------------------------
# Helpers (cached reads; formatting).

def _store() -> Store:
    return Store()


@st.cache_data(max_entries=12, show_spinner="Loading the job's results…")
def _result(root: str, job_id: str, stamp) -> JobResult:
    return load_result(Store(root, reap=False), job_id)


@st.cache_data(max_entries=24, show_spinner=False)
def _table(root: str, job_id: str, stamp, by: str = "variant"):
    return benchmarks.success_table(_result(root, job_id, stamp), by=by)


@st.cache_data(max_entries=12, show_spinner="Drawing the basin maps…")
def _basins(root: str, job_id: str, stamp, seed: int, variants: tuple):
    return figs.basin_maps(_result(root, job_id, stamp), seed=seed, variants=list(variants))


def _stamp(job: dict):
    return (job["status"], job["chunks_done"], job["finished"])


def _duration(s) -> str:
    if s is None or (isinstance(s, float) and not math.isfinite(s)):
        return "–"
    s = max(0.0, float(s))
    if s < 60:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{int(s // 60)} min {int(s % 60):02d} s"
    return f"{int(s // 3600)} h {int(s % 3600 // 60):02d} min"


def _rate(r) -> str:
    if not r:
        return "–"
    return f"{r / 1e6:.2f} M run-steps/s" if r >= 1e5 else f"{r:,.0f} run-steps/s"


def _job_label(job: dict) -> str:
    return f"{job['name']} · {job['status']} · {job['id']}"


def _picker(label: str, ids: list[str], param: str, fmt):
    """A job selectbox bound to the URL query parameter ``param`` by job id (the labels change with a
    job's status, so Streamlit's own binding, which stores the label, is not used)."""
    key = f"{param}_pick"
    if st.session_state.get(key) not in ids:
        wanted = st.query_params.get(param)
        st.session_state[key] = wanted if wanted in ids else ids[0]
    picked = st.selectbox(label, ids, key=key, format_func=fmt)
    if st.query_params.get(param) != picked:
        st.query_params[param] = picked
    return picked


def _csv_button(df, name: str, key: str, label: str = "Download CSV"):
    st.download_button(label, data=lambda: df.to_csv(index=False).encode(), file_name=f"{name}.csv",
                       mime="text/csv", key=key, on_click="ignore", icon=":material/download:")


def _fig_button(fig, name: str, key: str):
    st.download_button("Download figure (HTML)", data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
                       file_name=f"{name}.html", mime="text/html", key=key, on_click="ignore",
                       icon=":material/download:")


# ---------------------------------------------------------------------------------------------
# Launch.

def _method_label(key: str) -> str:
    return optimizers.get(key).label


def _sweep_choices(methods) -> list[str]:
    out = []
    for m in methods:
        for h in optimizers.get(m).hparams:
            out.append(f"{m}.{h.name}")
    return out


def _default_values(choice: str) -> str:
    m, name = choice.split(".", 1)
    h = optimizers.get(m).hparam(name)
    if h.integer:
        lo, hi = int(h.low), int(min(h.high, h.low + 4))
        return ", ".join(str(v) for v in range(lo, hi + 1))
    if h.log and h.low > 0:
        return f"log({h.low:g}, {h.high:g}, 5)"
    return f"lin({h.low:g}, {h.high:g}, 5)"


CUSTOM = "custom"
CUSTOM_EXAMPLE = ('{"name": "bowls", "tasks": ["(x1-1)^2 + x2^2", "(x1+1)^2 + x2^2"],\n'
                  ' "bounds": [[-5, 5], [-5, 5]]}')


def _custom_spec(text: str) -> dict:
    """A custom landscape's definition from the form: JSON or YAML text, or an encoded link value."""
    text = text.strip()
    return custom.decode_spec(text) if text.startswith("1.") else custom.parse_text(text)


def _custom_config() -> dict:
    """The config dict the custom-job widgets describe."""
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
            starts = f"grid:{int(n)}"
        elif kind == "random":
            n = st.number_input("Number of random starts", 1, 1_000_000, 500, key="bj_random")
            seed = st.number_input("Seed of the draw", 0, 2 ** 31 - 1, 0, key="bj_random_seed")
            starts = f"random:{int(n)}:{int(seed)}"
        elif kind == "preset":
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
        name = a1.text_input("Job name", "", key="bj_name")
        record_every = a2.number_input("Record positions every k steps", 1, 1_000_000,
                                       max(1, min(500, int(steps) // 40)), key="bj_record_every")
        early = a3.checkbox("Stop early once every run has stopped moving", True, key="bj_early")
    cfg = {"name": name.strip(), "landscape": land.key, "landscape_spec": spec,
           "methods": "all" if all_methods else methods,
           "starts": starts, "steps": int(steps), "pipeline": pipeline, "optimizer": optimizer,
           "lr": lr, "seeds": seeds, "record_every": int(record_every), "early_exit": bool(early)}
    if weights.strip():
        sets = [s for s in weights.split(";") if s.strip()]
        tw = [parse_values(s, "task_weights") for s in sets]
        if len(tw) > 1:
            cfg["sweep"] = {"task_weights": tw}
        else:
            cfg["task_weights"] = tw[0]
    if sweep:
        cfg.setdefault("sweep", {}).update(sweep)
    return cfg


def _launch(cfg_dict: dict):
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
    st.toast(f"Launched {cfg.title}: {runs:,} runs in {len(plan)} engine calls")


def _cluster_field():
    """Where the next job runs: blank for this machine's worker (or $GRADSCAPE_RAY_ADDRESS), or a Ray cluster."""
    default = os.environ.get(CLUSTER_ENV, "").strip()
    st.text_input("Ray cluster", "", key="bj_cluster",
                  placeholder=f"{default} (from {CLUSTER_ENV})" if default else "blank: this machine's worker process",
                  help="Run the job's chunks as Ray tasks: a running cluster's HOST:PORT (or ray://HOST:PORT), or "
                       "'local' to start a Ray instance on this machine for the job; 'none' keeps it on this "
                       f"machine's worker{' even though ' + CLUSTER_ENV + ' is set' if default else ''}. "
                       "The results are the same either way.")
    try:
        parse_cluster(st.session_state.get("bj_cluster", ""))
    except ValueError as e:
        st.error(str(e), icon="⚠️")


def launch_panel(has_jobs: bool):
    with st.expander("New job", expanded=not has_jobs, icon=":material/rocket_launch:"):
        _cluster_field()
        preset_tab, custom_tab = st.tabs(["Shipped benchmark", "Custom job"])
        with preset_tab:
            name = st.selectbox("Benchmark", list(benchmarks.PRESETS), key="bj_preset_name",
                                format_func=lambda k: f"{k} — {benchmarks.PRESETS[k]['about']}")
            if st.button("Launch benchmark", key="bj_launch_preset", type="primary"):
                _launch(benchmarks.preset_config(name))
        with custom_tab:
            try:
                cfg = _custom_config()
                valid = JobConfig.from_dict(cfg)
                plan = valid.plan()
                runs = sum(c.runs for c in plan)
                st.caption(f"{len(valid.variants())} variants × {len(valid.seeds)} seeds × "
                           f"{len(valid.start_points()):,} starts = **{runs:,} runs** × {valid.steps:,} steps, "
                           f"in {len(plan)} engine calls.")
                error = None
            except (ValueError, KeyError) as e:
                cfg, error = None, (str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e))
                st.error(error, icon="⚠️")
            if st.button("Launch job", key="bj_launch", type="primary", disabled=cfg is None):
                _launch(cfg)


# ---------------------------------------------------------------------------------------------
# Live job list.

def job_list(active: bool):
    """The live job list: polls the store every second while a job is queued or running (every 5 s
    otherwise, to notice jobs started elsewhere, e.g. from the CLI)."""
    st.fragment(_job_list, run_every=1 if active else 5)()


def _job_list():
    store = _store()
    all_jobs = store.list_jobs(limit=200)
    sig = tuple((j["id"], j["status"]) for j in all_jobs)
    before = st.session_state.get("bench_sig")
    st.session_state["bench_sig"] = sig
    if before is not None and before != sig:
        st.rerun()   # a job started, finished or failed: refresh the whole page (its viewer)
    if not all_jobs:
        st.info("No jobs yet: launch one above, or from a terminal with "
                "`python -m trajectories bench --preset paper-one-optimum`.")
        return
    import pandas as pd
    rows = [{"job": j["name"], "status": j["status"],
             "progress": j["fraction"] if j["status"] != "finished" else 1.0,
             "speed": _rate(j["rate"]) if j["status"] == "running" else "",
             "time left": _duration(j["eta_s"]) if j["status"] == "running" else "",
             "chunks": f"{j['chunks_done']}/{j['chunks_total']}",
             "wall": _duration(j["wall_s"]) if j["wall_s"] else "",
             "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j["created"])),
             "message": j["message"], "id": j["id"]} for j in all_jobs]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="bench_jobs_table",
                 column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0,
                                                                            max_value=1.0, format="percent")})
    for j in all_jobs:
        if j["status"] in ACTIVE:
            c1, c2 = st.columns([5, 1], vertical_alignment="center")
            info = (f"**{j['name']}** · {j['status']} · {j['fraction']:.0%} · {_rate(j['rate'])} · "
                    f"time left {_duration(j['eta_s'])}" if j["status"] == "running"
                    else f"**{j['name']}** · queued (waiting for a free worker slot)")
            c1.progress(min(max(j["fraction"], 0.0), 1.0), text=info)
            if j["cancel"]:
                c2.caption("cancelling…")
            elif c2.button("Cancel", key=f"cancel-{j['id']}", icon=":material/stop_circle:"):
                store.request_cancel(j["id"])
                st.toast(f"Cancelling {j['name']}")


# ---------------------------------------------------------------------------------------------
# Viewing a job.

def _swept_filters(table, res, method: str, keep: list[str]):
    """Fix the other swept settings of ``method`` to chosen values (or average over them)."""
    other = [s for s in res.swept if s not in keep]
    t = table[table["method"] == method]
    for s in other:
        vals = sorted(t[s].dropna().unique().tolist(), key=str)
        if len(vals) <= 1:
            continue
        pick = st.selectbox(f"{s}", ["mean over all"] + vals, key=f"bv_fix_{method}_{s}")
        if pick != "mean over all":
            t = t[t[s] == pick]
    return t


def sweep_view(table, res, job_id: str):
    swept = res.swept
    methods = [m for m in dict.fromkeys(table["method"]) if table.loc[table["method"] == m, swept].nunique().max() > 1]
    if not methods:
        st.info("Every variant of this job has one setting: nothing was swept.")
        return
    c1, c2 = st.columns(2)
    method = c1.selectbox("Method", methods, format_func=_method_label, key="bv_sweep_method")
    value = c2.selectbox("Value", VALUE_CHOICES, format_func=lambda v: figs.VALUE_LABELS.get(v, v), key="bv_sweep_value")
    t = table[table["method"] == method]
    varying = [s for s in swept if t[s].nunique() > 1]
    if len(varying) >= 2:
        c3, c4 = st.columns(2)
        x = c3.selectbox("x axis", varying, index=0, key="bv_sweep_x")
        y = c4.selectbox("y axis", [s for s in varying if s != x], index=0, key="bv_sweep_y")
        t = _swept_filters(table, res, method, [x, y])
        fig = figs.sweep_heatmap(t, x, y, value, method=method)
        if len(varying) > 2:
            st.caption("Settings not on the axes are averaged unless fixed above.")
    else:
        x = varying[0]
        fig = figs.sweep_line(t, x, value)
    st.plotly_chart(fig, key="bv_sweep_chart")
    _fig_button(fig, f"{job_id}-sweep-{method}", key="bv_sweep_fig_dl")
    cols = ["label"] + varying + [value]
    _csv_button(t[cols], f"{job_id}-sweep-{method}", key="bv_sweep_csv")


def compare_view(job: dict, table, all_jobs: list[dict], root: str):
    others = [j for j in all_jobs if j["id"] != job["id"] and (j["status"] == "finished" or j["chunks_done"])]
    if not others:
        st.info("Run another job to compare it with this one.")
        return
    other_id = _picker("Compare with", [j["id"] for j in others], "compare",
                       lambda i: _job_label(next(j for j in others if j["id"] == i)))
    other = next(j for j in others if j["id"] == other_id)
    value = st.selectbox("Value", VALUE_CHOICES, format_func=lambda v: figs.VALUE_LABELS.get(v, v), key="bv_cmp_value")
    t_other = _table(root, other["id"], _stamp(other))
    name_a, name_b = f"A: {job['name']}", f"B: {other['name']}"
    fig = figs.compare_chart(table, t_other, name_a, name_b, value)
    st.plotly_chart(fig, key="bv_cmp_chart")
    cmp = benchmarks.compare_table(table, t_other, name_a, name_b)
    st.dataframe(cmp, hide_index=True, key="bv_cmp_table")
    b1, b2 = st.columns(2)
    with b1:
        _csv_button(cmp, f"compare-{job['id']}-{other['id']}", key="bv_cmp_csv")
    with b2:
        _fig_button(fig, f"compare-{job['id']}-{other['id']}", key="bv_cmp_fig_dl")


def _ran_on(root: str, job_id: str) -> str:
    """' · ran on cpu (c)': the device and backends the worker recorded, or '' before it has."""
    try:
        ran = json.loads(Store(root, reap=False).path(job_id, "ran.json").read_text())
    except (OSError, ValueError):
        return ""
    where = f" · ran on {ran.get('device') or '?'} ({', '.join(sorted(set(ran.get('backends', {}).values())))})"
    if ran.get("cluster"):     # a Ray job: which cluster, and on how many machines so far
        n = ran.get("machines", 0)
        where += f" on Ray ({ran['cluster']}{f', {n} machines' if n > 1 else ''})"
    return where


def job_view(job: dict, all_jobs: list[dict], root: str):
    status = job["status"]
    st.subheader(f"{STATUS_ICONS.get(status, '')} {job['name']}")
    cfg = job["config"]
    st.caption(f"job `{job['id']}` · {cfg.get('landscape')} · {cfg.get('starts') if isinstance(cfg.get('starts'), str) else str(len(cfg.get('starts', []))) + ' points'}"
               f" · {cfg.get('steps'):,} steps · {cfg.get('pipeline')} · {cfg.get('optimizer')} · status **{status}**"
               + (f" · wall {_duration(job['wall_s'])}" if job["wall_s"] else "") + _ran_on(root, job["id"]))
    if job["message"]:
        (st.error if status == "failed" else st.info)(job["message"])
    if status in ACTIVE and not job["chunks_done"]:
        st.info("The job is " + status + "; its results appear here when its first chunks are done "
                "(the list above updates every second).")
        return
    res = _result(root, job["id"], _stamp(job))
    if status != "finished":
        st.warning(f"Partial results: {len(res.chunks)} of {job['chunks_total']} chunks completed.")
    for note in res.notes:
        st.warning(note)
    if not len(res.runs):
        st.info("No completed chunks.")
        return
    table = _table(root, job["id"], _stamp(job))
    tabs = st.tabs(["Basin maps", "Success table", "Sweep", "Compare", "Runs", "Config"])
    with tabs[0]:
        var = res.variants
        ids = list(var["variant"])
        c1, c2 = st.columns([3, 1])
        shown = c1.multiselect("Panels", ids, default=ids[:min(len(ids), 12)], key="bv_panels",
                               format_func=lambda i: str(var.loc[var["variant"] == i, "label"].iloc[0]))
        seed = c2.selectbox("Seed", list(res.config.seeds), key="bv_seed") if len(res.config.seeds) > 1 \
            else res.config.seeds[0]
        if shown:
            fig = _basins(root, job["id"], _stamp(job), int(seed), tuple(int(i) for i in shown))
            st.plotly_chart(fig, key="bv_basins", config={"displaylogo": False})
            _fig_button(fig, f"{job['id']}-basins", key="bv_basins_dl")
        counts = res.frame().groupby(["label", "outcome"]).size().unstack(fill_value=0).reset_index()
        st.caption("Outcome counts (all seeds)")
        st.dataframe(counts, hide_index=True, key="bv_counts")
        _csv_button(counts, f"{job['id']}-outcomes", key="bv_counts_csv")
        export.job_export_panel(res, "bench_basin")
    with tabs[1]:
        st.caption("**reached**: ends within 0.1 of a global minimiser of the summed loss (the paper's count); "
                   "**pareto**: ends within 0.1 of the Pareto set; steps: first step within 0.1 of the minimiser "
                   "(median / 90th percentile over the runs that reached it); wall time: the method's engine time "
                   "(sweep cells share it).")
        steps_fmt = st.column_config.NumberColumn(format="%.0f")
        st.dataframe(table, hide_index=True, key="bv_table",
                     column_order=[c for c in table.columns if c != "name"],
                     column_config={"reached_share": st.column_config.NumberColumn(format="percent"),
                                    "pareto_share": st.column_config.NumberColumn(format="percent"),
                                    "median_steps": steps_fmt, "p90_steps": steps_fmt,
                                    "median_steps_pareto": steps_fmt, "p90_steps_pareto": steps_fmt,
                                    "final_distance": st.column_config.NumberColumn(format="%.3g"),
                                    "wall_s": st.column_config.NumberColumn("wall s", format="%.2f")})
        fig = figs.success_chart(table)
        st.plotly_chart(fig, key="bv_success_chart")
        b1, b2 = st.columns(2)
        with b1:
            _csv_button(table, f"{job['id']}-success", key="bv_table_csv")
        with b2:
            _fig_button(fig, f"{job['id']}-success", key="bv_success_dl")
    with tabs[2]:
        sweep_view(table, res, job["id"])
        export.job_export_panel(res, "bench_sweep")
    with tabs[3]:
        compare_view(job, table, all_jobs, root)
    with tabs[4]:
        frame = res.frame()
        st.caption(f"{len(frame):,} runs" + (" (first 2 000 shown; the CSV has all)" if len(frame) > 2000 else ""))
        st.dataframe(frame.head(2000), hide_index=True, key="bv_runs")
        _csv_button(frame, f"{job['id']}-runs", key="bv_runs_csv", label="Download all runs (CSV)")
    with tabs[5]:
        st.json(cfg, expanded=False)
        st.download_button("Download config (JSON)", json.dumps(cfg, indent=2, sort_keys=True),
                           file_name=f"{job['id']}.json", mime="application/json", key="bv_cfg_dl",
                           on_click="ignore", icon=":material/download:")
        st.caption(f"Run it headless: `python -m trajectories bench {job['id']}.json`")


# ---------------------------------------------------------------------------------------------
# The page.

st.title("Benchmark")
st.caption("From how much of the landscape, and for which settings, does each method reach the Pareto set "
           "— and how fast? Jobs run in their own worker process; they keep running if you leave this page.")
for problem in optimizers.load_errors():     # a GRADSCAPE_METHODS file that broke a rule; the rest works
    st.warning(problem)
store = _store()
launch_panel(bool(store.list_jobs(limit=1)))
all_jobs = store.list_jobs(limit=200)     # read after the launch panel: it may have added one
st.subheader("Jobs")
job_list(any(j["status"] in ACTIVE for j in all_jobs))
if all_jobs:
    st.divider()
    ids = [j["id"] for j in all_jobs]
    by_id = {j["id"]: j for j in all_jobs}
    job_id = _picker("Open a job", ids, "job", lambda i: _job_label(by_id[i]))
    if job_id in by_id:
        job_view(by_id[job_id], all_jobs, str(store.root))
