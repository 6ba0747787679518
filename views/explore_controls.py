"""The Explore page's controls (sidebar): each widget is seeded from the page state and writes back to it.

Widget keys are ``"x." + URL key``. SAM-GS's gamma, beta1 and beta2 come first, in plain sight; every
other method's hyperparameters sit in an expander generated from the method's ``hparams`` spec.
"""
from __future__ import annotations

import dataclasses
import math

import streamlit as st

import landscapes
import optimizers
from optimizers import outer as outer_mod
from views import common
from views import explore_model as model

W = "x."          # widget-key prefix


def _wk(key: str) -> str:
    return W + key


def _forget_widgets(*prefixes: str) -> None:
    """Drop widget values so the widgets are re-seeded from the page state on this run."""
    for k in list(st.session_state.keys()):
        if isinstance(k, str) and k.startswith(W) and (not prefixes or any(k.startswith(W + p) for p in prefixes)):
            del st.session_state[k]


def _decimals(step: float) -> int:
    return max(2, min(8, -math.floor(math.log10(step)) if step > 0 else 2))


def log_options(lo: float, hi: float, current: float, per_decade=(1, 2, 5)) -> list[float]:
    """1-2-5 values between lo and hi (and ``current``) for a log-scale select slider."""
    vals = set()
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in per_decade:
            v = float(f"{m}e{e}")
            if lo <= v <= hi:
                vals.add(v)
    vals.add(float(current))
    return sorted(vals)


SAMGS_LABELS = {"gamma": "γ (similarity threshold)", "beta1": "β₁ (gradient momentum)",
                "beta2": "β₂ (dissimilarity EMA)"}
# Labels and help in words for settings whose spec names are terse (the spec's own help stays the CLI's)
HP_WORDS = {
    "samgs.gamma": ("γ (similarity threshold)",
                    "SAM-GS equalises the task gradients (each to unit length, summed, rescaled to their mean "
                    "length) whenever their magnitude similarity GMS = 2|g₁||g₂| / (|g₁|² + |g₂|²) falls below γ; "
                    "otherwise it takes its momentum step. 0: never equalise; 1: almost always. The diagnostics' "
                    "branch curve shows which fired at each step."),
    "samgs.beta1": ("β₁ (gradient momentum)", "the momentum of SAM-GS's non-equalising step: an average of the "
                                              "recent gradients with weight β₁ on the past."),
    "samgs.beta2": ("β₂ (dissimilarity EMA)", "an average of (1 − GMS)² with weight β₂ on the past; the momentum "
                                              "step is divided by its root, so it is trusted less while the "
                                              "gradients' sizes differ."),
    "nashmtl.stop_test": ("Published solver's stop test",
                          "On (as published): Nash-MTL's solver keeps the previous task weights whenever they "
                          "already solve the normalised bargaining equations to 1e-3. Off: the exact bargaining "
                          "weights at every step. It matters in the reference pipeline only, on ridges where "
                          "rounding decides which way a run leaves."),
}
PIPELINE_HELP = ("reference: as the published SAM-GS toy code (× K, norm clipping, its quirks); clean: each method "
                 "as its own paper defines it")


def hparam_widget(state: dict, method: str, h, container, label: str | None = None, prefix: str = W) -> None:
    """One hyperparameter's widget from its spec (log -> select slider over 1-2-5 values; a 0/1 switch -> a
    toggle). ``prefix``: the widget-key prefix (another page keeps its own widgets apart from Explore's)."""
    key = model.hp_key(method, h.name)
    wk = prefix + key
    words, help_text = HP_WORDS.get(key, (None, h.help))
    label = label or words or h.name
    h = dataclasses.replace(h, help=help_text)
    if h.integer and int(h.low) == 0 and int(h.high) == 1:          # a switch, not a scale
        common.seed(wk, bool(state[key]))
        value = container.toggle(label, key=wk, help=h.help)
    elif h.log:
        common.seed(wk, state[key])
        value = container.select_slider(label, options=log_options(h.low, h.high, state[key]), key=wk, help=h.help,
                                        format_func=lambda v: f"{v:g}")
    elif h.integer:
        common.seed(wk, state[key])
        value = container.slider(label, min_value=int(h.low), max_value=int(h.high), step=max(1, int(h.step)),
                                 key=wk, help=h.help + (" (a new kernel per value)" if h.static else ""))
    else:
        common.seed(wk, state[key])
        value = container.slider(label, min_value=float(h.low), max_value=float(h.high), step=float(h.step), key=wk,
                                 help=h.help, format=f"%.{_decimals(h.step)}f")
    state[key] = int(value) if h.integer else float(value)


