"""The live map on a page: a Streamlit custom component (v2, in the page, no iframe) that draws a LiveFigure.

Why a component and not ``st.plotly_chart``: a Plotly chart is re-sent whole on every page run (1.2 MB per γ
move on the default view, 14 MB on a 12 x 12 grid, with playback frames); the component receives only the
pieces this browser does not hold yet (figures/live.py), animates in the browser, and keeps legend isolation
across runs. It is still a Plotly chart (``.js-plotly-plot``): the toolbar, the camera export and the tests work
on it as before.

Files: the frontend is ``static/gradscape/live_map.js`` (ours; ``plotly.js`` beside it loads Plotly.js, shared with
the playground) and Plotly.js from the installed plotly package (views/assets.py), both served by Streamlit's
static file serving (``.streamlit/config.toml``). The component itself is a tiny inline loader of the frontend
(``assets.component_js``).

Per session, ``st.session_state[f"{key}.sent"]`` holds the pieces already sent to this browser. A browser that
lost one (its cache evicted it) sends a "missing" event and gets everything again; a click on the map sends a
"click" event with the data coordinates; a frame that asks for it (a session's first map, views/explore.py) is
answered by a "drawn" event once drawn.
"""
from __future__ import annotations

import streamlit as st

from figures import live
from views import assets

assets.ensure_assets()
_COMPONENT = st.components.v2.component("gradscape_live_map", js=assets.component_js("live_map.js"),
                                         isolate_styles=False)


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


def show(fig: live.LiveFigure, *, key: str, on_click=None, on_drawn=None) -> int:
    """Draw ``fig`` as the live map ``key``; returns the bytes sent to the browser this run. With ``on_drawn``,
    the browser reports this frame's drawing (or its failure) with a "drawn" event, which calls it."""
    frame = live.encode(fig, _sent(key), meta={"reportDrawn": True} if on_drawn is not None else None)
    callbacks = {"on_missing_change": _on_missing(key)}
    if on_click is not None:
        callbacks["on_click_change"] = on_click
    if on_drawn is not None:
        callbacks["on_drawn_change"] = on_drawn
    _COMPONENT(key=key, data=frame, **callbacks)
    return len(frame)
