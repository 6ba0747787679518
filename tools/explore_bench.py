"""The Explore page's speed in a real browser, against the budgets of the page (README "Performance").

    .venv/bin/python -m tools.explore_bench [--nudges 10] [--json]

Starts ``streamlit run app.py`` on a free loopback port (or uses ``--url``), drives Debian's Chromium with
Playwright and prints, for each scenario, the median latency from the key press to the map's last redraw on screen
(the browser's frame after it painted and committed; tools/pagebench.py), the median to Plotly's drawing call
returning ("drawn", which earlier rounds reported; for a WebGL canvas drawn in software, a second or more before it
is on screen), and the bytes per change — the live map's frame and everything on the websocket:

* default view (8 methods x 7 paper starts x 20 000 steps): γ nudged with the arrow key, ``--nudges`` times;
* 12 x 12 grid x 8 methods: γ nudges (SAM-GS reruns) and learning-rate steps (every method reruns);
* 50 x 50 grid x 8 methods (20 000 runs): the grid's n typed in, to the redrawn map (the engine runs cold);
* first chart in a fresh browser, server warm: navigation start to the map's first drawing on screen (median of
  ``--nudges`` / 2, at least 3, fresh browsers); and, in the same browsers, to the sidebar's controls on screen
  (a session's first run draws the map first, the rest once it is drawn: views/explore.py).

Each change is a new setting (nothing is served from the page's cache of earlier settings), and the server is
started fresh, so the first scenario pays the kernels' build; its first nudge is a warm-up and is not counted.

The machine's speed drifts (a third within an hour on the 2-core kind), so the run ends with a yardstick: one warm
engine call (SAM-GS x 7 paper starts x 20 000 steps) timed in this process, median of 7. Compare runs by it.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys

from tools import pagebench as pb
from tools.serve import CHROMIUM, CHROMIUM_ARGS, streamlit_app

# "12 x 12 grid, any change": each kind of change on its own (a γ move reruns SAM-GS; the learning rate every method)
BUDGETS = {"default γ nudge": (0.3, 200_000), "12 × 12 grid, γ nudge": (1.0, 1_500_000),
           "12 × 12 grid, learning rate": (1.0, 1_500_000),
           "50 × 50 grid": (5.0, None), "first chart, fresh browser": (2.5, None)}
VIEWPORT = {"width": 1500, "height": 1000}


def _nudges(page, wire, n: int, label: str, key: str = "ArrowRight") -> list[dict]:
    slider = pb.slider_input(page, label)
    return [pb.timed_change(page, pb.press(page, slider, key), wire) for _ in range(n)]


def run(url: str, nudges: int) -> dict:
    from playwright.sync_api import sync_playwright
    out = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        # 1. the default view
        ctx = browser.new_context(viewport=VIEWPORT)
        page = ctx.new_page()
        wire = pb.WireCounter(page)
        pb.open_page(page, url + "/")
        _nudges(page, wire, 1, "similarity threshold")                 # warm-up: SAM-GS's kernel at a new γ
        out["default γ nudge"] = pb.summary(_nudges(page, wire, nudges, "similarity threshold"))
        ctx.close()
        # 2. a 12 x 12 grid, and 3. a 50 x 50 grid typed into the same page
        ctx = browser.new_context(viewport=VIEWPORT)
        page = ctx.new_page()
        wire = pb.WireCounter(page)
        pb.open_page(page, url + "/?starts=grid:12")
        gamma = _nudges(page, wire, nudges, "similarity threshold")
        lr = _nudges(page, wire, max(3, nudges // 3), "Learning rate", "ArrowLeft")
        out["12 × 12 grid, γ nudge"] = pb.summary(gamma)
        out["12 × 12 grid, learning rate"] = pb.summary(lr)
        grid = page.get_by_label("n (an n × n grid over the box)")

        def type_50():
            grid.fill("50")
            grid.press("Enter")
        out["50 × 50 grid"] = pb.summary([pb.timed_change(page, type_50, wire)])
        ctx.close()
        # 4. fresh browsers on the (warm) default view, one after the other
        firsts, wholes, drawn = [], [], []
        for _ in range(max(3, nudges // 2)):
            ctx = browser.new_context(viewport=VIEWPORT)
            page = ctx.new_page()
            pb.open_page(page, url + "/")
            firsts.append(pb.first_chart_ms(page) / 1000)
            drawn.append(page.evaluate("() => window.__gradscapeDraws[0].at") / 1000)
            wholes.append(pb.sidebar_ms(page) / 1000)
            ctx.close()
        for name, times in (("first chart, fresh browser", firsts), ("sidebar too, fresh browser", wholes)):
            out[name] = {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                         "n": len(times)}
        out["first chart, fresh browser"]["drawn_median_s"] = statistics.median(drawn)
        browser.close()
    return out


def engine_yardstick_s(repeats: int = 7) -> float:
    """This machine's speed now: the median of ``repeats`` warm engine calls, SAM-GS x 7 paper starts x 20 000 steps."""
    import statistics
    import time

    import trajectories
    trajectories.simulate("one_optimum", ["samgs"], "paper", 20_000)       # loads (or builds) the kernel
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        trajectories.simulate("one_optimum", ["samgs"], "paper", 20_000)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def report(results: dict) -> str:
    lines = [f"{'scenario':32s} {'median s':>9s} {'min–max s':>13s} {'drawn s':>8s} {'map frame':>11s} "
             f"{'websocket':>11s}  budget"]
    for name, r in results.items():
        if not isinstance(r, dict):
            continue
        budget = BUDGETS.get(name)
        spread = f"{r['min_s']:.2f}–{r['max_s']:.2f}" if "min_s" in r else ""
        frame = f"{r['frame_bytes'] / 1e3:,.0f} KB" if "frame_bytes" in r else ""
        drawn = f"{r['drawn_median_s']:.3f}" if "drawn_median_s" in r else ""
        ws = f"{r['wire_bytes'] / 1e3:,.0f} KB" if "wire_bytes" in r else ""
        b = ""
        if budget:
            ok = r["median_s"] <= budget[0] and (budget[1] is None or r.get("wire_bytes", 0) <= budget[1])
            b = f"≤ {budget[0]} s" + (f", ≤ {budget[1] / 1e3:,.0f} KB" if budget[1] else "") + \
                ("  ok" if ok else "  OVER")
        lines.append(f"{name:32s} {r['median_s']:9.3f} {spread:>13s} {drawn:>8s} {frame:>11s} {ws:>11s}  {b}")
    if "yardstick_s" in results:
        lines.append(f"yardstick (engine, SAM-GS x 7 starts x 20 000 steps, this machine now): "
                     f"{results['yardstick_s'] * 1000:.1f} ms")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="an app already running (default: start one on a free loopback port)")
    ap.add_argument("--nudges", type=int, default=10, help="changes per scenario (default 10)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    with (contextlib.nullcontext(argparse.Namespace(url=args.url)) if args.url else streamlit_app()) as srv:
        results = run(srv.url.rstrip("/"), args.nudges)
    results["yardstick_s"] = engine_yardstick_s()
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
