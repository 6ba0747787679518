"""Explore: every method from every start, live.

Widgets (sidebar, views/explore_controls.py) -> page state (the address, views/explore_model.py) -> one cached
engine call per method -> a live figure (figures/browser.py) drawn in the browser (views/live_map.py). The page
never shows a traceback: bad input gets a message naming the field, and the rest of the page keeps working.

``teach=1`` is presentation mode: no sidebar, no timings, no downloads; one line says what runs, and ``knobs=``
names the controls that stay on screen (``knobs=gamma``).
"""
import sys

import streamlit as st

_boot = st.empty()
if "trajectories" not in sys.modules:
    with _boot.status("Warming up: loading PyTorch and the engine (the first visit after a server start takes "
                      "about ten seconds)…"):
        import trajectories  # noqa: F401  (loading it is the point: torch and the engine)
_boot.empty()

import optimizers  # noqa: E402
from figures import benchmark as bench_figs  # noqa: E402
from figures import browser  # noqa: E402
from figures.style import Style  # noqa: E402
from views import common  # noqa: E402
from views import explore_controls as controls  # noqa: E402
from views import explore_model as model  # noqa: E402
from views import explore_fragility  # noqa: E402
from views import explore_overlays as overlays  # noqa: E402
from views import explore_playground  # noqa: E402
from views import export  # noqa: E402
from views import live_map  # noqa: E402
from views import outcomes  # noqa: E402
from views import prepare  # noqa: E402

common.freeze_imported_heap()

MAP_KEY = "explore_map"
PRESENTATION_HEIGHT = 520      # the map and its controls fit above the fold of a 1280 x 720 screen


def _radio(label, options: dict, key: str, state: dict, container=st, **kw):
    common.seed("x." + key, state[key] if state[key] in options else next(iter(options)))
    state[key] = container.radio(label, list(options), key="x." + key, horizontal=True,
                                 format_func=lambda k: options[k], **kw)
    return state[key]


def run_engine(cfg):
    """The engine on this view (one cached call per method), with a status while kernels are built."""
    cold = model.cold_methods(cfg)
    runs = len(cfg.variants()) * len(cfg.starts)
    work = f"{runs:,} runs × {cfg.steps:,} steps"
    box = st.empty()
    try:
        land = cfg.land
        if not prepare.prepare(land, box):  # a new custom landscape's Pareto set: progress, budget, Cancel
            undo_apply()
        for note in prepare.notes(land, cfg.weight_sets[0], cfg.scale):
            st.info(note, icon=":material/info:")
        if cold:
            with box.status(f"Warming up: building the kernels of {len(cold)} method(s), then {work} (the first "
                            f"run of a method after a server start takes a few seconds; later runs reuse it)…"):
                result = model.run(cfg)
        else:
            with box.container(), st.spinner(f"Running the engine: {work}…"):
                result = model.run(cfg)
    except ValueError as e:
        box.empty()
        st.error(f"Cannot run this view: {e}")
        return None
    except Exception as e:   # a bug below the page must not take the page down
        box.empty()
        st.error(f"The engine failed on this view ({type(e).__name__}: {e}). Change a setting; the rest of the "
                 f"page keeps working.")
        return None
    box.empty()
    model.mark_warm(cfg)
    return result


def undo_apply():
    """Cancel pressed while a new landscape's Pareto set was computed: back to the view before Apply."""
    before = st.session_state.pop("explore.before_apply", None)
    state = st.session_state[model.STATE_KEY]
    if before:
        state.clear()
        state.update(before)
    controls.forget_all_widgets()
    st.session_state["explore.notes"] = ["Cancelled: the new landscape was not applied."]
    st.rerun()


def report_divergence(result, state, presenting: bool):
    outcomes.report(result, presenting)


def success_line(result) -> str:
    return outcomes.success_line(result)


def _redraw_whole_page() -> None:
    """A change the export panel (outside the live area's fragment) shows too: its "As on screen" figure."""
    st.session_state["explore.full_rerun"] = True


def _on_map_click() -> None:
    """A click on the map adds a start there, or removes the start next to it."""
    xy = live_map.click_of(MAP_KEY)
    if xy is None:
        return
    state = st.session_state[model.STATE_KEY]
    try:
        spec, note = model.click_starts(state["starts"], model.landscape_of(state), *xy)
    except ValueError as e:
        spec, note = state["starts"], f"Cannot edit the start points: {e}"
    state["starts"] = spec
    st.session_state["explore.toast"] = note
    st.session_state["explore.full_rerun"] = True       # the sidebar's start fields show the new starts
    controls.forget_start_widgets()


