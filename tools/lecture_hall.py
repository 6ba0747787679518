"""A lecture hall on one server: N browser sessions open the same Explore link at once, then each moves γ once.

    .venv/bin/python -m tools.lecture_hall [--sessions 10] [--link "?starts=paper"] [--json]

Loopback only, bounded: it starts ``streamlit run app.py`` on a free 127.0.0.1 port (or uses ``--url``, which
must be a loopback address), opens the sessions in one headless Chromium, and stops by itself (every wait has a
deadline; ``--timeout`` bounds the whole run). It reports each session's first-chart time (navigation start to
the live map's first drawing) and γ-redraw time (key press to the last redraw, tools/pagebench.py), the
server's CPU time and peak memory (Linux /proc of the server process; with ``--url`` these are not available).

Server CPU per extra session = (server CPU over the N sessions) / N, after one warm-up session has opened the
link and moved γ, so that what is measured is what sessions cost when the view is already computed and
prepared for anyone (cached on the frozen config).
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from urllib.parse import urlparse

from tools import pagebench as pb
from tools.serve import CHROMIUM, CHROMIUM_ARGS, streamlit_app

GAMMA = '[data-testid="stSlider"]'


async def _session(browser, url: str, timeout_ms: int) -> dict:
    ctx = await browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = await ctx.new_page()
        await page.add_init_script(pb.INIT)
        await page.goto(url)
        await page.wait_for_function("() => (window.__gradscapeDraws || []).length > 0", timeout=timeout_ms)
        await page.wait_for_function(pb.ALL_PAINTED, timeout=timeout_ms)
        first = await page.evaluate("() => window.__gradscapeDraws[0].painted") / 1000
        await page.wait_for_function("() => window.__gsSidebarAt > 0", timeout=timeout_ms)    # the whole page
        await _settle(page, timeout_ms)
        n = await page.evaluate("() => window.__gradscapeDraws.length")
        k = await page.evaluate("() => window.__gsInput.length")
        slider = page.locator(GAMMA).filter(has_text="similarity threshold").locator("input[type=range]").first
        await slider.focus()
        await page.keyboard.press("ArrowRight")
        await page.wait_for_function(f"() => window.__gradscapeDraws.length > {n}", timeout=timeout_ms)
        await _settle(page, timeout_ms)
        await page.wait_for_function(pb.ALL_PAINTED, timeout=timeout_ms)
        t_in = await page.evaluate(f"() => window.__gsInput[{k}]")
        last = await page.evaluate("() => window.__gradscapeDraws[window.__gradscapeDraws.length - 1].painted")
        return {"first_chart_s": first, "gamma_redraw_s": (last - t_in) / 1000}
    finally:
        await ctx.close()


async def _settle(page, timeout_ms):
    await page.wait_for_function(
        f"""() => {{ const d = window.__gradscapeDraws || []; const last = d.length ? d[d.length - 1].at : 0;
                     return !document.querySelector('[data-testid="stStatusWidget"]')
                            && performance.now() - last > {pb.SETTLE_MS}; }}""", timeout=timeout_ms)


async def _hall(url: str, n: int, timeout_ms: int, server) -> dict:
    from playwright.async_api import async_playwright
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            warm = await _session(browser, url, timeout_ms)            # computes and prepares the view once
            cpu0 = server.cpu_seconds() if server else None
            t0 = time.perf_counter()
            sessions = await asyncio.gather(*[_session(browser, url, timeout_ms) for _ in range(n)])
            wall = time.perf_counter() - t0
            cpu = server.cpu_seconds() - cpu0 if server else None
        finally:
            await browser.close()
    first = [s["first_chart_s"] for s in sessions]
    redraw = [s["gamma_redraw_s"] for s in sessions]
    return {"sessions": n, "warm_up": warm, "wall_s": wall,
            "first_chart_s": {"median": statistics.median(first), "max": max(first)},
            "gamma_redraw_s": {"median": statistics.median(redraw), "max": max(redraw)},
            "server_cpu_s": cpu, "server_cpu_per_session_s": None if cpu is None else cpu / n,
            "server_peak_rss_mib": server.peak_rss_mib() if server else None}


def report(r: dict) -> str:
    out = [f"{r['sessions']} sessions at once (after one warm-up session), all done in {r['wall_s']:.1f} s",
           f"first chart: median {r['first_chart_s']['median']:.2f} s, last {r['first_chart_s']['max']:.2f} s",
           f"γ move redrawn: median {r['gamma_redraw_s']['median']:.2f} s, slowest {r['gamma_redraw_s']['max']:.2f} s"]
    if r["server_cpu_s"] is not None:
        out.append(f"server CPU: {r['server_cpu_s']:.2f} s in all, {r['server_cpu_per_session_s']:.3f} s per session "
                   f"(first view + one γ move); peak RSS {r['server_peak_rss_mib']:.0f} MiB")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=10)
    ap.add_argument("--link", default="", help="the Explore query string every session opens (default: the defaults)")
    ap.add_argument("--url", help="a running app on a loopback address (default: start one)")
    ap.add_argument("--timeout", type=float, default=600, help="seconds before the whole run gives up (default 600)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not 1 <= args.sessions <= 50:
        ap.error("--sessions: between 1 and 50")
    if args.url and urlparse(args.url).hostname not in ("127.0.0.1", "localhost", "::1"):
        ap.error("--url: a loopback address only (this script loads a server; point it at your own)")
    link = args.link if not args.link or args.link.startswith("?") else "?" + args.link
    with (contextlib.nullcontext(None) if args.url else streamlit_app()) as server:
        base = (args.url or server.url).rstrip("/")
        result = asyncio.run(asyncio.wait_for(_hall(base + "/" + link, args.sessions, 300_000, server), args.timeout))
    print(json.dumps(result, indent=2) if args.json else report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
