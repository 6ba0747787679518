"""Benchmark page: launch jobs (a separate worker process each), watch them, open their results.

From how much of the landscape, and for which settings, does each method reach the Pareto set, and how
fast? Widgets -> a job config -> ``jobs.worker.launch`` (a worker process); the job list polls the
store once a second; a finished job's results are read from the store and drawn by figures.benchmark.
"""
from __future__ import annotations

import json
import time

import streamlit as st

import optimizers

from figures import benchmark as figs
from figures import vocabulary as vocab
from jobs import benchmarks
from jobs.config import JobConfig, differences
from jobs.results import JobResult, load_result
from jobs.store import ACTIVE, Store
from views import benchmark_form as form
from views import common
from views import export

common.freeze_imported_heap()

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


def _rate(r) -> str:
    if not r:
        return vocab.MISSING
    return f"{r / 1e6:.2f} M run-steps/s" if r >= 1e5 else f"{r:,.0f} run-steps/s"


def _job_label(job: dict) -> str:
    """A job in the picker: its name, when it was created, its id. Its status is not in the label (a label is
    fixed for the run that drew it); the job's own heading shows the status, live."""
    when = time.strftime("%d %b %H:%M", time.localtime(job["created"]))
    return f"{job['name']} · {when} · {job['id']}"