def show_map(result, state, presenting: bool):
    if presenting:
        layout, loss, img = state["layout"], state["loss"], state["img"]
    else:
        c1, c2, c3 = st.columns([2, 3, 1])
        layout = _radio("Layout", model.LAYOUTS, "layout", state, c1, on_change=_redraw_whole_page)
        K = result.landscape.n_tasks
        losses = {"sum": "weighted sum", **{f"task{k + 1}": f"task {k + 1}" for k in range(K)}}
        loss = _radio("Contour", losses, "loss", state, c2, on_change=_redraw_whole_page)
        img = _radio("Image", {f: f.upper() for f in model.IMAGE_FORMATS}, "img", state, c3,
                     help="the format of the camera button on the chart's toolbar")
        overlays.controls(state)
    extras, extras_key = overlays.extras(result, state)
    fig = model.map_figure(result, layout, loss, img, PRESENTATION_HEIGHT if presenting else None, extras, extras_key)
    map_first = _map_first()
    st.session_state["explore.sent_bytes"] = live_map.show(fig, key=MAP_KEY, on_click=_on_map_click,
                                                           on_drawn=_first_drawing_callback(fig))
    if not presenting and not map_first:
        st.caption(success_line(result) + ".  ▶ plays the runs; the slider under the map scrubs through the steps; "
                   "click the map to add a start, a start to remove it; double-click a method in the legend to "
                   "show it alone.")
        overlays.notes(result, state)


def show_loss_space(result, state, presenting: bool):
    if result.landscape.n_tasks >= 3:
        st.caption("Three tasks: (L₁, L₂, L₃) in 3-D with the Pareto front as a point cloud; drag to rotate.")
        st.plotly_chart(browser.build_loss_space_3d(result, Style()), key="explore_loss3d", theme=None,
                        config=browser.image_config(f"gradscape-{state['land']}-loss-space", state["img"]))
        return
    if not presenting:
        c1, c2 = st.columns([5, 1])
        _radio("Image", {f: f.upper() for f in model.IMAGE_FORMATS}, "img", state, c2)
        c1.caption("Each run's path in loss space (L₁, L₂) with the Pareto front (thick line). A method that stops "
                   "on the front is Pareto-stationary.")
    fig = model.loss_figure(result, state["img"], PRESENTATION_HEIGHT if presenting else None)
    st.session_state["explore.sent_bytes"] = live_map.show(fig, key="explore_loss",
                                                           on_drawn=_first_drawing_callback(fig))


def show_outcomes(result, state):
    grid = result.config.get("starts_spec", "").startswith("grid:")
    st.caption("What each start's run reached first, per method: the optimum, the Pareto set, or neither "
               "(stalled, still moving, blew up, turned NaN); × marks runs that reached the optimum and then turned "
               "NaN." +
               ("" if grid else " Choose an n × n grid of starts (sidebar) for a full basin map."))
    land = result.landscape
    optima = land.optima(browser.weights_of(result), browser.scale_of(result))
    fig = bench_figs.outcome_maps(bench_figs.result_panels(result), land, optima,
                                  title=f"Outcomes · {land.title}", panel_px=260)
    st.plotly_chart(fig, key="explore_outcomes", theme=None,
                    config=browser.image_config(f"gradscape-{state['land']}-outcomes", state["img"]))


def _clamp(state, key, n, what):
    if not 0 <= state[key] < n:
        st.warning(f"URL parameter `{key}={state[key]}`: there are only {n} {what}; showing the first.")
        state[key] = 0


def show_diagnostics(result, state):
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
    every = int(result.record_steps[1] - result.record_steps[0]) if len(result.record_steps) > 1 else 1
    common.seed("x.dstep", min(int(state["dstep"]), steps))
    state["dstep"] = int(c3.slider("Step (arrows)", 0, steps, step=every, key="x.dstep"))
    row, start = state["drow"], state["dstart"]
    t = browser.nearest_record(result, state["dstep"])
    left, right = st.columns([1, 1])
    with left:
        st.plotly_chart(browser.build_arrows(result, row, start, t), key="explore_arrows", theme=None,
                        config=browser.image_config("gradscape-gradients", state["img"]))
        st.caption("Arrows point downhill: −g₁, −g₂ (the task gradients) and −d (the direction the method "
                   "applied), drawn with one common length scale; the labels give their true norms.")
        st.caption(outcomes.run_caption(result, row, start))
    with right:
        st.plotly_chart(browser.build_diagnostics(result, row, start, mark_step=int(result.record_steps[t])),
                        key="explore_diag", theme=None, config=browser.image_config("gradscape-diagnostics", "png"))
        outcomes.diagnostics_help()


def show_table(result):
    outcomes.tables(result)


