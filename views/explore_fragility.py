"""Explore's fragility view: how fragile is a run? A ring of nudged starts and the float64 run, for one run or for
every start of the view.

Controls (all in the address): ``fmode`` (one run / every start), ``frow`` and ``fstart`` (which run), ``fring``
(nudged starts per start) and ``frad`` (how far). The clouds are engine runs (``trajectories/fragility.py``): per
method, one float32 call over every start and its ring and one float64 call, cached for every session like the
page's other engine calls. "Every start" is bounded: above ``BUDGET`` run-steps the page refuses and says what
would fit.

What it shows is the reference data's robust / sensitive distinction (its README): a robust run's cloud is one
bundle that ends where the run ends; a sensitive run's cloud splits, or strays from its path.
"""
from __future__ import annotations

import json

import streamlit as st

import trajectories
from figures import benchmark as bench_figs
from figures import browser, published
from figures import fragility as fragfig
from figures import style as style_mod
from trajectories import fragility
from views import common

MODES = {"one": "One run", "all": "Every start"}
RADII = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
RING_MIN, RING_MAX = 4, 256
BUDGET = 6e8            # run-steps of an "every start" request
BUDGET_TIME = "about 12 s here once the kernels are built"     # measured: 8 methods x refgrid x 66 runs, 5 s
W = "x."


@st.cache_resource(max_entries=40, show_spinner=False)
def _run(cfg_json: str):
    """One cloud call (cached on its config, for every session)."""
    return trajectories.run(trajectories.Config.from_dict(json.loads(cfg_json)))