def _picker(label: str, ids: list[str], param: str, fmt):
    """A job selectbox bound to the URL query parameter ``param`` by job id."""
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
             "time left": vocab.duration(j["eta_s"]) if j["status"] == "running" else "",
             "chunks": f"{j['chunks_done']}/{j['chunks_total']}",
             "wall": vocab.duration(j["wall_s"]) if j["wall_s"] else "",
             "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j["created"])),
             "message": j["message"], "id": j["id"]} for j in all_jobs]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="bench_jobs_table",
                 column_config={"progress": st.column_config.ProgressColumn("progress", min_value=0.0,
                                                                            max_value=1.0, format="percent")})
    for j in all_jobs:
        if j["status"] in ACTIVE:
            c1, c2 = st.columns([5, 1], vertical_alignment="center")
            info = (f"**{j['name']}** · {j['status']} · {j['fraction']:.0%} · {_rate(j['rate'])} · "
                    f"time left {vocab.duration(j['eta_s'])}" if j["status"] == "running"
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
    method = c1.selectbox("Method", methods, format_func=form._method_label, key="bv_sweep_method")
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
    """Another job beside this one — only one whose shares mean the same thing (same landscape and starts)."""
    me = JobConfig.from_dict(job["config"])
    others, refused = [], []
    for j in all_jobs:
        if j["id"] == job["id"] or not (j["status"] == "finished" or j["chunks_done"]):
            continue
        try:
            blockers, _ = differences(me, JobConfig.from_dict(j["config"]))
        except (ValueError, KeyError):
            blockers = ["a config this version cannot read"]
        (refused.append((j, blockers)) if blockers else others.append(j))
    if refused:
        st.caption("Not comparable with this job (different runs' starting conditions): " +
                   "; ".join(f"{j['name']} ({', '.join(b)})" for j, b in refused[:6]) +
                   (f"; and {len(refused) - 6} more" if len(refused) > 6 else "") + ".")
    if not others:
        st.info("No other job has this job's landscape and start points yet: run one to compare with this one "
                "(e.g. another pipeline, learning rate or set of methods).")
        return
    other_id = _picker("Compare with", [j["id"] for j in others], "compare",
                       lambda i: _job_label(next(j for j in others if j["id"] == i)))
    other = next(j for j in others if j["id"] == other_id)
    _, diff = differences(me, JobConfig.from_dict(other["config"]))
    st.caption("The two jobs differ in: " + ("; ".join(diff) if diff else "nothing but their runs") + ".")
    value = st.selectbox("Value", VALUE_CHOICES, format_func=lambda v: figs.VALUE_LABELS.get(v, v), key="bv_cmp_value")
    t_other = _table(root, other["id"], _stamp(other))
    name_a, name_b = f"A: {job['name']}", f"B: {other['name']}"
    fig = figs.compare_chart(table, t_other, name_a, name_b, value)
    st.plotly_chart(fig, key="bv_cmp_chart")
    cmp = benchmarks.compare_table(table, t_other, name_a, name_b)
    st.dataframe(cmp.rename(columns=lambda c: _words(c)), hide_index=True, key="bv_cmp_table")
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


def _words(column: str) -> str:
    """A compare-table header: "reached_share · A: name" -> "Reached the optimum (share) · A: name"."""
    head, sep, tail = column.partition(" · ")
    return vocab.header(head) + sep + tail


PANELS_PER_PAGE = 24        # basin maps per page: every variant is reachable, a page stays quick to draw


def _status_text(job: dict) -> tuple[str, str]:
    """(the status word, what it means now): "running", "62% · 41 M run-steps/s · time left 3 min"."""
    status = job["status"]
    if status == "running" and job["chunks_total"] and job["chunks_done"] >= job["chunks_total"]:
        return "finishing", "every chunk is done; merging the results"
    if status == "running":
        return status, f"{job['fraction']:.0%} · {_rate(job['rate'])} · time left {vocab.duration(job['eta_s'])}"
    if status == "queued":
        return status, "waiting for a free worker slot"
    return status, (f"wall {vocab.duration(job['wall_s'])}" if job["wall_s"] else "")


def _live_status(job_id: str, shown: tuple):
    """The job's heading and status line, polled every second while it is active; the page reruns when the
    status or the completed chunks change, so what is drawn below never lags behind what the line says."""
    job = _store().get(job_id)
    if job is None:
        return
    if (job["status"], job["chunks_done"]) != shown:
        st.rerun(scope="app")
    st.subheader(f"{STATUS_ICONS.get(job['status'], '')} {job['name']}")
    cfg = job["config"]
    starts = cfg.get("starts") if isinstance(cfg.get("starts"), str) else f"{len(cfg.get('starts', []))} points"
    word, detail = _status_text(job)
    st.caption(f"job `{job['id']}` · {cfg.get('landscape')} · {starts} · {cfg.get('steps'):,} steps · "
               f"{cfg.get('pipeline')} · {cfg.get('optimizer')} · status **{word}**" + (f" · {detail}" if detail else "")
               + _ran_on(str(_store().root), job_id))


def job_view(job: dict, all_jobs: list[dict], root: str):
    status = job["status"]
    st.fragment(_live_status, run_every=1 if status in ACTIVE else None)(job["id"],
                                                                         (status, job["chunks_done"]))
    cfg = job["config"]
    if job["message"]:
        (st.error if status == "failed" else st.info)(job["message"])
    if status in ACTIVE and not job["chunks_done"]:
        st.info("The job is " + status + "; its results appear here when its first chunks are done "
                "(the status above updates every second).")
        return
    if status in ACTIVE and job["chunks_done"] >= job["chunks_total"]:
        st.info("Every chunk is done; the results are being merged and appear in a moment.")
        return
    res = _result(root, job["id"], _stamp(job))
    if status == "running":
        st.info(f"Results so far: {len(res.chunks)} of {job['chunks_total']} chunks (the job is still running).")
    elif status != "finished":
        st.warning(f"Partial results: {len(res.chunks)} of {job['chunks_total']} chunks completed.")
    for note in res.notes:
        st.warning(note)
    if not len(res.runs):
        st.info("No completed chunks.")
        return
    table = _table(root, job["id"], _stamp(job))
    n_opt = len(res.landscape.optima(res.config.task_weights[0] if res.config.task_weights else None,
                                     res.config.scale))
    tabs = st.tabs(["Basin maps", "Success table", "Sweep", "Compare", "Runs", "Config"])
    with tabs[0]:
        basin_tab(job, res, root, n_opt)
    with tabs[1]:
        st.caption(vocab.legend_note() + " Steps: the first step within 0.1 of the minimiser (median and 90th "
                   "percentile over the runs that reached it); engine time: the method's (sweep cells share it).")
        shown = vocab.success_table(table)
        steps_fmt = st.column_config.NumberColumn(format="%d")
        st.dataframe(shown, hide_index=True, key="bv_table",
                     column_config={vocab.header("reached_share"): st.column_config.NumberColumn(format="percent"),
                                    vocab.header("pareto_share"): st.column_config.NumberColumn(format="percent"),
                                    **{vocab.header(c): steps_fmt for c in vocab.STEP_COLUMNS},
                                    vocab.header("final_distance"): st.column_config.NumberColumn(format="%.3g"),
                                    vocab.header("wall_s"): st.column_config.NumberColumn(format="%.2f")})
        fig = figs.success_chart(table)
        st.plotly_chart(fig, key="bv_success_chart")
        b1, b2 = st.columns(2)
        with b1:
            _csv_button(shown, f"{job['id']}-success", key="bv_table_csv")
        with b2:
            _fig_button(fig, f"{job['id']}-success", key="bv_success_dl")
    with tabs[2]:
        sweep_view(table, res, job["id"])
        export.job_export_panel(res, "bench_sweep")
    with tabs[3]:
        compare_view(job, table, all_jobs, root)
    with tabs[4]:
        frame = vocab.job_runs_table(res.frame(), n_opt)
        st.caption(f"{len(frame):,} runs" + (" (first 2 000 shown; the CSV has all)" if len(frame) > 2000 else ""))
        st.dataframe(frame.head(2000), hide_index=True, key="bv_runs")
        _csv_button(frame, f"{job['id']}-runs", key="bv_runs_csv", label="Download all runs (CSV)")
    with tabs[5]:
        st.json(cfg, expanded=False)
        st.download_button("Download config (JSON)", json.dumps(cfg, indent=2, sort_keys=True),
                           file_name=f"{job['id']}.json", mime="application/json", key="bv_cfg_dl",
                           on_click="ignore", icon=":material/download:")
        st.caption(f"Run it headless: `python -m trajectories bench {job['id']}.json`")


def basin_tab(job: dict, res, root: str, n_opt: int):
    """Every variant's basin map, a page of ``PANELS_PER_PAGE`` at a time, and the outcome counts in words."""
    var = res.variants
    ids = list(var["variant"])
    label = dict(zip(var["variant"], var["label"]))
    c1, c2, c3 = st.columns([3, 1, 1])
    chosen = c1.multiselect("Methods shown (all when empty)", ids, default=[], key="bv_panels",
                            format_func=lambda i: str(label[i]))
    pool = chosen or ids
    pages = max(1, -(-len(pool) // PANELS_PER_PAGE))
    page = c2.selectbox(f"Page (of {pages})", list(range(pages)), key="bv_panel_page",
                        format_func=lambda p: f"{p * PANELS_PER_PAGE + 1}–"
                                              f"{min(len(pool), (p + 1) * PANELS_PER_PAGE)} of {len(pool)}") \
        if pages > 1 else 0
    seed = c3.selectbox("Seed", list(res.config.seeds), key="bv_seed") if len(res.config.seeds) > 1 \
        else res.config.seeds[0]
    shown = pool[page * PANELS_PER_PAGE:(page + 1) * PANELS_PER_PAGE]
    fig = _basins(root, job["id"], _stamp(job), int(seed), tuple(int(i) for i in shown))
    st.plotly_chart(fig, key="bv_basins", config={"displaylogo": False})
    _fig_button(fig, f"{job['id']}-basins", key="bv_basins_dl")
    counts = res.frame().groupby(["label", "outcome"], sort=False).size().unstack(fill_value=0)
    order = [o for o in vocab.OUTCOME_ORDER if o in counts.columns]
    counts = counts[order].rename(columns=lambda o: vocab.outcome_words(o, n_opt))
    counts = counts.rename_axis(columns=None).reset_index().rename(columns={"label": vocab.header("label")})
    st.caption("How many runs reached what (all seeds)")
    st.dataframe(counts, hide_index=True, key="bv_counts")
    _csv_button(counts, f"{job['id']}-outcomes", key="bv_counts_csv")
    export.job_export_panel(res, "bench_basin")


# ---------------------------------------------------------------------------------------------
# The page.

st.title("Benchmark")
st.caption("From how much of the landscape, and for which settings, does each method reach the Pareto set "
           "— and how fast? Jobs run in their own worker process; they keep running if you leave this page.")
for problem in optimizers.load_errors():     # a GRADSCAPE_METHODS file that broke a rule; the rest works
    st.warning(problem)
store = _store()
form.launch_panel(bool(store.list_jobs(limit=1)))
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