# -- callbacks (run before the page script, so they may reset widget values) ------------------------
def _on_landscape() -> None:
    state = st.session_state[model.STATE_KEY]
    notes = model.change_landscape(state, st.session_state[_wk("land")])
    st.session_state["explore.notes"] = notes
    _forget_widgets()


def _add_samgs() -> None:
    state = st.session_state[model.STATE_KEY]
    state["methods"] = tuple(k for k in optimizers.names() if k in set(state["methods"]) | {"samgs"})
    st.session_state["explore.full_rerun"] = True      # the sidebar's method lists show it too
    _forget_widgets("methods.")


# -- the sidebar ------------------------------------------------------------------------------------
def sidebar(state: dict) -> None:
    """Draw the sidebar's controls (problem, methods, optimiser, starts) and update ``state`` from them. SAM-GS's
    three sliders sit above the map instead (:func:`samgs_row`), in the part of the page a slider move reruns."""
    sb = st.sidebar
    try:
        land = model.landscape_of(state)
    except ValueError as e:         # a damaged custom definition: back to the built-in default
        st.session_state["explore.notes"] = [f"The custom landscape could not be built ({e}); showing the default."]
        model.change_landscape(state, model.land_param().default)
        land = model.landscape_of(state)
    _problem(sb, state, land)
    _methods(sb, state)
    _optimiser(sb, state, land)
    _starts(sb, state, land)
    sb.divider()
    config_upload(sb)


def samgs_row(state: dict) -> None:
    """SAM-GS's γ, β₁, β₂ in one row above the map (always in plain sight)."""
    if "samgs" not in optimizers.names():
        return
    spec = optimizers.get("samgs").hparams
    cols = st.columns([3] * len(spec) + [2])
    for h, col in zip(spec, cols):
        hparam_widget(state, "samgs", h, col, label=SAMGS_LABELS.get(h.name))
    if "samgs" not in state["methods"]:
        cols[-1].caption("SAM-GS is not among the chosen methods.")
        cols[-1].button("Add SAM-GS", on_click=_add_samgs, key="x.addsamgs")


def _problem(sb, state: dict, land) -> None:
    sb.subheader("Problem")
    names = landscapes.names() + [model.CUSTOM]
    common.seed(_wk("land"), state["land"])
    sb.selectbox("Landscape", names, key=_wk("land"), on_change=_on_landscape, format_func=model.landscape_title)
    if state["land"] == model.CUSTOM:
        studio(sb, state, land)
    K = land.n_tasks
    modes = list(model.WEIGHT_MODES) if K == 2 else ["free"]
    common.seed(_wk("wmode"), state["wmode"] if state["wmode"] in modes else "free")
    mode = sb.radio("Task weights", modes, key=_wk("wmode"), horizontal=True,
                    format_func=lambda k: model.WEIGHT_MODES[k],
                    help="free: each task's weight (the paper's default is 1 for every task); "
                         "w₁ + w₂ = 1: one slider, w₂ = 1 − w₁")
    state["wmode"] = mode
    if mode == "sum1":
        common.seed(_wk("w1"), float(state["w1"]))
        w1 = sb.slider("w₁ (w₂ = 1 − w₁)", 0.01, 0.99, step=0.01, key=_wk("w1"))
        state["w1"] = float(w1)
    else:
        cols = sb.columns(K)
        w = list(state["w"])
        for k in range(K):
            common.seed(_wk(f"w.{k}"), float(w[k]))
            w[k] = float(cols[k].number_input(f"w{k + 1}", min_value=0.001, max_value=1000.0, step=0.1,
                                              key=_wk(f"w.{k}"), format="%g"))
        state["w"] = tuple(w)
    if land.scale_task is not None:
        common.seed(_wk("scale"), float(state["scale"]))
        state["scale"] = float(sb.number_input(f"Task-{land.scale_task + 1} scale", min_value=0.001, max_value=1000.0,
                                               step=0.5, format="%g", key=_wk("scale"),
                                               help="multiplies task 1's loss (the paper's magnitude-imbalance knob)"))


