"""The Export panel: publication files (PDF, SVG, PNG, PGF) and animations (GIF, MP4) of a page's Result.

``export_panel(result, key_prefix)`` is called by the Explore and Benchmark pages under their chart. Its first choice
is the view on screen (``view_layout``: Explore's overlay or one panel per method, in the same colours, from the same
starts, the contour filled as on screen), then the paper figures. It is lazy:
nothing renders until "Prepare file" is pressed; the bytes are cached on (the Result's identity, the figure
spec), so preparing the same file again, or in another session, is instant. The file carries its spec (and the
spec can be downloaded as JSON), so ``python -m trajectories figure --from-config SPEC.json --out FILE``
rebuilds it headless. Rendering itself is ``figures.spec.render_bytes`` (no Streamlit below ``views/``).
"""
from __future__ import annotations

import hashlib
import json

import streamlit as st

from figures import paper, save
from figures import spec as figspec

MIME = {"pdf": "application/pdf", "svg": "image/svg+xml", "png": "image/png", "pgf": "text/plain",
        "gif": "image/gif", "mp4": "video/mp4"}
KIND_LABELS = {"view": "The view on screen", "overlay": "Every method over one contour (paper style)",
               "small-multiples": "Contour + paths, one column per method", "loss-space": "Loss space + Pareto front",
               "basin": "Basin map (where each start ends)", "heatmap": "Sweep heatmap",
               "diagnostics": "Diagnostics over the steps"}


def result_key(result) -> str:
    """A short identity for a Result: its config and a digest of where every run ended."""
    h = hashlib.sha1(json.dumps(result.config, sort_keys=True, default=str).encode())
    h.update(json.dumps(result.variants, sort_keys=True, default=str).encode())
    h.update(result.final.tobytes())
    return h.hexdigest()[:16]


def prepared_for_another(key_prefix: str, result) -> bool:
    """Whether the panel ``key_prefix`` holds a prepared file of another Result than ``result``; if so, the file
    is dropped (a panel drawn for ``result`` would not offer it, one drawn before still does)."""
    ready = st.session_state.get(f"{key_prefix}_export_file")
    if ready is None or ready[0][0] == result_key(result):
        return False
    del st.session_state[f"{key_prefix}_export_file"]
    return True


def prepare_button(key: str) -> bool:
    """The "Prepare file" button; True on the runs that should make the file, until :func:`prepared` says it is made.

    A plain ``st.button`` is True only in the run its click started, once that run reaches it: a run stopped
    earlier (another change came in while the page above the panel was still running, say the map's) loses the
    click. The click is therefore recorded by the button's callback, which Streamlit runs before the script, as a
    request in session state. The request stays until the file is made (or refused): a run stopped while it
    renders leaves it to the next run that draws this panel."""
    st.button("Prepare file", key=f"{key}_go", type="primary", on_click=_request, args=(f"{key}_want",))
    return bool(st.session_state.get(f"{key}_want", False))


def prepared(key: str) -> None:
    """The request of :func:`prepare_button` is done (the file is made, or an error says why not)."""
    st.session_state.pop(f"{key}_want", None)


def _request(name: str) -> None:
    st.session_state[name] = True


@st.cache_data(max_entries=16, show_spinner=False)
def _render(result_id: str, spec_json: str, fmt: str, _result) -> bytes:
    """The file's bytes; ``_result`` is not hashed (``result_id`` stands for it)."""
    return figspec.render_bytes(figspec.FigureSpec.from_dict(json.loads(spec_json)), _result, fmt)


def published_runs(result) -> int:
    """How many runs of ``result`` have a published path (figures/published.py)."""
    from figures import published
    try:
        return len(published.matches(result))
    except (OSError, ValueError):      # the shipped data missing or damaged: no option, no error
        return 0


def _figure_options(kind, key, result) -> dict:
    opts = {}
    if kind == "small-multiples":
        rows = st.multiselect("Rows", ["contour", "loss"], default=["contour"], key=f"{key}_rows",
                              help="Contour + paths, and/or the same paths in loss space underneath")
        opts["rows"] = rows or ["contour"]
        if published_runs(result):
            if st.checkbox("Published paths", key=f"{key}_ghosts", help="the SAM-GS authors' published path under "
                           "every run that has one (grey, dashed)"):
                opts["ghosts"] = True
    elif kind == "heatmap":
        opts["metric"] = st.selectbox("Metric", list(paper.METRICS), key=f"{key}_metric",
                                      format_func=lambda m: paper.METRICS[m][0])
    elif kind == "diagnostics":
        opts["fields"] = st.multiselect("Curves", list(paper.DIAGNOSTICS), key=f"{key}_fields",
                                        default=["loss", "pareto_distance", "cos", "dnorm"]) or ["loss"]
    return opts