SHOWN = "explore.shown"     # {"result", "cfg"} of the last view that ran, updated in place by every live-area run
WHOLE_RUN = "explore.whole_run"     # True while a run of the whole page (not of the live area's fragment alone) runs
EXPORT_KEY = "explore"


def downloads():
    """The download row, "Benchmark this view" and the export panel. They are drawn below the live area and outside
    its fragment, on the runs of the whole page only: a γ move (a run of the fragment alone) does not send their
    ~20 elements again, which took ~70 ms off each nudge (alternated in one browser: 0.342 -> 0.272 s). The files
    are made on the click, from the view on screen then (``SHOWN``); a file the export panel prepared for an
    earlier view is dropped and the page redrawn (``export.prepared_for_another``)."""
    shown = st.session_state.get(SHOWN)
    if not shown:
        return
    st.divider()
    c = st.columns(4)
    c[0].download_button("Result (.npz)", data=lambda: model.result_npz(shown["result"]),
                         file_name="gradscape-result.npz", mime="application/octet-stream", on_click="ignore",
                         key="dl.npz", help="trajectories.Result.load() reads it back")
    c[1].download_button("Trajectories (.csv)", data=lambda: model.trajectories_csv(shown["result"]),
                         file_name="gradscape-trajectories.csv", mime="text/csv", on_click="ignore", key="dl.csv")
    c[2].download_button("Config (.json)", data=lambda: model.config_json(shown["cfg"]),
                         file_name="gradscape-config.json", mime="application/json", on_click="ignore",
                         key="dl.json")
    c[3].caption("Figure: the camera button on a chart's toolbar saves it as PNG or SVG; the panel below makes "
                 "publication files (PDF, SVG, PNG, PGF) and animations (GIF, MP4).")
    benchmark_this_view()
    state = st.session_state[model.STATE_KEY]
    export.export_panel(shown["result"], EXPORT_KEY, view_layout=state["layout"],
                        view_style={"contour": state["loss"]})


def benchmark_this_view():
    """The view as a Benchmark job: the form there opens holding it (views/benchmark_form.py)."""
    if st.button("Benchmark this view", icon=":material/leaderboard:", key="explore.to_bench",
                 help="open the Benchmark page with a job of this view's settings (then choose more starts, seeds "
                      "or a sweep)"):
        try:
            st.session_state["bench.prefill"] = model.job_config(st.session_state[model.STATE_KEY])
        except ValueError as e:
            st.error(f"Cannot turn this view into a job: {e}")
            return
        st.switch_page("views/benchmark.py")


def show_view(view, result, state, presenting):
    try:
        if view == "map":
            show_map(result, state, presenting)
        elif view == "loss":
            show_loss_space(result, state, presenting)
        elif view == "outcomes":
            show_outcomes(result, state)
        elif view == "diag":
            show_diagnostics(result, state)
        elif view == "fragility":
            explore_fragility.show(result, state)
        elif view == "playground":
            explore_playground.show(state, presenting)
        else:
            show_table(result)
    except Exception as e:   # a figure that cannot be drawn must not hide the controls
        st.error(f"Cannot draw this view ({type(e).__name__}: {e}).")


def lessons_link():
    """Where a new user starts: the Lessons page, one link under the title."""
    try:
        st.page_link("views/lessons.py", label="New here? Seven short lessons show what to look for",
                     icon=":material/school:")
    except Exception:      # the page run on its own, outside the app's navigation
        st.markdown("New here? [Seven short lessons](lessons) show what to look for.")


def main():
    state, problems = model.page_state()
    presenting = bool(state["teach"])
    for p in problems + optimizers.load_errors():      # load errors: a GRADSCAPE_METHODS file that broke a rule
        st.warning(p)
    for note in st.session_state.pop("explore.notes", []):
        st.info(note)
    if presenting:      # the figure above the fold: no app header, less space above the content
        st.html("<style>[data-testid='stHeader']{display:none}"
                "[data-testid='stMainBlockContainer']{padding-top:1rem;padding-bottom:1rem}</style>")
    else:
        st.title("Explore")
        st.caption("Every gradient-aggregation method from every start point, on an analytic two-parameter "
                   "landscape.")
        lessons_link()
    if presenting:
        live_area()
    elif st.session_state.get(model.WHOLE_PAGE) or state["view"] not in model.LIVE_VIEWS:
        st.session_state[model.WHOLE_PAGE] = True
        controls.sidebar(state)         # a widget there may have changed the state: read it before the map
        st.session_state[WHOLE_RUN] = True
        try:
            live_area()
            downloads()
        finally:
            st.session_state[WHOLE_RUN] = False
    else:
        live_area()     # a session's first run: the map first, the rest when it is drawn (_on_first_drawing)