def _methods(sb, state: dict) -> None:
    sb.subheader("Methods")
    fams = optimizers.by_family()
    chosen = set(state["methods"])
    for fam in optimizers.FAMILIES:
        keys = fams.get(fam, [])
        if not keys:
            continue
        wk = _wk(f"methods.{fam}")
        common.seed(wk, [k for k in keys if k in chosen])
        sb.multiselect(fam.capitalize(), keys, key=wk, format_func=lambda k: optimizers.get(k).label)
    chosen = set()
    for fam in optimizers.FAMILIES:
        chosen |= set(st.session_state.get(_wk(f"methods.{fam}"), []) or [])
    state["methods"] = tuple(k for k in optimizers.names() if k in chosen)
    for key in state["methods"]:
        m = optimizers.get(key)
        if key == "samgs" or not m.hparams:
            continue
        with sb.expander(f"{m.name} settings"):
            st.caption(m.summary)
            for h in m.hparams:
                hparam_widget(state, key, h, st)


def _optimiser(sb, state: dict, land) -> None:
    sb.subheader("Optimiser")
    common.seed(_wk("opt"), state["opt"])
    opt = sb.radio("Outer optimiser", list(outer_mod.OUTERS), key=_wk("opt"), horizontal=True,
                   format_func=lambda k: outer_mod.OUTERS[k].name)
    state["opt"] = opt
    if opt == "sgd":
        common.seed(_wk("mom"), float(state["mom"]))
        state["mom"] = float(sb.slider("Momentum", 0.0, 0.999, step=0.001, key=_wk("mom"), format="%.3f"))
    common.seed(_wk("lr"), float(state["lr"]))
    state["lr"] = float(sb.select_slider("Learning rate", options=log_options(model.LR_MIN, model.LR_MAX, state["lr"]),
                                         key=_wk("lr"), format_func=lambda v: f"{v:g}"))
    common.seed(_wk("steps"), int(state["steps"]))
    state["steps"] = int(sb.number_input("Steps", min_value=1, max_value=model.MAX_STEPS, step=1000, key=_wk("steps"),
                                         help=f"up to {model.MAX_STEPS:,}; {land.key}'s default is "
                                              f"{land.default_steps:,}"))
    common.seed(_wk("pipe"), state["pipe"])
    state["pipe"] = sb.radio("Pipeline", list(optimizers.PIPELINES), key=_wk("pipe"), horizontal=True,
                             help=PIPELINE_HELP)
    common.seed(_wk("seed"), int(state["seed"]))
    state["seed"] = int(sb.number_input("Seed", min_value=0, max_value=2 ** 31 - 1, step=1, key=_wk("seed")))


def _starts(sb, state: dict, land) -> None:
    sb.subheader("Start points")
    mode, fields = model.start_fields(state["starts"], land)
    common.seed(_wk("smode"), mode)
    mode = sb.radio("Start points", list(model.START_MODES), key=_wk("smode"), horizontal=True,
                    format_func=lambda k: model.START_MODES[k], label_visibility="collapsed")
    if mode == "preset":
        presets = list(land.presets)
        common.seed(_wk("preset"), fields["preset"] if fields["preset"] in presets else presets[0])
        fields["preset"] = sb.selectbox("Preset", presets, key=_wk("preset"),
                                        format_func=lambda k: land.presets[k].label)
    elif mode == "grid":
        common.seed(_wk("grid"), int(fields["grid"]))
        fields["grid"] = int(sb.number_input("n (an n × n grid over the box)", min_value=1, max_value=1000, step=1,
                                             key=_wk("grid")))
    elif mode == "random":
        c1, c2 = sb.columns(2)
        common.seed(_wk("random"), int(fields["random"]))
        common.seed(_wk("rseed"), int(fields["rseed"]))
        fields["random"] = int(c1.number_input("N points", min_value=1, max_value=100_000, step=1, key=_wk("random")))
        fields["rseed"] = int(c2.number_input("Draw seed", min_value=0, max_value=2 ** 31 - 1, step=1,
                                              key=_wk("rseed")))
    else:
        common.seed(_wk("points"), fields["points"])
        fields["points"] = sb.text_area("Points (x,y;x,y …)", key=_wk("points"), height=80).strip()
    state["starts"] = model.compose_starts(mode, fields)
    sb.caption("Click the map to add a start there; click a start (black dot) to remove it.")


