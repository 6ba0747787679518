"""Helpers shared by Gradscape's pages: page state <-> URL query parameters, with validation.

A page describes each of its controls as a :class:`Param` (URL key, default, parser). On a page's first
run in a session, :func:`read_params` turns ``st.query_params`` into values, keeping the default (and
reporting a problem that names the parameter) wherever a value is malformed; :func:`sync_url` writes the
values that differ from their defaults back after every run, so the address bar always reproduces the view.

Widgets do not bind to the URL themselves (``bind="query-params"``): a page must be able to hide its
controls (teaching links) without losing their values, and malformed values must be reported, not
dropped silently. The page's values live in ``st.session_state`` under the page's own key; widgets are
seeded from them (:func:`seed`).
"""
from __future__ import annotations

import functools
import gc
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import streamlit as st

from trajectories import specs

@functools.cache
def freeze_imported_heap() -> None:
    """Once per server process, after a page's imports: hand everything allocated so far (PyTorch, the engine, the
    figure code: ~200 000 objects) to ``gc.freeze`` so the garbage collector stops scanning it. A full collection
    then takes microseconds instead of ~0.1 s with the GIL held, which every session's redraws would otherwise wait
    on (measured in README "Performance"). Module-level objects live for the whole process anyway."""
    gc.freeze()


# Query parameters that Streamlit itself uses; never reported as unknown.
RESERVED = {"embed", "embed_options"}


@dataclass(frozen=True)
class Param:
    """One URL-backed control: ``parse(text) -> value`` raises ValueError with a readable reason."""

    key: str
    default: Any
    parse: Callable[[str], Any]
    fmt: Callable[[Any], str] | None = None

    def to_url(self, value) -> str:
        return (self.fmt or fmt_value)(value)

    def is_default(self, value) -> bool:
        return self.to_url(value) == self.to_url(self.default)


def fmt_value(v) -> str:
    """A value as it appears in the URL: numbers short but exact enough, lists comma-separated."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:.10g}"
    if isinstance(v, (list, tuple)):
        return ",".join(fmt_value(x) for x in v)
    return str(v)


# -- parsers --------------------------------------------------------------------------------------
def number(lo: float, hi: float, *, integer: bool = False, lo_open: bool = False) -> Callable[[str], Any]:
    """A parser for a number in [lo, hi] ((lo, hi] with ``lo_open``), optionally a whole number
    (trajectories/specs.py: one parser for every face; the URL reader names the parameter)."""
    return lambda text: specs.number(text, "", lo, hi, integer=integer, lo_open=lo_open)


def choice(options: Iterable[str]) -> Callable[[str], str]:
    opts = list(options)

    def parse(text: str) -> str:
        if text not in opts:
            raise ValueError(f"{text!r} is not one of {', '.join(opts)}")
        return text
    return parse


def flag(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{text!r} is not 1 or 0")


def numbers(count: int, lo: float, hi: float, *, lo_open: bool = False) -> Callable[[str], tuple]:
    """A parser for ``count`` comma-separated numbers, each in [lo, hi]."""
    return lambda text: specs.numbers(text, "", count, lo, hi, lo_open=lo_open)


# -- URL <-> values -------------------------------------------------------------------------------
MAX_PARAM_CHARS = 4_000         # one query parameter (an encoded custom landscape is at most 2 000)
MAX_URL_CHARS = 16_000          # all of them together


def read_params(specs: Iterable[Param], raw: dict[str, str]) -> tuple[dict, list[str]]:
    """Values for ``specs`` from the query parameters ``raw``: defaults where absent or malformed.

    Returns (values, problems); each problem is a sentence naming the parameter, its value and what
    was used instead.
    """
    values, problems = {}, []
    total = sum(len(str(v)) for v in raw.values())
    for p in specs:
        if p.key not in raw:
            values[p.key] = p.default
            continue
        text = str(raw[p.key])
        shown = text if len(text) <= 80 else text[:77] + "…"
        try:
            if len(text) > MAX_PARAM_CHARS or total > MAX_URL_CHARS:
                raise ValueError(f"too long ({len(text):,} characters; a parameter may have {MAX_PARAM_CHARS:,} "
                                 f"and the whole address {MAX_URL_CHARS:,})")
            values[p.key] = p.parse(text)
        except ValueError as e:
            values[p.key] = p.default
            problems.append(f"URL parameter `{p.key}={shown}`: {e}; using the default "
                            f"({p.to_url(p.default)[:80]}).")
    return values, problems


def unknown_params(raw: dict[str, str], known: Iterable[str]) -> list[str]:
    known = set(known) | RESERVED
    return [f"URL parameter `{k}` is not a control of this page; ignored." for k in raw if k not in known]


def url_values(specs: Iterable[Param], values: dict) -> dict[str, str]:
    """The values that differ from their defaults, as URL text."""
    return {p.key: p.to_url(values[p.key]) for p in specs if p.key in values and not p.is_default(values[p.key])}


def sync_url(desired: dict[str, str]) -> None:
    """Make ``st.query_params`` equal ``desired`` (Streamlit's reserved parameters kept); writes only on change."""
    current = {k: st.query_params[k] for k in st.query_params.keys() if k not in RESERVED}
    if current == desired:
        return
    keep = {k: st.query_params.get_all(k) for k in st.query_params.keys() if k in RESERVED}
    st.query_params.from_dict({**keep, **desired})


def query_string(desired: dict[str, str]) -> str:
    from urllib.parse import urlencode
    return urlencode(desired, safe=",:;")


# -- widgets ----------------------------------------------------------------------------------------
def seed(widget_key: str, value) -> None:
    """Give a widget its value from the page state the first time it is drawn (or after it was hidden)."""
    if widget_key not in st.session_state:
        st.session_state[widget_key] = value
