"""Lessons: seven short steps that say what to look for, each one focused figure with a knob or two.

A step (views/lesson_steps.py) is an Explore view. This page shows its paragraph, its knobs, its figure, a "what
to notice" line and three links: present this step (``teach=1``: no navigation, no chrome), open the view in
Explore, present it in Explore. The address is the state: ``/lessons?lesson=gamma&samgs.gamma=0.5`` reopens
step "gamma" with γ moved; a knob's value is in the URL only when it differs from the step's.

Widgets -> lesson state (the step's Explore parameters + the knobs) -> the Explore model's config and cached
engine call -> the figure. Nothing is computed here that Explore does not compute the same way.
"""
import sys

import streamlit as st

_boot = st.empty()
if "trajectories" not in sys.modules:
    with _boot.status("Warming up: loading PyTorch and the engine (the first visit after a server start takes "
                      "about ten seconds)…"):
        import trajectories  # noqa: F401
_boot.empty()

import optimizers  # noqa: E402
from figures import benchmark as bench_figs  # noqa: E402
from figures import browser  # noqa: E402
from views import common  # noqa: E402
from views import explore_controls as controls  # noqa: E402
from views import explore_model as model  # noqa: E402
from views import lesson_steps  # noqa: E402
from views import live_map  # noqa: E402
from views import outcomes  # noqa: E402

common.freeze_imported_heap()

W = "l."                       # widget-key prefix: the lessons' widgets stay apart from Explore's
MAP_KEY = "lesson_map"
HEIGHT = 520                   # the figure fits above the fold of a 1280 x 720 screen in presentation mode
KNOB_LABELS = {"lr": "Learning rate", "w1": "w₁ (w₂ = 1 − w₁)", "pipe": "Pipeline", "dstart": "Start"}


# -- state ------------------------------------------------------------------------------------------------
def _knob_key(name: str) -> str:
    return model.KNOB_ALIASES.get(name, name)


def read_state() -> tuple[lesson_steps.Step, dict, list[str]]:
    """(step, Explore page state of the step with the URL's knob values, problems) from the address."""
    raw = {k: st.query_params[k] for k in st.query_params.keys() if k not in common.RESERVED}
    if "lessons.url" in st.session_state and raw != st.session_state["lessons.url"]:
        _forget_widgets()          # Back, Forward or an edited link: the knobs re-seed from the address
    problems = []
    slug = raw.pop("lesson", lesson_steps.STEPS[0].slug)
    try:
        step = lesson_steps.get(slug)
    except ValueError as e:
        problems.append(f"URL parameter `lesson={slug[:40]}`: {str(e).removeprefix('lesson: ')}; showing the first.")
        step = lesson_steps.STEPS[0]
    teach = raw.pop("teach", "")
    state, more = model.read_state(dict(step.params))
    problems += more
    allowed = {_knob_key(k) for k in step.knobs}
    land = model.landscape_of(state)
    specs = {p.key: p for p in model.params(land)}
    for key, text in raw.items():
        if key not in allowed:
            problems.append(f"URL parameter `{key}` is not a control of this step; ignored.")
            continue
        try:
            state[key] = specs[key].parse(text)
        except ValueError as e:
            problems.append(f"URL parameter `{key}={text[:40]}`: {e}; using the step's value.")
    if "w1" in allowed:
        state["wmode"] = "sum1"
    try:
        state["teach"] = common.flag(teach)
    except ValueError:
        state["teach"] = False
    return step, state, problems


def step_url_params(step, state: dict, *, teach: bool) -> dict[str, str]:
    """The lessons page's address for ``state``: the step, and each knob whose value is not the step's."""
    base, _ = model.read_state(dict(step.params))
    land = model.landscape_of(state)
    specs = {p.key: p for p in model.params(land)}
    out = {"lesson": step.slug}
    for name in step.knobs:
        key = _knob_key(name)
        if specs[key].to_url(state[key]) != specs[key].to_url(base[key]):
            out[key] = specs[key].to_url(state[key])
    if teach:
        out["teach"] = "1"
    return out


def explore_params(step, state: dict, *, teach: bool) -> dict[str, str]:
    """The Explore address of the step's view with the knobs where they are now (``teach``: presentation)."""
    params = model.url_params({**state, "teach": False, "knobs": ()})
    if teach:
        params["teach"] = "1"
        knobs = [k for k in step.knobs if k in model.knob_keys(model.landscape_of(state))]
        if knobs:
            params["knobs"] = ",".join(knobs)
    return params


def _root() -> str:
    """The app's root URL ("" in tests): links are absolute, so they work from any page."""
    url = (st.context.url or "").split("?")[0]
    return url.rsplit("/", 1)[0] if url.count("/") > 2 else url


def link(page: str, params: dict) -> str:
    return f"{_root()}/{page}" + ("?" + common.query_string(params) if params else "")


# -- widgets ----------------------------------------------------------------------------------------------
def _forget_widgets() -> None:
    for k in [k for k in st.session_state.keys() if isinstance(k, str) and k.startswith(W)]:
        del st.session_state[k]


def _go(slug: str) -> None:
    """A step change: the new step starts from its own settings."""
    st.query_params.clear()
    st.query_params["lesson"] = slug
    if st.session_state.get("lessons.teach"):
        st.query_params["teach"] = "1"
    st.session_state["lessons.url"] = {k: st.query_params[k] for k in st.query_params.keys()}
    _forget_widgets()