def share_box(slot, state: dict) -> None:
    """The page's address as an absolute link, and its teaching (presentation) link. Plain text fields, not
    ``st.code``: a code block makes every new browser download a 1.5 MB syntax highlighter."""
    base = (st.context.url or "").split("?")[0]
    if base.count("/") == 2:            # "http://host:port": the app's root needs its slash
        base += "/"
    params = model.url_params(state)
    link = base + ("?" + common.query_string(params) if params else "")
    teach = base + "?" + common.query_string({**params, "teach": "1"})
    with slot:
        st.session_state["x.share.link"] = link          # shown, never read back: always the current view
        st.text_input("This view (every control is in the address)", key="x.share.link")
        st.session_state["x.share.teach"] = teach
        st.text_input("Teaching link: presentation mode; add &knobs=gamma to keep γ on screen", key="x.share.teach")
        st.link_button("Open the teaching link", teach)


def _on_config_upload() -> None:
    """A config file was chosen: show the view it describes (or say why not), before any widget is drawn."""
    import json
    up = st.session_state.get(_wk("upload"))
    if up is None:
        return
    state = st.session_state[model.STATE_KEY]
    try:
        data = json.loads(up.getvalue().decode("utf-8", errors="replace"))
        new = model.state_from_config(data, state)
    except (ValueError, KeyError) as e:
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        st.session_state["explore.notes"] = [f"Cannot open {up.name}: {msg.splitlines()[0] if msg else e}"]
        return
    state.clear()
    state.update(new)
    _forget_widgets()
    st.session_state["explore.notes"] = [f"Opened {up.name}: the view it describes."]


def config_upload(container) -> None:
    """Open a config file (Explore's "Config (.json)" download, or a job config of one setting)."""
    container.file_uploader("Open a config (.json)", type=["json"], key=_wk("upload"), on_change=_on_config_upload,
                            help="a Config (.json) downloaded from this page, or a Benchmark job config without a "
                                 "sweep: the view it describes opens here")


def forget_all_widgets() -> None:
    """Every control re-seeds from the page state on the next run."""
    _forget_widgets()


def forget_start_widgets() -> None:
    """After a click edited the starts: the start widgets re-seed from the page state."""
    _forget_widgets("smode", "points", "preset", "grid", "random", "rseed")


def knobs(state: dict) -> None:
    """Presentation mode: the controls the link names (``knobs=gamma,lr``), in one row above the map."""
    names = list(state["knobs"])
    if not names:
        return
    cols = st.columns(4)[:min(len(names), 4)]     # at most a quarter of the width each
    for i, name in enumerate(names):
        box = cols[i % len(cols)]
        key = model.KNOB_ALIASES.get(name, name)
        if "." in key:
            method, hp = key.split(".", 1)
            if method not in state["methods"]:
                box.caption(f"{name}: {optimizers.get(method).name} is not among the methods shown")
                continue
            hparam_widget(state, method, optimizers.get(method).hparam(hp), box,
                          label=SAMGS_LABELS.get(hp) if method == "samgs" else None)
        elif key == "lr":
            common.seed(_wk("lr"), float(state["lr"]))
            state["lr"] = float(box.select_slider("Learning rate", key=_wk("lr"), format_func=lambda v: f"{v:g}",
                                                  options=log_options(model.LR_MIN, model.LR_MAX, state["lr"])))
        elif key == "steps":
            common.seed(_wk("steps"), int(state["steps"]))
            state["steps"] = int(box.number_input("Steps", min_value=1, max_value=model.MAX_STEPS, step=1000,
                                                  key=_wk("steps")))
        elif key == "seed":
            common.seed(_wk("seed"), int(state["seed"]))
            state["seed"] = int(box.number_input("Seed", min_value=0, max_value=2 ** 31 - 1, step=1, key=_wk("seed")))
        elif key == "pipe":
            common.seed(_wk("pipe"), state["pipe"])
            state["pipe"] = box.radio("Pipeline", list(optimizers.PIPELINES), key=_wk("pipe"), horizontal=True)
        elif key == "w1":
            common.seed(_wk("w1"), float(state["w1"]))
            state["wmode"] = "sum1"
            state["w1"] = float(box.slider("w₁ (w₂ = 1 − w₁)", 0.01, 0.99, step=0.01, key=_wk("w1")))