def _map_first() -> bool:
    """Whether this run draws the map first: a session's first run of a live view (map or loss space) draws the
    title, the controls above the map and the map, and leaves out the sidebar and everything below the map; the
    map's first drawing in the browser asks for the whole page (``_on_first_drawing``), which then comes in a
    second run. A fresh browser draws the Streamlit elements that come before a component before it mounts it,
    and the sidebar's ~30 widgets with the download row and the export panel stood between a new user and the
    first chart (fresh browsers, two servers side by side, 8 each: medians 3.42 s before, 2.64 s map first)."""
    state = st.session_state[model.STATE_KEY]
    return not state["teach"] and not st.session_state.get(model.WHOLE_PAGE)


def _first_drawing_callback(fig):
    """What the live map's "drawn" report calls: on a map-first run, ``_on_first_drawing``. A WebGL map (a dense
    grid) is not waited for: the full Plotly.js bundle and the WebGL drawing take seconds in a new browser (the
    sidebar of a 12 x 12 grid's link was complete at ~9 s when it waited, ~3 s before), so the whole page is asked
    for at once, right after the map's frame."""
    if not _map_first():
        return None
    if fig.uses_webgl():
        st.session_state[model.WHOLE_PAGE] = True
        st.session_state["explore.full_rerun"] = True      # taken up by the rerun at the end of the live area
        return None
    return _on_first_drawing


def _on_first_drawing() -> None:
    """The map's first drawing (or its failure) in this browser: now the whole page."""
    st.session_state[model.WHOLE_PAGE] = True
    st.session_state["explore.full_rerun"] = True       # the trigger reruns the fragment; the sidebar needs all


@st.fragment
def live_area():
    """Everything below the sidebar. A fragment: a control in here (SAM-GS's sliders, the view, a click on the
    map) reruns only this part, so the browser redraws a handful of elements instead of the whole page."""
    state = st.session_state[model.STATE_KEY]
    if st.session_state.pop("explore.full_rerun", False):      # a change the sidebar must show too
        st.rerun()
    toast = st.session_state.pop("explore.toast", None)
    if toast:
        st.toast(toast)
    presenting = bool(state["teach"])
    map_first = _map_first()
    if presenting:
        controls.knobs(state)
    else:
        controls.samgs_row(state)
        top = st.columns([5, 1])
        _radio("View", model.VIEWS, "view", state, top[0], label_visibility="collapsed")
        share = top[1].popover("Share", icon=":material/link:", width="stretch")
    view = state["view"]
    if map_first and view not in model.LIVE_VIEWS:     # another view chosen before the first map was drawn
        st.session_state[model.WHOLE_PAGE] = True
        st.rerun()
    try:
        cfg = model.build_config(state)
    except ValueError as e:
        cfg = None
        st.error(f"Cannot run this view: {e}")
    result = run_engine(cfg) if cfg is not None else None
    if presenting and cfg is not None:
        st.caption(model.settings_line(state, cfg))
    if result is not None:
        shown = st.session_state.setdefault(SHOWN, {})
        shown.update(result=result, cfg=cfg)      # in place: the download buttons' callables hold this dict
        st.session_state["explore.config"] = cfg.to_dict()
        if not presenting:
            M, S = result.shape
            ran = f"{result.timings.get('device', 'cpu')}, {'/'.join(sorted(set(result.timings['backends'].values())))}"
            st.caption(f"{M} method(s) × {S} start(s) × {cfg.steps:,} steps: engine {result.timings['wall_s']:.2f} s "
                       f"on {ran} (each method cached once computed); paths recorded every {cfg.record_every} steps, drawn "
                       f"decimated.")
            for key, why in result.timings.get("kernel_fallbacks", {}).items():
                st.caption(f"{optimizers.get(key).label}: {why}.")
            report_divergence(result, state, presenting)
    elif st.session_state.get(SHOWN):
        result, cfg = st.session_state[SHOWN]["result"], st.session_state[SHOWN]["cfg"]
        st.caption("Showing the last view that ran.")
    if result is not None:
        show_view(view, result, state, presenting)
        if presenting:
            report_divergence(result, state, presenting)
    if presenting:
        plain = {k: v for k, v in model.url_params(state).items() if k not in ("teach", "knobs")}
        st.link_button("Show the controls", "?" + common.query_string(plain))
    elif not map_first:
        controls.share_box(share, state)
    model.sync_url(state)
    if not st.session_state.get(WHOLE_RUN) and result is not None and export.prepared_for_another(EXPORT_KEY, result):
        st.rerun()          # the export panel (outside this fragment) offers a file of the view before: redraw it
    if map_first and st.session_state.pop("explore.full_rerun", False):
        st.rerun()          # a WebGL map's first run: the whole page follows its frame (_first_drawing_callback)


main()
