"""Explore's research views in real Chromium: the published paths drawn under the runs, dragging a task gradient in
the playground, the fragility view. Each test reads what the browser drew (Plotly's ``_fullData`` / ``_fullLayout``)
and the page's address.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from test_explore_live import TIMEOUT_MS, no_exceptions, open_map, query_of

pytestmark = pytest.mark.browser

PLAYGROUND_READY = ("() => document.querySelector('.gs-playground') && "
                    "+document.querySelector('.gs-playground').dataset.ready > 0")
READY_COUNT = "() => +(document.querySelector('.gs-playground') || {dataset: {}}).dataset.ready || 0"
LABEL_AT = """(k) => { const gd = document.querySelector('.gs-playground-plot'); const xa = gd._fullLayout.xaxis;
    const ya = gd._fullLayout.yaxis; const r = gd.getBoundingClientRect(); const a = gd._fullLayout.annotations[k];
    return {x: r.left + xa._offset + xa.d2p(a.ax), y: r.top + ya._offset + ya.d2p(a.ay), unit: xa._m}; }"""
D_OF = """(name) => { const t = document.querySelector('.gs-playground-plot')._fullData.find(t => t.name === name);
    return [t.x[1], t.y[1]]; }"""


def idle_page(page):
    page.wait_for_timeout(400)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS)
    page.wait_for_timeout(600)


def test_the_published_paths_are_drawn_grey_and_dashed_under_the_runs(page, server, screenshots):
    open_map(page, server, "methods=samgs,ls&ghosts=1")
    info = page.evaluate("""() => { const gd = document.querySelector('.gs-live .js-plotly-plot');
        const names = gd._fullData.map(t => t.name); const g = names.indexOf('published path');
        const t = gd._fullData[g];
        return {g, samgs: names.indexOf('SAM-GS'), ls: names.indexOf('LS'), dash: t.line.dash, color: t.line.color,
                breaks: Array.from(t.x).filter(v => v === null || Number.isNaN(v)).length,
                drawn: [...gd.querySelectorAll('.scatterlayer .trace')[g - 1].querySelectorAll('path.js-line')]
                       .map(p => p.getAttribute('d').split('M').length - 1).reduce((a, b) => a + b, 0)}; }""")
    assert info["g"] < info["samgs"] and info["g"] < info["ls"]         # under the runs
    assert info["dash"] == "dash" and info["color"].startswith("rgba(40,40,40")
    assert info["breaks"] == 14 and info["drawn"] == 14                 # 7 paper starts x 2 methods, each drawn
    assert page.get_by_text("Published paths under 14 run(s)", exact=False).count() == 1
    page.screenshot(path=str(screenshots / "explore-ghosts.png"))
    no_exceptions(page)


def test_dragging_a_task_gradient_moves_it_and_every_direction(page, server, screenshots):
    page.goto(server + "/?view=playground&methods=ls,mgda,samgs")
    page.wait_for_function(PLAYGROUND_READY, timeout=TIMEOUT_MS)
    idle_page(page)
    assert query_of(page).get("pg") is None                          # the default, §9's T2: g2 = (-1, 1)
    at = page.evaluate(LABEL_AT, 1)
    n = page.evaluate(READY_COUNT)
    page.mouse.move(at["x"], at["y"])
    page.mouse.down()
    page.mouse.move(at["x"], at["y"] + 2 * at["unit"], steps=10)      # two units down: g2 = (-1, -1)
    page.mouse.up()
    page.wait_for_function(f"() => ({READY_COUNT})() > {n}", timeout=TIMEOUT_MS)
    idle_page(page)
    g2 = [float(v) for v in query_of(page)["pg"].split(";")[1].split(",")]
    assert np.allclose(g2, (-1, -1), atol=0.05)
    # LS writes g1 + g2 (methods-spec.md §5.1); MGDA the min-norm point of the segment, scaled by K = 2
    g = np.array([[2.0, 0.0], g2])
    np.testing.assert_allclose(page.evaluate(D_OF, "LS"), g.sum(0), atol=1e-4)
    a, b, c = g[0] @ g[0], g[1] @ g[1], g[0] @ g[1]
    w = min(max((b - c) / (a + b - 2 * c), 0), 1)
    np.testing.assert_allclose(page.evaluate(D_OF, "MGDA"), 2 * (w * g[0] + (1 - w) * g[1]), atol=1e-4)
    # the number inputs follow the drag
    angle = page.get_by_label("g2 angle (°)").input_value()
    assert float(angle) == pytest.approx(math.degrees(math.atan2(g2[1], g2[0])), abs=0.01)
    page.screenshot(path=str(screenshots / "explore-playground.png"))
    no_exceptions(page)


def test_the_fragility_view_draws_the_cloud_and_the_flips(page, server, screenshots):
    page.goto(server + "/?view=fragility&methods=samgs&fstart=1&fring=16")
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT_MS)
    idle_page(page)
    names = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullData.map(t => t.name)")
    assert any(n.startswith("nudged → ") for n in names) and any(n.startswith("float64") for n in names)
    page.screenshot(path=str(screenshots / "explore-fragility-one.png"))
    page.get_by_text("Every start", exact=True).click()
    idle_page(page)
    page.wait_for_function("() => [...document.querySelectorAll('.js-plotly-plot')].some(gd => gd._fullData && "
                           "gd._fullData.some(t => t.name === 'outcome flips under the nudge'))", timeout=TIMEOUT_MS)
    for _ in range(40):                 # the run the click started writes the address when it ends
        if query_of(page).get("fmode") == "all":
            break
        page.wait_for_timeout(250)
    assert query_of(page).get("fmode") == "all"
    page.screenshot(path=str(screenshots / "explore-fragility-all.png"))
    no_exceptions(page)