def export_panel(result, key_prefix: str, *, expanded: bool = False, default_kind: str = "small-multiples",
                 view_layout: str | None = None, view_style: dict | None = None) -> None:
    """Widgets (what, format, size, DPI, animation frames and duration) -> a prepared file -> download.
    ``view_layout`` ("overlay" or "multiples"): the page's view, offered first as "The view on screen"."""
    key = f"{key_prefix}_export"
    if result is None or result.positions is None:
        return
    with st.expander("Export for papers, slides and lectures", expanded=expanded):
        what = st.radio("Export", ["Figure", "Animation"], horizontal=True, key=f"{key}_what")
        c1, c2, c3 = st.columns(3)
        anim = None
        style = {}
        if what == "Figure":
            kinds = (["view"] if view_layout else []) + list(paper.KINDS)
            kind = c1.selectbox("Figure", kinds, index=0 if view_layout else kinds.index(default_kind),
                                key=f"{key}_kind", format_func=KIND_LABELS.get)
            fmts = ["pdf", "svg", "png"] + (["pgf"] if save.latex_system() else [])
            fmt = c2.selectbox("Format", fmts, key=f"{key}_fmt", help="PDF and SVG are vector, with text kept as "
                               "text; PGF appears when LaTeX is installed")
            size = c3.selectbox("Size", list(paper.SIZES), index=1, key=f"{key}_size",
                                format_func=lambda s: paper.SIZES[s].label)
            dpi = c3.number_input("DPI (PNG)", 72, 1200, 300, step=50, key=f"{key}_dpi", disabled=fmt != "png")
            if kind == "view":          # the figure on screen: its layout, colours, starts and contour
                kind = "overlay" if view_layout == "overlay" else "small-multiples"
                style = {"screen": True, **(view_style or {})}
                options = {}
                c1.caption("As on screen: " + ("every method over one contour" if kind == "overlay" else
                                               "one panel per method") + ", the same colours and starts.")
            else:
                with c1:
                    options = _figure_options(kind, key, result)
        else:
            kind, options = "small-multiples", {}
            fmt = c2.selectbox("Format", ["gif", "mp4"], key=f"{key}_afmt")
            size = c3.selectbox("Size", list(paper.SIZES), index=2, key=f"{key}_asize",
                                format_func=lambda s: paper.SIZES[s].label)
            dpi = c3.number_input("DPI", 50, 300, 100, step=10, key=f"{key}_adpi")
            frames = c1.number_input("Frames", 2, 1000, 60, step=10, key=f"{key}_frames")
            duration = c1.number_input("Duration (s)", 0.5, 120.0, 6.0, step=0.5, key=f"{key}_duration")
            anim = {"frames": int(frames), "duration": float(duration)}
        try:
            spec = figspec.FigureSpec.from_result(result, kind=kind, options=options, size=size, dpi=int(dpi),
                                                  fmt=fmt, animation=anim, style=style or None)
            spec.check(fmt)
        except ValueError as e:
            st.error(str(e))
            return
        spec_json = spec.to_json()
        rid = result_key(result)
        ident = (rid, spec_json)
        name = f"gradscape-{kind if anim is None else 'animation'}.{fmt}"
        if prepare_button(key):
            try:
                with st.spinner(f"Rendering {name} ..."):
                    st.session_state[f"{key}_file"] = (ident, _render(rid, spec_json, fmt, result))
            except ValueError as e:
                st.error(str(e))
            prepared(key)       # not reached when the run is stopped while rendering: the next run renders
        ready = st.session_state.get(f"{key}_file")
        if ready is not None and ready[0] == ident:
            d1, d2 = st.columns(2)
            d1.download_button(f"Download {name} ({len(ready[1]) / 1024:.0f} KiB)", ready[1], file_name=name,
                               mime=MIME[fmt], key=f"{key}_download", on_click="ignore", type="primary")
            d2.download_button("Download its spec (JSON)", json.dumps(spec.to_dict(), indent=2), key=f"{key}_spec",
                               file_name=name + ".json", mime="application/json", on_click="ignore",
                               help="python -m trajectories figure --from-config THIS.json --out FILE rebuilds it")
        elif ready is not None:
            st.caption("The settings changed: prepare the file again.")


def job_export_panel(job_result, key_prefix: str) -> None:
    """The Benchmark page's Export panel: the paper-quality basin map or sweep heatmap of a job (one seed)."""
    key = f"{key_prefix}_jexport"
    with st.expander("Export for papers and slides", expanded=False):
        c1, c2, c3 = st.columns(3)
        kinds = {"basin": KIND_LABELS["basin"], "heatmap": KIND_LABELS["heatmap"]}
        kind = c1.selectbox("Figure", list(kinds), key=f"{key}_kind", format_func=kinds.get)
        metric = c1.selectbox("Metric", list(paper.METRICS), key=f"{key}_metric",
                              format_func=lambda m: paper.METRICS[m][0]) if kind == "heatmap" else None
        fmts = ["pdf", "svg", "png"] + (["pgf"] if save.latex_system() else [])
        fmt = c2.selectbox("Format", fmts, key=f"{key}_fmt")
        seeds = list(job_result.config.seeds)
        seed = c2.selectbox("Seed", seeds, key=f"{key}_seed") if len(seeds) > 1 else seeds[0]
        size = c3.selectbox("Size", list(paper.SIZES), index=1, key=f"{key}_size",
                            format_func=lambda s: paper.SIZES[s].label)
        dpi = c3.number_input("DPI (PNG)", 72, 1200, 300, step=50, key=f"{key}_dpi", disabled=fmt != "png")
        ident = (job_result.job_id, len(job_result.runs), kind, metric, fmt, int(seed), size, int(dpi))
        name = f"gradscape-{job_result.job_id}-{kind}.{fmt}"
        if prepare_button(key):
            try:
                with st.spinner(f"Rendering {name} ..."):
                    view = job_result.as_result(int(seed))
                    opts = {"metric": metric} if metric else {}
                    fig = paper.build(kind, view, None, size, **opts)
                    meta = {"job": job_result.job_id, "config": job_result.config.to_dict(), "figure": kind,
                            "options": opts, "seed": int(seed), "size": size}
                    st.session_state[f"{key}_file"] = (ident, save.figure_bytes(
                        fig, fmt, int(dpi), meta, title=f"Gradscape {kind}"))
            except ValueError as e:
                st.error(str(e))
            prepared(key)
        ready = st.session_state.get(f"{key}_file")
        if ready is not None and ready[0] == ident:
            st.download_button(f"Download {name} ({len(ready[1]) / 1024:.0f} KiB)", ready[1], file_name=name,
                               mime=MIME[fmt], key=f"{key}_download", on_click="ignore", type="primary")
