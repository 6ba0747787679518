"""What the runs of a view reached, said on a page: the warnings, the success line, the tables, and what the
diagnostics' curves mean.

Explore and Lessons call these; the words are figures/vocabulary.py's, the codes the engine's
(trajectories/metrics.py). A warning says what happened and what to try; a run that reached the optimum and then
turned NaN there is news, not an alarm (it reached it: an info line saying why and what shows it otherwise).
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from figures import vocabulary as vocab
from trajectories import metrics


def _per_method(result, mask) -> str:
    S = result.shape[1]
    return ", ".join(f"{lab} {int(n)}/{S}" for lab, n in zip(result.labels, mask.sum(1)) if n)


def report(result, presenting: bool = False) -> None:
    """Say what went wrong, per method, and what to try. In presentation mode a caption, never a box."""
    status = result.status.astype(str)
    outcome = result.outcome.astype(str)
    dead = metrics.died(status)
    after = vocab.died_after_reaching(outcome, status)
    nan = (outcome == "nan")
    up = (outcome == "blowup")
    cfg = result.config
    lines = []
    if dead.all():
        st.error(f"Every run turned NaN or blew up (learning rate {cfg.get('lr')}, {cfg.get('optimizer')}). "
                 f"Try a smaller learning rate" + (" or the clean pipeline." if cfg.get("pipeline") == "reference"
                                                  else "."))
        return
    if after.any():
        at_opt = np.char.endswith(status, ":optimum") & after
        where = "at the optimum" if at_opt.sum() == after.sum() else "after reaching the optimum or the Pareto set"
        text = (f"{int(after.sum())} of {after.size} runs reached the optimum or the Pareto set and then turned NaN "
                f"{where} ({_per_method(result, after)}). They count as having reached it (marked × on the outcome "
                f"map); their paths stop at the last finite point.")
        if cfg.get("pipeline") == "reference":
            text += (" The reference pipeline reproduces the published code, NaN included; the clean pipeline "
                     "applies each method as its paper defines it.")
        lines.append(("info", text))
    if nan.any():
        lines.append(("warning", f"{int(nan.sum())} of {nan.size} runs turned NaN before reaching the Pareto set "
                                 f"({_per_method(result, nan)}); their paths stop at the last finite point. Try a "
                                 f"smaller learning rate" + (" or the clean pipeline." if cfg.get("pipeline") ==
                                                            "reference" else ".")))
    if up.any():
        lines.append(("warning", f"{int(up.sum())} of {up.size} runs blew up: θ left |θ| < 10⁶ "
                                 f"({_per_method(result, up)}). Try a smaller learning rate."))
    for kind, text in lines:
        if presenting:
            st.caption(text)
        else:
            (st.info if kind == "info" else st.warning)(text, icon=":material/info:" if kind == "info" else None)


def success_line(result) -> str:
    """"Reached the optimum: SAM-GS 7/7 · LS 2/7. Reached the Pareto set: …" for the map's caption."""
    S = result.shape[1]
    summ = result.summary()
    opt = " · ".join(f"{r['label']} {r['optimum']}/{S}" for _, r in summ.iterrows())
    par = " · ".join(f"{r['label']} {r['pareto']}/{S}" for _, r in summ.iterrows())
    return f"**Reached the optimum**: {opt}.  **Reached the Pareto set**: {par}"


def tables(result) -> None:
    """The per-method counts and the per-run table, in words, without sentinels."""
    land = result.landscape
    n_opt = len(land.optima(_weights(result), float(result.config.get("scale", 1.0) or 1.0)))
    st.subheader("Per method")
    st.dataframe(vocab.summary_table(result.summary()), hide_index=True, width="stretch",
                 column_config={vocab.header("median_steps_to_optimum"): st.column_config.NumberColumn(format="%d"),
                                vocab.header("median_pareto_distance"): st.column_config.NumberColumn(format="%.3g")})
    st.caption(vocab.legend_note())
    st.subheader("Per method and start")
    frame = vocab.runs_table(result.to_frame(), result.final_losses.shape[-1], n_opt)
    st.dataframe(frame, hide_index=True, width="stretch",
                 column_config={vocab.header("pareto_distance"): st.column_config.NumberColumn(format="%.3g")})


def run_caption(result, row: int, start: int) -> str:
    """One run in a sentence, with its distance to the Pareto set (the diagnostics view)."""
    land = result.landscape
    n_opt = len(land.optima(_weights(result), float(result.config.get("scale", 1.0) or 1.0)))
    words = vocab.run_words(result.outcome[row, start], result.status[row, start],
                            optimum_step=result.optimum_step[row, start], status_step=result.status_step[row, start],
                            n_optima=n_opt)
    d = result.pareto_distance[row, start]
    dist = f"{d:.3g}" if np.isfinite(d) else vocab.MISSING
    return f"This run: **{words}**; its last point lies {dist} from the Pareto set."


def _weights(result):
    w = result.config.get("task_weights")
    if not w:
        return None
    return w[0] if isinstance(w[0], (list, tuple)) else w


def diagnostics_help() -> None:
    """What each diagnostics curve and arrow means, beside the figure that draws them."""
    with st.expander("What these curves and arrows mean", icon=":material/help:"):
        st.markdown("\n".join(f"* **{title}**: {text}" for title, text in vocab.DIAGNOSTICS.values()) +
                    "\n* **Arrows**: −g₁, −g₂ (downhill for each task) and −d (the step the method applied, after "
                    "the pipeline's × K and clipping), drawn to one scale; each label gives the true length.")
