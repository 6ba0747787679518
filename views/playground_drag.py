"""The aggregator playground's chart with draggable task gradients: a Streamlit custom component (v2, in the page).

Why not ``st.plotly_chart``: in Streamlit 1.67 it reports point, box and lasso *selections* (``on_select``) and
nothing else; dragging an editable shape or annotation is a Plotly ``relayout``, which never reaches Python. This
component draws the same Plotly figure with ``edits.annotationPosition`` on and sends each drag back as a trigger
(``static/gradscape/playground.js``). The page's number inputs remain the primary control (and the only one a
test without a browser can drive); dragging is the enhancement.
"""
from __future__ import annotations

import json

import streamlit as st

from views import assets

assets.ensure_assets()
_COMPONENT = st.components.v2.component("gradscape_playground", js=assets.component_js("playground.js"),
                                         isolate_styles=False)


def drag_of(key: str) -> tuple[int, float, float] | None:
    """(task index, x, y) of the drag that triggered this run (inside the ``on_drag`` callback)."""
    event = (st.session_state.get(key) or {}).get("drag")
    if not isinstance(event, dict):
        return None
    try:
        k, x, y = int(event["k"]), float(event["x"]), float(event["y"])
    except (KeyError, TypeError, ValueError):
        return None
    return (k, x, y) if all(v == v and abs(v) < 1e12 for v in (x, y)) else None


def show(figure: dict, config: dict, *, key: str, on_drag) -> None:
    """Draw the playground figure; ``on_drag`` runs when the user drops a task gradient's head."""
    data = json.dumps({"figure": figure, "config": config}, separators=(",", ":"), allow_nan=False)
    _COMPONENT(key=key, data=data, on_drag_change=on_drag)
