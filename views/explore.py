"""Explore: every method from every start, live.

Widgets (sidebar, views/explore_controls.py) -> page state (URL-backed, views/explore_model.py) -> engine
config -> cached engine call -> Plotly figure (figures/browser.py). The page never shows a traceback: bad
input gets a message naming the field, and the rest of the page keeps working.
"""
import sys
import time

import streamlit as st

st.title("Explore")
st.caption("Every gradient-aggregation method from every start point, on an analytic two-parameter landscape.")

_boot = st.empty()
if "trajectories" not in sys.modules:
    with _boot.status("Warming up: loading PyTorch and the engine (the first visit after a server start takes "
                      "about ten seconds)…"):
        import trajectories  # noqa: F401
_boot.empty()

from figures import browser  # noqa: E402
from figures.style import Style  # noqa: E402
from views import common  # noqa: E402
from views import export  # noqa: E402
from views import explore_controls as controls  # noqa: E402
from views import explore_model as model  # noqa: E402


def _radio(label, options: dict, key: str, state: dict, container=st, **kw):
    common.seed("x." + key, state[key] if state[key] in options else next(iter(options)))
    state[key] = container.radio(label, list(options), key="x." + key, horizontal=True,
                                 format_func=lambda k: options[k], **kw)
    return state[key]


def run_engine(cfg):
    """The cached engine call, with a warm-up notice the first time these methods run in this server."""
    cold = [m for m in cfg.methods if m not in model.WARM]
    runs = len(cfg.variants()) * len(cfg.starts)
    work = f"{runs:,} runs × {cfg.steps:,} steps"
    box = st.empty()
    t0 = time.perf_counter()
    try:
        land = cfg.land
        if not land.pareto_ready:           # a new custom landscape: its Pareto set is computed once, then cached
            with box.status(f"Computing the Pareto set of “{land.title}” numerically (once; cached on disk)…"):
                land.pareto
        if cold:
            with box.status(f"Warming up: building the kernels of {len(cold)} method(s), then {work} (the first "
                            f"run of a method after a server start takes a few seconds; later runs reuse it)…"):
                result = model.run(cfg.to_json())
        else:
            with box.container(), st.spinner(f"Running the engine: {work}…"):
                result = model.run(cfg.to_json())
    except ValueError as e:
        box.empty()
        st.error(f"Cannot run this view: {e}")
        return None, 0.0
    except Exception as e:   # a bug below the page must not take the page down
        box.empty()
        st.error(f"The engine failed on this view ({type(e).__name__}: {e}). Change a setting; the rest of the "
                 f"page keeps working.")
        return None, 0.0
    box.empty()
    model.WARM.update(cfg.methods)
    return result, time.perf_counter() - t0


def report_divergence(result, state):
    div = result.status == "diverged"
    if div.all():
        st.error(f"Every run diverged (learning rate {state['lr']:g}, {state['opt']}). Try a smaller learning rate.")
    elif div.any():
        per = ", ".join(f"{lab} {int(n)}/{div.shape[1]}" for lab, n in zip(result.labels, div.sum(1)) if n)
        st.warning(f"{int(div.sum())} of {div.size} runs diverged ({per}); their paths stop where they left "
                   f"the box of |θ| < 10⁶.")


def success_line(result) -> str:
    S = result.shape[1]
    parts = [f"{lab} {int((result.status[m] == 'converged').sum())}/{S}" for m, lab in enumerate(result.labels)]
    return "Reached the Pareto set (converged): " + " · ".join(parts)


def show_map(result, state, cfg):
    c1, c2, c3 = st.columns([2, 3, 1])
    layout = _radio("Layout", model.LAYOUTS, "layout", state, c1)
    K = result.landscape.n_tasks
    losses = {"sum": "weighted sum", **{f"task{k + 1}": f"task {k + 1}" for k in range(K)}}
    loss = _radio("Contour", losses, "loss", state, c2)
    img = _radio("Image", {f: f.upper() for f in model.IMAGE_FORMATS}, "img", state, c3,
                 help="the format of the camera button on the chart's toolbar")
    style = Style(contour=loss)
    if layout == "overlay":
        fig = browser.build_map(result, style)
    else:
        fig = browser.build_small_multiples(result, style)
    key = f"explore_map_{st.session_state.get('explore.clicks', 0)}"
    st.plotly_chart(fig, key=key, on_select=controls.on_map_click(key), selection_mode="points", theme=None,
                    config=browser.image_config(f"gradscape-{state['land']}-{layout}", img))
    if browser.playback_ok(result):
        tip = "▶ plays the runs; the slider under the map scrubs through the steps."
    else:
        tip = f"Playback is off above {browser.PLAYBACK_RUNS:,} runs."
    st.caption(success_line(result) + ".  " + tip)


def show_loss_space(result, state):
    c1, c2 = st.columns([5, 1])
    img = _radio("Image", {f: f.upper() for f in model.IMAGE_FORMATS}, "img", state, c2)
    if result.landscape.n_tasks >= 3:
        fig = browser.build_loss_space_3d(result, Style())
        c1.caption("Three tasks: (L₁, L₂, L₃) in 3-D with the Pareto front as a point cloud; drag to rotate.")
    else:
        fig = browser.build_loss_space(result, Style())
        c1.caption("Each run's path in loss space (L₁, L₂) with the Pareto front (thick line). A method that stops "
                   "on the front is Pareto-stationary.")
    st.plotly_chart(fig, key="explore_loss", theme=None,
                    config=browser.image_config(f"gradscape-{state['land']}-loss-space", img))


def _clamp(state, key, n, what):
    if not 0 <= state[key] < n:
        st.warning(f"URL parameter `{key}={state[key]}`: there are only {n} {what}; showing the first.")
        state[key] = 0