def knob(step, state: dict, name: str, box, result=None) -> None:
    key = _knob_key(name)
    wk = W + key
    if "." in key:
        method, hp = key.split(".", 1)
        controls.hparam_widget(state, method, optimizers.get(method).hparam(hp), box,
                               label=controls.SAMGS_LABELS.get(hp) if method == "samgs" else None, prefix=W)
    elif key == "lr":
        common.seed(wk, float(state["lr"]))
        state["lr"] = float(box.select_slider(KNOB_LABELS["lr"], key=wk, format_func=lambda v: f"{v:g}",
                                              options=controls.log_options(model.LR_MIN, model.LR_MAX, state["lr"])))
    elif key == "w1":
        common.seed(wk, float(state["w1"]))
        state["w1"] = float(box.slider(KNOB_LABELS["w1"], 0.01, 0.99, step=0.01, key=wk))
    elif key == "pipe":
        common.seed(wk, state["pipe"])
        state["pipe"] = box.radio(KNOB_LABELS["pipe"], list(optimizers.PIPELINES), key=wk, horizontal=True,
                                  help=controls.PIPELINE_HELP)
    elif key == "dstart":
        pts = model.starts_mod.resolve(model.landscape_of(state), state["starts"])
        common.seed(wk, min(int(state["dstart"]), len(pts) - 1))
        state["dstart"] = int(box.radio(KNOB_LABELS["dstart"], list(range(len(pts))), key=wk, horizontal=True,
                                        format_func=lambda s: f"({pts[s, 0]:g}, {pts[s, 1]:g})"))


# -- the figure -------------------------------------------------------------------------------------------
def figure(state: dict, result, presenting: bool) -> None:
    view = state["view"]
    land = result.landscape
    if view == "diag":
        start = min(int(state["dstart"]), result.shape[1] - 1)
        t = browser.nearest_record(result, int(state["dstep"]))
        fig = browser.build_arrows(result, min(int(state["drow"]), result.shape[0] - 1), start, t, height=HEIGHT)
        st.plotly_chart(fig, key="lesson_arrows", theme=None, config=browser.image_config("gradscape-lesson"))
    elif view == "outcomes":
        optima = land.optima(browser.weights_of(result), browser.scale_of(result))
        fig = bench_figs.outcome_maps(bench_figs.result_panels(result), land, optima,
                                      title=f"What each start reached · {land.title}", panel_px=360)
        st.plotly_chart(fig, key="lesson_outcomes", theme=None, config=browser.image_config("gradscape-lesson"))
    else:
        fig = model.map_figure(result, "overlay", "sum", "png", HEIGHT)
        live_map.show(fig, key=MAP_KEY)


def run(cfg):
    with st.spinner(f"Running {len(cfg.variants()) * len(cfg.starts):,} runs × {cfg.steps:,} steps…"):
        return model.run(cfg)


# -- the page ---------------------------------------------------------------------------------------------
def main() -> None:
    step, state, problems = read_state()
    presenting = bool(state["teach"])
    st.session_state["lessons.teach"] = presenting
    for p in problems:
        st.warning(p)
    index = lesson_steps.STEPS.index(step)
    n = len(lesson_steps.STEPS)
    if presenting:
        st.html("<style>[data-testid='stHeader']{display:none}"
                "[data-testid='stMainBlockContainer']{padding-top:1rem;padding-bottom:1rem}</style>")
    else:
        st.title("Lessons")
        st.caption("Seven short steps through what these methods do on the paper's toy problems, each with one "
                   "figure and a knob to turn. Every step is a link; every number in the text is checked "
                   "against the engine by the test suite.")
        st.pills("Step", [s.slug for s in lesson_steps.STEPS], default=step.slug, key=f"{W}picker",
                 format_func=lambda k: f"{lesson_steps.STEPS.index(lesson_steps.BY_SLUG[k]) + 1}. "
                                       f"{lesson_steps.BY_SLUG[k].title}",
                 on_change=lambda: _go(st.session_state[f"{W}picker"] or step.slug), label_visibility="collapsed")
    head, prev_box, next_box = st.columns([8, 1, 1], vertical_alignment="bottom")
    head.subheader(f"{index + 1} / {n} · {step.title}")
    if index > 0:
        prev_box.button("◀ Back", key=f"{W}prev", on_click=_go, args=(lesson_steps.STEPS[index - 1].slug,),
                        width="stretch")
    if index < n - 1:
        next_box.button("Next ▶", key=f"{W}next", on_click=_go, args=(lesson_steps.STEPS[index + 1].slug,),
                        width="stretch", type="primary")
    st.markdown(step.prose)
    if step.knobs:
        cols = st.columns(max(3, len(step.knobs)))
        for i, name in enumerate(step.knobs):
            knob(step, state, name, cols[i])
    try:
        cfg = model.build_config(state)
        result = run(cfg)
    except ValueError as e:
        st.error(f"Cannot run this step: {e}")
        result = None
    if result is not None:
        try:
            figure(state, result, presenting)
        except Exception as e:      # a figure that cannot be drawn must not hide the lesson
            st.error(f"Cannot draw this step's figure ({type(e).__name__}: {e}).")
        st.caption(model.settings_line(state, cfg))
        outcomes.report(result, presenting=True)
    st.info(f"**What to notice:** {step.notice}", icon=":material/visibility:")
    c1, c2, c3 = st.columns(3)
    c1.link_button("Open in Explore", link("explore", explore_params(step, state, teach=False)),
                   icon=":material/open_in_new:", width="stretch")
    c2.link_button("Present in Explore", link("explore", explore_params(step, state, teach=True)),
                   icon=":material/slideshow:", width="stretch")
    if presenting:
        c3.link_button("Show the lesson text and steps", link("lessons", step_url_params(step, state, teach=False)),
                       width="stretch")
    else:
        c3.link_button("Present this step", link("lessons", step_url_params(step, state, teach=True)),
                       icon=":material/fullscreen:", width="stretch")
    desired = step_url_params(step, state, teach=presenting)
    common.sync_url(desired)
    st.session_state["lessons.url"] = desired


main()
