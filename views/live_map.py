"""The live map on a page: a Streamlit custom component (v2, in the page, no iframe) that draws a LiveFigure.

Why a component and not ``st.plotly_chart``: a Plotly chart is re-sent whole on every page run (1.2 MB per γ
move on the default view, 14 MB on a 12 x 12 grid, with playback frames); the component receives only the
pieces this browser does not hold yet (figures/live.py), animates in the browser, and keeps legend isolation
across runs. It is still a Plotly chart (``.js-plotly-plot``): the toolbar, the camera export and the tests work
on it as before.

Files: the frontend is ``static/gradscape/live_map.js`` (ours) and Plotly.js from the installed plotly package,
gzipped once into ``static/vendor/plotly.min.js.gz`` (not committed; :func:`ensure_assets` does it). Streamlit serves
``static/`` because ``.streamlit/config.toml`` turns on static serving. Served as ``application/gzip``, the file is
sent as it is (1.5 MB) — a plain ``.js`` would be gzipped again by the server for every new browser, 0.14 s of CPU
each — and the browser inflates it (``DecompressionStream``). The component itself is a tiny inline loader.

Per session, ``st.session_state[f"{key}.sent"]`` holds the pieces already sent to this browser. A browser that
lost one (its cache evicted it) sends a "missing" event and gets everything again; a click on the map sends a
"click" event with the data coordinates.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
from pathlib import Path

import plotly
import streamlit as st

from figures import live

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "static"
FRONTEND = STATIC / "gradscape" / "live_map.js"
PLOTLY_GZ = STATIC / "vendor" / "plotly.min.js.gz"


def ensure_assets() -> None:
    """Gzip Plotly.js from the installed plotly package next to our frontend (once per install or upgrade: the
    archive's name records the source's size and time)."""
    src = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    stamp = f"{src.stat().st_size}-{int(src.stat().st_mtime)}"
    mark = PLOTLY_GZ.with_suffix(".stamp")
    if PLOTLY_GZ.exists() and mark.exists() and mark.read_text() == stamp:
        return
    PLOTLY_GZ.parent.mkdir(parents=True, exist_ok=True)
    tmp = PLOTLY_GZ.with_name(PLOTLY_GZ.name + f".{os.getpid()}.tmp")
    with open(src, "rb") as f_in, gzip.GzipFile(tmp, "wb", compresslevel=9, mtime=0) as f_out:
        shutil.copyfileobj(f_in, f_out)
    tmp.replace(PLOTLY_GZ)
    mark.write_text(stamp)


def _loader() -> str:
    # The version in the module's URL changes with its content, so a browser never runs a stale copy.
    version = hashlib.sha1(FRONTEND.read_bytes()).hexdigest()[:12]
    return ("export default function (args) {\n"
            f"  const url = new URL('app/static/gradscape/live_map.js?v={version}', document.baseURI).href;\n"
            "  let cleanup = null, gone = false;\n"
            "  import(url).then((m) => { if (!gone) cleanup = m.render(args); })\n"
            "    .catch((e) => { args.parentElement.dataset.error = String(e); console.error(e); });\n"
            "  return () => { gone = true; if (cleanup) cleanup(); };\n"
            "}\n")


ensure_assets()
_COMPONENT = st.components.v2.component("gradscape_live_map", js=_loader(), isolate_styles=False)


def _sent(key: str) -> set:
    return st.session_state.setdefault(f"{key}.sent", set())


def _on_missing(key: str):
    def callback() -> None:
        _sent(key).clear()      # the next run sends every piece again
    return callback


def click_of(key: str) -> tuple[float, float] | None:
    """The data coordinates of the click that triggered this run (inside an ``on_click`` callback)."""
    event = (st.session_state.get(key) or {}).get("click")
    if not isinstance(event, dict):
        return None
    try:
        x, y = float(event["x"]), float(event["y"])
    except (KeyError, TypeError, ValueError):
        return None
    return (x, y) if all(map(lambda v: v == v and abs(v) < 1e12, (x, y))) else None


def show(fig: live.LiveFigure, *, key: str, on_click=None) -> int:
    """Draw ``fig`` as the live map ``key``; returns the bytes sent to the browser this run."""
    frame = live.encode(fig, _sent(key))
    callbacks = {"on_missing_change": _on_missing(key)}
    if on_click is not None:
        callbacks["on_click_change"] = on_click
    _COMPONENT(key=key, data=frame, **callbacks)
    return len(frame)