# -- the landscape studio ---------------------------------------------------------------------------
def studio_spec(name: str, tasks_text: str, bounds: tuple, presets_text: str) -> dict:
    """The custom-landscape definition the studio's fields describe (validated by landscapes.custom)."""
    tasks = [t.strip() for t in tasks_text.splitlines() if t.strip()]
    spec = {"name": name.strip() or "custom", "tasks": tasks,
            "bounds": [[bounds[0], bounds[1]], [bounds[2], bounds[3]]]}
    if presets_text.strip():
        from trajectories import specs
        parsed = specs.StartSpec.parse(presets_text, (), "presets")
        if parsed.kind != "points":
            raise ValueError("presets: expected points as x,y;x,y")
        spec["presets"] = {"starts": [list(p) for p in parsed.points]}
    return spec


def _on_apply_spec() -> None:
    state = st.session_state[model.STATE_KEY]
    encoded = st.session_state.get("explore.studio_ok")
    if encoded:
        st.session_state["explore.before_apply"] = dict(state)      # Cancel (views/prepare.py) comes back here
        st.session_state["explore.notes"] = model.change_landscape(state, model.CUSTOM, encoded) + [
            "Custom landscape applied; its Pareto set is computed numerically once and cached."]
        _forget_widgets()


def studio(sb, state: dict, land) -> None:
    """Define a landscape from expressions in x1, x2 (θ1, θ2): live validation, a preview, then Apply."""
    from landscapes import custom, expr
    spec = land.spec
    with sb.expander("Landscape studio", expanded=True, icon=":material/edit:"):
        st.caption("One expression per task (2 to 4 tasks) in x1, x2 (or θ1, θ2), with + − * / ^ (or **), "
                   "parentheses, pi, e and " + ", ".join(sorted(expr.FUNCTIONS)) + ".")
        common.seed(_wk("studio.name"), spec["name"])
        name = st.text_input("Name", key=_wk("studio.name"), max_chars=custom.MAX_NAME)
        common.seed(_wk("studio.tasks"), "\n".join(spec["tasks"]))
        tasks = st.text_area("Task losses (one per line)", key=_wk("studio.tasks"), height=110)
        cols = st.columns(4)
        b = []
        for i, (lab, v) in enumerate(zip(("x1 min", "x1 max", "x2 min", "x2 max"),
                                         [spec["bounds"][0][0], spec["bounds"][0][1], spec["bounds"][1][0],
                                          spec["bounds"][1][1]])):
            common.seed(_wk(f"studio.b{i}"), float(v))
            b.append(float(cols[i].number_input(lab, key=_wk(f"studio.b{i}"), format="%g", step=1.0)))
        pts = next(iter(spec.get("presets", {}).values()), [])
        common.seed(_wk("studio.presets"), model.points_spec(pts) if len(pts) else "")
        presets = st.text_input("Start presets (x,y;x,y … optional)", key=_wk("studio.presets"))
        st.session_state["explore.studio_ok"] = None
        try:
            for i, line in enumerate([t for t in tasks.splitlines() if t.strip()], 1):
                problem = expr.check(line)
                if problem:
                    raise ValueError(f"task {i}: {problem}")
            new_spec = studio_spec(name, tasks, tuple(b), presets)
            encoded = custom.encode_spec(new_spec)
            new_land = custom.from_spec(custom.decode_spec(encoded))
        except ValueError as e:
            st.error(str(e), icon="⚠️")
            return
        st.session_state["explore.studio_ok"] = encoded
        from figures import browser
        try:
            st.plotly_chart(browser.preview_contour(new_land), key="studio_preview", theme=None,
                            config={"displayModeBar": False})
        except Exception as e:      # a preview that cannot be drawn must not block the studio
            st.caption(f"No preview ({type(e).__name__}: {e})")
        changed = encoded != state["spec"]
        st.button("Apply" if changed else "Applied", on_click=_on_apply_spec, key="x.studio_apply",
                  disabled=not changed, type="primary", width="stretch")
