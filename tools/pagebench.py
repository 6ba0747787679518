"""Timing the Explore page in Chromium: from an input event to the live map's last redraw on screen, and the bytes
that crossed the websocket meanwhile. Shared by tools/explore_bench.py and tools/lecture_hall.py.

The page records input times itself (a capturing keydown / pointerup listener added before any page script runs),
and the live map records when each frame was drawn and when the browser's next frame after it was painted and
committed (``window.__gradscapeDraws``: ``at`` and ``painted``, static/gradscape/live_map.js), so every time is
read from the browser's one clock (``performance.now()``). "On screen" is ``painted``: Plotly.react returns before
a WebGL canvas is drawn, and where WebGL is emulated on the CPU that comes a second or more later.
"""
from __future__ import annotations

import statistics
import time

SIDEBAR_WATCH = """(() => { const look = () => {      // when the sidebar's controls are on screen (window.__gsSidebarAt)
  const sb = document.querySelector('[data-testid="stSidebarUserContent"]');
  if (sb && sb.innerText.includes('Learning rate')) { window.__gsSidebarAt = performance.now(); return; }
  requestAnimationFrame(look); }; requestAnimationFrame(look); })();"""
INIT = """window.__gsInput = [];
for (const ev of ['keydown', 'pointerup'])
  document.addEventListener(ev, () => window.__gsInput.push(performance.now()), true);
""" + SIDEBAR_WATCH      # the sidebar follows a session's first map (views/explore.py)
IDLE = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
DRAWS = "() => (window.__gradscapeDraws || []).map(d => [d.painted, d.bytes, d.at])"
ALL_PAINTED = "() => (window.__gradscapeDraws || []).every(d => d.painted !== undefined)"
SETTLE_MS = 700          # no new draw for this long, and Streamlit idle: the change is over


class WireCounter:
    """Bytes the page received over websockets (Streamlit's deltas, the live map's frames among them)."""

    def __init__(self, page):
        self.frames: list[tuple[float, int]] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._on))

    def _on(self, payload):
        self.frames.append((time.perf_counter(), len(payload) if isinstance(payload, (bytes, str)) else 0))

    def mark(self) -> int:
        return len(self.frames)

    def since(self, mark: int) -> int:
        return sum(n for _, n in self.frames[mark:])


def open_page(page, url: str, timeout_ms: int = 300_000):
    """Open Explore and wait until the whole page is there: the map, then (a session's first run draws the map
    first) the sidebar, unless it is a teaching link, and no redraw for SETTLE_MS."""
    page.add_init_script(INIT)
    page.goto(url)
    page.wait_for_function("() => (window.__gradscapeDraws || []).length > 0", timeout=timeout_ms)
    if "teach=" not in url:
        page.wait_for_function("() => window.__gsSidebarAt > 0", timeout=timeout_ms)
    settle(page, timeout_ms)


def settle(page, timeout_ms: int = 300_000) -> None:
    """Wait until Streamlit is idle and the map has not redrawn for SETTLE_MS."""
    page.wait_for_function(
        f"""() => {{ const d = window.__gradscapeDraws || []; const last = d.length ? d[d.length - 1].at : 0;
                     return ({IDLE})() && performance.now() - last > {SETTLE_MS}; }}""", timeout=timeout_ms)


def first_chart_ms(page, timeout_ms: int = 300_000) -> float:
    """Milliseconds from navigation start to the live map's first drawing on screen."""
    page.wait_for_function("() => window.__gradscapeDraws[0].painted !== undefined", timeout=timeout_ms)
    return page.evaluate("() => window.__gradscapeDraws[0].painted")


def sidebar_ms(page, timeout_ms: int = 300_000) -> float:
    """Milliseconds from navigation start to the sidebar's controls on screen (the whole page)."""
    page.wait_for_function("() => window.__gsSidebarAt > 0", timeout=timeout_ms)
    return page.evaluate("() => window.__gsSidebarAt")


def timed_change(page, act, wire: WireCounter, timeout_ms: int = 300_000) -> dict:
    """Run ``act()`` (which presses a key or clicks), wait for the page to settle; the latency is from the input
    event to the last redraw of the map after it."""
    n_draws = page.evaluate("() => (window.__gradscapeDraws || []).length")
    n_input = page.evaluate("() => window.__gsInput.length")
    mark = wire.mark()
    act()
    page.wait_for_function(f"() => (window.__gradscapeDraws || []).length > {n_draws}", timeout=timeout_ms)
    settle(page, timeout_ms)
    page.wait_for_function(ALL_PAINTED, timeout=timeout_ms)
    t_in = page.evaluate(f"() => window.__gsInput[{n_input}]")
    draws = page.evaluate(DRAWS)[n_draws:]
    return {"latency_s": (draws[-1][0] - t_in) / 1000, "drawn_s": (draws[-1][2] - t_in) / 1000,
            "frame_bytes": sum(b for _, b, _ in draws), "wire_bytes": wire.since(mark), "draws": len(draws)}


def slider_input(page, label: str):
    """The range input of the Streamlit slider whose label contains ``label``."""
    return page.locator('[data-testid="stSlider"]').filter(has_text=label).locator("input[type=range]").first


def press(page, locator, key: str):
    def act():
        locator.focus()
        page.keyboard.press(key)
    return act


def summary(samples: list[dict]) -> dict:
    lat = [s["latency_s"] for s in samples]
    return {"n": len(samples), "median_s": statistics.median(lat), "min_s": min(lat), "max_s": max(lat),
            "drawn_median_s": statistics.median(s["drawn_s"] for s in samples),
            "frame_bytes": int(statistics.median(s["frame_bytes"] for s in samples)),
            "wire_bytes": int(statistics.median(s["wire_bytes"] for s in samples))}