def record_every(steps: int, every_start: bool) -> int:
    """Records of a cloud: every 50th step for one run (as the reference data), about 100 per run otherwise."""
    return max(1, steps // 100) if every_start else min(50, max(1, steps // 100))


def cloud(cfg_m, starts, n: int, radius: float, every_start: bool = False):
    """(float32 Result, float64 Result, Fragility, inside) of one method's cloud around ``starts``."""
    c32, c64 = fragility.cloud_configs(cfg_m, starts, n, radius,
                                       record_every=record_every(cfg_m.steps, every_start))
    r32, r64 = _run(c32.to_json()), _run(c64.to_json())
    inside = fragility.ring(starts, n, radius, cfg_m.land.bounds)[1]
    return r32, r64, fragility.assess(r32, r64, n, inside), inside


def _config(result):
    return trajectories.Config.from_dict(result.config)


def _shares_text(shares: dict) -> str:
    return " · ".join(f"{name} {share:.0%}" for name, share in shares.items())


def _verdict(fr, s: int, n_members: int, radius: float) -> str:
    flips = "The outcome **flips**." if fr.flips[s] else "Every one ends in the run's own outcome."
    rule = ("**robust** by the reference data's rule" if fr.robust[s] else "**sensitive** by the reference data's rule")
    return (f"{n_members - 1} nudged runs ({radius:g} away) and the float64 run end in: {_shares_text(fr.shares[s])}. "
            f"{flips} Their ends lie up to {fr.end_spread[s]:.3g} from this run's end and their paths up to "
            f"{fr.path_spread[s]:.3g} from its path: {rule} (robust: every end within {fragility.END_TOL} and every "
            f"path within {fragility.PATH_TOL} at every recorded step).")


def _controls(result, state) -> None:
    c = st.columns([2, 2, 2, 2])
    common.seed(W + "fmode", state["fmode"])
    state["fmode"] = c[0].radio("Fragility of", list(MODES), key=W + "fmode", format_func=MODES.get,
                                horizontal=True)
    M, S = result.shape
    if state["fmode"] == "one":
        for key, n, what in (("frow", M, "methods"), ("fstart", S, "starts")):
            if not 0 <= state[key] < n:
                st.warning(f"URL parameter `{key}={state[key]}`: there are only {n} {what}; showing the first.")
                state[key] = 0
        common.seed(W + "frow", state["frow"])
        state["frow"] = c[1].selectbox("Method", list(range(M)), key=W + "frow",
                                       format_func=lambda m: result.labels[m])
        common.seed(W + "fstart", state["fstart"])
        state["fstart"] = c[2].selectbox("Start", list(range(S)), key=W + "fstart",
                                         format_func=lambda s: f"#{s + 1} ({result.starts[s, 0]:.3g}, "
                                                               f"{result.starts[s, 1]:.3g})")
    r = c[3].columns(2)
    common.seed(W + "fring", int(state["fring"]))
    state["fring"] = int(r[0].number_input("Nudged starts", min_value=RING_MIN, max_value=RING_MAX, step=8,
                                           key=W + "fring", help="starts on a circle around each start"))
    radii = sorted(set(RADII) | {float(state["frad"])})
    common.seed(W + "frad", float(state["frad"]))
    state["frad"] = float(r[1].select_slider("Nudge", options=radii, key=W + "frad", format_func=lambda v: f"{v:g}",
                                             help="the circle's radius (the reference data used 1e-4)"))


def _ghost(result, row: int, start: int):
    for mt in published.matches(result):
        if mt.row == row and mt.start == start:
            return mt.run
    return None


def show_one(result, state) -> None:
    row, s = state["frow"], state["fstart"]
    n, radius = int(state["fring"]), float(state["frad"])
    key = result.variants[row]["method"]
    cfg_m = _config(result).for_method(key)
    box = st.empty()
    with box.status(f"Running {n} nudged starts and the float64 run of {result.labels[row]} (the first float64 run "
                    f"of a method builds its kernel)…"):
        r32, r64, fr, inside = cloud(cfg_m, result.starts[s:s + 1], n, radius)
    box.empty()
    pub = _ghost(result, row, s)
    colour = style_mod.variant_style(result.variants)[row][0]
    fig = fragfig.cloud_figure(r32, r64, fr, 0, n, inside[0], radius=radius, colour=colour, label=result.labels[row],
                               ghost=pub.cut(cfg_m.steps) if pub is not None else None)
    st.plotly_chart(fig, key="explore_fragility", theme=None,
                    config=browser.image_config(f"gradscape-{result.config['landscape']}-fragility", state["img"]))
    st.markdown(_verdict(fr, 0, int(fr.members[0]), radius))
    if pub is not None:
        st.caption(f"The published data call this run **{pub.label}**; the outcomes a correct implementation may "
                   f"reach from it: {', '.join(pub.outcomes)} (source: {published.SOURCES[pub.source]}).")
    st.caption("Thin lines: the nudged runs, coloured by where each ended; black dashed: the float64 run; grey dashed: "
               "the published path, where there is one. Engine runs, cached: float32 as the page's runs, positions "
               f"every {record_every(cfg_m.steps, False)} steps.")


def show_all(result, state) -> None:
    n, radius = int(state["fring"]), float(state["frad"])
    cfg = _config(result)
    M, S = result.shape
    work = fragility.run_steps(cfg, S, n)
    if work > BUDGET:
        fit = max(0, int(BUDGET // (M * S * cfg.steps)) - 2)
        st.error(f"fring: {S:,} starts × {M} method{'s' if M != 1 else ''} × {n + 2} runs (the run, {n} nudged, float64) × "
                 f"{cfg.steps:,} steps = {work / 1e9:.2f} G run-steps is over this view's budget of "
                 f"{BUDGET / 1e9:.1f} G ({BUDGET_TIME})"
                 + (f"; at most {fit} nudged starts fit" if fit >= RING_MIN else "")
                 + ". Use fewer starts, methods or steps, or the fragility of one run.")
        return
    bar = st.progress(0.0, text=f"Clouds of every start: {work / 1e6:,.0f} M run-steps…")
    frags = []
    for m, v in enumerate(result.variants):
        bar.progress(m / M, text=f"{result.labels[m]}: {S} starts × ({n} nudged + float64)…")
        frags.append(cloud(cfg.for_method(v["method"]), result.starts, n, radius, every_start=True)[2])
    bar.empty()
    land = result.landscape
    optima = land.optima(browser.weights_of(result), browser.scale_of(result))
    cols = min(M, 4)
    fig = bench_figs.outcome_maps(bench_figs.result_panels(result), land, optima, cols=cols, panel_px=260,
                                  title=f"Outcomes and flips under a {radius:g} nudge · {land.title}")
    fragfig.mark_flips(fig, frags, cols=cols)
    st.plotly_chart(fig, key="explore_fragility_all", theme=None,
                    config=browser.image_config(f"gradscape-{land.key}-flips", state["img"]))
    labels = {(mt.row, mt.start): mt.run.robust for mt in published.matches(result)}
    rows = []
    for m, fr in enumerate(frags):
        row = {"method": result.labels[m], "starts": S, "outcome flips": int(fr.flips.sum()),
               "sensitive (rule)": int((~fr.robust).sum()), "robust (rule)": int(fr.robust.sum())}
        mine = [s for s in range(S) if (m, s) in labels]
        if mine:
            agree = sum(labels[(m, s)] == bool(fr.robust[s]) for s in mine)
            row["published labels agree"] = f"{agree}/{len(mine)}"
        rows.append(row)
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(f"Ringed starts: some of their {n} nudged runs ({radius:g} away) or their float64 run end in another "
               f"outcome than the run drawn. A basin map drawn from one run per start hides them. Rule: robust when "
               f"every nudged run and the float64 run end within {fragility.END_TOL} of the run and stay within "
               f"{fragility.PATH_TOL} of its path (here checked every {record_every(cfg.steps, True)} steps).")


def show(result, state) -> None:
    _controls(result, state)
    if state["fmode"] == "one":
        show_one(result, state)
    else:
        show_all(result, state)