def show_diagnostics(result, state, cfg):
    M, S = result.shape
    _clamp(state, "drow", M, "methods")
    _clamp(state, "dstart", S, "starts")
    c1, c2, c3 = st.columns([2, 2, 3])
    common.seed("x.drow", state["drow"])
    state["drow"] = c1.selectbox("Method", list(range(M)), key="x.drow", format_func=lambda m: result.labels[m])
    common.seed("x.dstart", state["dstart"])
    state["dstart"] = c2.selectbox("Start", list(range(S)), key="x.dstart",
                                   format_func=lambda s: f"#{s + 1} ({result.starts[s, 0]:.3g}, "
                                                         f"{result.starts[s, 1]:.3g})")
    steps = int(result.record_steps[-1])
    common.seed("x.dstep", min(int(state["dstep"]), steps))
    state["dstep"] = int(c3.slider("Step (arrows)", 0, steps, step=int(cfg.record_every), key="x.dstep"))
    row, start = state["drow"], state["dstart"]
    t = browser.nearest_record(result, state["dstep"])
    left, right = st.columns([1, 1])
    with left:
        st.plotly_chart(browser.build_arrows(result, row, start, t), key="explore_arrows", theme=None,
                        config=browser.image_config("gradscape-gradients", state["img"]))
        st.caption("Arrows point downhill: −g₁, −g₂ (the task gradients) and −d (the direction the method "
                   "applied), drawn with one common length scale; the labels give their true norms.")
        status = result.status[row, start]
        st.caption(f"Status: **{status}** (step {int(result.status_step[row, start]):,}); outcome "
                   f"{result.outcome[row, start]}; distance to the Pareto set "
                   f"{result.pareto_distance[row, start]:.3g}.")
    with right:
        st.plotly_chart(browser.build_diagnostics(result, row, start, mark_step=int(result.record_steps[t])),
                        key="explore_diag", theme=None, config=browser.image_config("gradscape-diagnostics", "png"))


def show_table(result):
    st.subheader("Per method")
    summ = result.summary()
    S = result.shape[1]
    summ.insert(2, "success", [f"{c}/{S}" for c in summ["converged"]])
    st.dataframe(summ.drop(columns=["method"]), hide_index=True, width="stretch")
    st.caption("success = runs that end within 0.1 of the Pareto set (converged); optimum = runs that reach a "
               "global minimiser of the weighted sum.")
    st.subheader("Per method and start")
    fr = result.to_frame()
    K = result.final_losses.shape[-1]
    cols = ["label", "start_x", "start_y"] + [f"final_L{k + 1}" for k in range(K)] + \
        ["pareto_distance", "steps_to_pareto", "status", "status_step", "outcome"]
    st.dataframe(fr[cols], hide_index=True, width="stretch")


def downloads(result, cfg):
    st.divider()
    c = st.columns(4)
    c[0].download_button("Result (.npz)", data=lambda: model.result_npz(result), file_name="gradscape-result.npz",
                         mime="application/octet-stream", on_click="ignore", key="dl.npz",
                         help="trajectories.Result.load() reads it back")
    c[1].download_button("Trajectories (.csv)", data=lambda: model.trajectories_csv(result),
                         file_name="gradscape-trajectories.csv", mime="text/csv", on_click="ignore", key="dl.csv")
    c[2].download_button("Config (.json)", data=model.config_json(cfg), file_name="gradscape-config.json",
                         mime="application/json", on_click="ignore", key="dl.json")
    c[3].caption("Figure: the camera button on a chart's toolbar saves it as PNG or SVG; the panel below makes "
                 "publication files (PDF, SVG, PNG, PGF) and animations (GIF, MP4).")
    export.export_panel(result, "explore")


def main():
    state, problems = model.page_state()
    for p in problems:
        st.warning(p)
    for note in st.session_state.pop("explore.notes", []):
        st.info(note)
    toast = st.session_state.pop("explore.toast", None)
    if toast:
        st.toast(toast)
    if state["teach"]:
        plain = {k: v for k, v in model.url_params(state).items() if k != "teach"}
        st.link_button("Show the controls", "?" + common.query_string(plain))
    else:
        controls.sidebar(state)
    view = _radio("View", model.VIEWS, "view", state, label_visibility="collapsed")
    try:
        cfg = model.build_config(state)
    except ValueError as e:
        cfg = None
        st.error(f"Cannot run this view: {e}")
    result = None
    if cfg is not None:
        result, took = run_engine(cfg)
        if result is not None:
            st.session_state["explore.last"] = (result, cfg)
            st.session_state["explore.config"] = cfg.to_dict()
            M, S = result.shape
            ran = f"{result.timings.get('device', 'cpu')}, {'/'.join(sorted(set(result.timings['backends'].values())))}"
            st.caption(f"{M} method(s) × {S} start(s) × {cfg.steps:,} steps: engine {result.timings['wall_s']:.2f} s "
                       f"on {ran} "
                       f"(page call {took:.2f} s, cached when revisited); paths recorded every {cfg.record_every} "
                       f"steps, drawn decimated.")
            report_divergence(result, state)
    if result is None and "explore.last" in st.session_state:
        result, cfg = st.session_state["explore.last"]
        st.caption("Showing the last view that ran.")
    if result is not None:
        try:
            if view == "map":
                show_map(result, state, cfg)
            elif view == "loss":
                show_loss_space(result, state)
            elif view == "diag":
                show_diagnostics(result, state, cfg)
            else:
                show_table(result)
        except Exception as e:   # a figure that cannot be drawn must not hide the controls
            st.error(f"Cannot draw this view ({type(e).__name__}: {e}).")
        downloads(result, cfg)
    common.sync_url(model.url_params(state))


main()
