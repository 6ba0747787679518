"""The live map in real Chromium: the drawing bugs of the old page stay fixed, and the address is the state.

Each test reads what the browser drew (``.js-plotly-plot``: Plotly's ``data`` / ``_fullData`` / ``_fullLayout``, the
SVG it rendered) or where things are on screen (bounding boxes), never the page's own bookkeeping.
"""
from __future__ import annotations

import contextlib
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest
from playwright.sync_api import expect

from tools.pagebench import SIDEBAR_WATCH

pytestmark = pytest.mark.browser

TIMEOUT_MS = 300_000
QUICK = "methods=samgs,ls,pcgrad&steps=3000"
CONTOUR_PATHS = "() => document.querySelectorAll('.gs-live .contourlayer path').length"
DRAWS = "() => (window.__gradscapeDraws || []).length"
NAMES_VISIBLE = """() => document.querySelector('.gs-live .js-plotly-plot').data
    .filter(t => t.showlegend !== false && t.name).map(t => [t.name, t.visible === undefined ? true : t.visible])"""


def idle(page, settle_ms: int = 700):
    """Streamlit idle and the map not redrawn for ``settle_ms``."""
    page.wait_for_function(
        f"""() => {{ const d = window.__gradscapeDraws || []; const last = d.length ? d[d.length - 1].at : 0;
                     return !document.querySelector('[data-testid="stStatusWidget"]') && d.length > 0
                            && performance.now() - last > {settle_ms}; }}""", timeout=TIMEOUT_MS)


def open_map(page, base, query=""):
    page.goto(base + "/" + (f"?{query}" if query else ""))
    page.wait_for_function(DRAWS + " > 0", timeout=TIMEOUT_MS)
    idle(page)


def wait_redraw(page, n_before):
    page.wait_for_function(f"() => ({DRAWS})() > {n_before}", timeout=TIMEOUT_MS)
    idle(page)


def query_of(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def nudge_gamma(page, key="ArrowRight"):
    n = page.evaluate(DRAWS)
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="similarity threshold").locator("input[type=range]")
    slider.focus()
    page.keyboard.press(key)
    wait_redraw(page, n)


def pick(page, label: str):
    """Click a radio option of the main area and wait until the page has run."""
    page.get_by_text(label, exact=True).click()
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS)
    page.wait_for_timeout(600)


def no_exceptions(page):
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.js_errors == []
    assert page.evaluate("() => [...document.querySelectorAll('[data-error]')].map(e => e.dataset.error)") == []


# -- bug 1: playback and scrubbing keep the contour -------------------------------------------------------
def test_playback_and_scrubbing_keep_the_contour(page, server, screenshots):
    open_map(page, server, QUICK)
    before = page.evaluate(CONTOUR_PATHS)
    assert before > 20
    page.click(".gs-play")
    page.wait_for_function("() => +document.querySelector('.gs-live').parentElement.dataset.frame > 5",
                           timeout=30_000)
    assert page.evaluate(CONTOUR_PATHS) == before                   # while playing
    page.click(".gs-play")                                          # pause
    page.evaluate("() => { const s = document.querySelector('.gs-scrub'); s.value = String(Math.floor(s.max / 2));"
                  " s.dispatchEvent(new Event('input')); }")
    page.wait_for_timeout(300)
    assert page.evaluate(CONTOUR_PATHS) == before                   # after scrubbing
    step = int(page.locator(".gs-step").text_content().removeprefix("step ").replace(",", ""))
    assert 1000 <= step <= 2000                                     # the middle of 3 000 steps
    page.screenshot(path=str(screenshots / "explore-playback.png"))
    no_exceptions(page)


CONTOUR_D = "() => [...document.querySelectorAll('.gs-live .contourlayer path')].map(p => p.getAttribute('d'))"
WATCH_CONTOUR = """() => { window.__contourChanges = 0; if (window.__contourWatch) window.__contourWatch.disconnect();
    window.__contourWatch = new MutationObserver((m) => { window.__contourChanges += m.length; });
    window.__contourWatch.observe(document.querySelector('.gs-live .contourlayer'),
                                  {attributes: true, childList: true, subtree: true, characterData: true}); }"""
SAMGS_X = "() => Array.from(document.querySelector('.gs-live .js-plotly-plot')._fullData.find(t => t.name === 'SAM-GS').x)"


def test_a_gamma_move_leaves_the_contour_untouched_and_a_zoom_traces_it_again(page, server):
    """The contour is the costliest trace to draw; a redraw that changes only the paths keeps its SVG as it was
    (not one attribute of the layer changes), while a zoom or another contour choice draws it anew."""
    open_map(page, server, QUICK)
    nudge_gamma(page)                       # the first redraw: from here on an unchanged contour is kept
    d, paths = page.evaluate(CONTOUR_D), page.evaluate(SAMGS_X)
    page.evaluate(WATCH_CONTOUR)
    nudge_gamma(page)
    assert page.evaluate(SAMGS_X) != paths                          # the paths were redrawn ...
    assert page.evaluate("() => window.__contourChanges") == 0      # ... the contour's SVG not touched
    assert page.evaluate(CONTOUR_D) == d and len(d) > 20
    page.evaluate("() => window.Plotly.relayout(document.querySelector('.gs-live .js-plotly-plot'),"
                  " {'xaxis.range': [-6, 6], 'yaxis.range': [-6, 6]})")
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.__contourChanges") > 0       # a zoom traces it at the new scale
    zoomed = page.evaluate(CONTOUR_D)
    assert zoomed != d and len(zoomed) > 20
    n = page.evaluate(DRAWS)
    page.get_by_text("task 1", exact=True).click()                 # another contour: another z
    wait_redraw(page, n)
    assert page.evaluate(CONTOUR_D) not in (d, zoomed) and page.evaluate(CONTOUR_PATHS) > 20
    no_exceptions(page)


# -- bug 2: the Pareto set is a few long pieces ------------------------------------------------------------
PARETO_PIECES = """() => { const t = document.querySelector('.gs-live .js-plotly-plot')._fullData.find(t => t.name === 'Pareto set');
  const x = Array.from(t.x); const pieces = []; let n = 0;
  for (const v of x) { if (v === null || Number.isNaN(v)) { if (n) pieces.push(n); n = 0; } else n += 1; }
  if (n) pieces.push(n); return [t.mode, pieces]; }"""


@pytest.mark.parametrize("query", ["land=one_optimum", "land=two_optima", "land=custom"])
def test_the_pareto_set_is_drawn_as_a_few_long_pieces(page, server, query):
    open_map(page, server, query + "&methods=ls&steps=200")
    mode, pieces = page.evaluate(PARETO_PIECES)
    assert mode == "lines"
    assert 1 <= len(pieces) <= 3 and min(pieces) >= 50, pieces
    # and the browser drew it: the trace's SVG path has as many moves as pieces
    d = page.evaluate("""() => { const gd = document.querySelector('.gs-live .js-plotly-plot');
        const i = gd._fullData.findIndex(t => t.name === 'Pareto set');
        return gd.querySelectorAll('.scatterlayer .trace')[i - 1].querySelector('path.js-line').getAttribute('d'); }""")
    assert d.count("M") == len(pieces)


# -- bug 3 and 4: the address is the state; Back and Forward ------------------------------------------------
def _share_links(page):
    page.get_by_test_id("stPopoverButton").filter(has_text="Share").click()
    box = page.locator('[data-testid="stPopoverBody"]')
    fields = [box.get_by_label("This view", exact=False), box.get_by_label("Teaching link", exact=False)]
    for field in fields:        # the popover's body mounts on the click: its fields fill a moment later
        expect(field).not_to_have_value("", timeout=10_000)
    links = [field.input_value() for field in fields]
    page.keyboard.press("Escape")
    return links


def test_after_each_interaction_the_address_and_the_share_box_equal_the_state(page, server):
    open_map(page, server, QUICK)
    steps = [("gamma", lambda: nudge_gamma(page), {"samgs.gamma": "0.11"}),
             ("view", lambda: pick(page, "Diagnostics"), {"view": "diag"}),
             ("back to the map", lambda: pick(page, "Map"), {}),
             ("layout", lambda: pick(page, "One panel per method"), {"layout": "multiples"}),
             ("contour", lambda: pick(page, "task 1"), {"loss": "task1"})]
    expected = {"methods": "ls,pcgrad,samgs", "steps": "3000"}
    for name, act, change in steps:
        act()
        if name == "back to the map":
            expected.pop("view")
        expected.update(change)
        for _ in range(40):             # the run the interaction started writes the address when it ends
            if query_of(page) == expected:
                break
            page.wait_for_timeout(250)
        assert query_of(page) == expected, name
        link, teach = _share_links(page)[:2]
        assert parse_qs(urlparse(link).query) == parse_qs(urlparse(page.url).query), name
        assert urlparse(link).netloc == urlparse(page.url).netloc and link.startswith("http"), name
        assert {k: v[0] for k, v in parse_qs(urlparse(teach).query).items()} == {**expected, "teach": "1"}, name
    no_exceptions(page)


def test_back_and_forward_step_between_deliberate_changes(page, server):
    open_map(page, server, QUICK)
    start = page.evaluate("() => history.length")
    pick(page, "Loss space")
    nudge_gamma(page)
    assert page.evaluate("() => history.length") == start + 2             # one entry per change
    n = page.evaluate(DRAWS)
    page.go_back()
    wait_redraw(page, n)
    assert query_of(page).get("samgs.gamma") is None and query_of(page)["view"] == "loss"
    gamma = page.locator('[data-testid="stSlider"]').filter(has_text="similarity threshold")
    assert gamma.locator("input[type=range]").input_value() == "0.1"      # the widget follows the address
    n = page.evaluate(DRAWS)
    page.go_back()
    wait_redraw(page, n)
    assert "view" not in query_of(page)
    title = page.evaluate("() => document.querySelector('.gs-live .js-plotly-plot')._fullLayout.title.text")
    assert "weighted sum" in title                                          # the map again, not the loss space
    n = page.evaluate(DRAWS)
    page.go_forward()
    wait_redraw(page, n)
    assert query_of(page)["view"] == "loss"
    no_exceptions(page)


def test_opening_benchmark_adds_one_history_entry(page, server):
    open_map(page, server, QUICK)
    before = page.evaluate("() => history.length")
    page.get_by_role("link", name="Benchmark").click()
    page.wait_for_function("() => location.pathname.endsWith('/benchmark')", timeout=TIMEOUT_MS)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=TIMEOUT_MS)
    page.wait_for_timeout(1500)
    assert page.evaluate("() => history.length") == before + 1
    page.go_back()
    page.wait_for_function(DRAWS + " > 0", timeout=TIMEOUT_MS)
    assert query_of(page) == {"methods": "ls,pcgrad,samgs", "steps": "3000"}


# -- bug 5: isolation, the camera, colours, overlaps, dense grids ---------------------------------------------
def test_legend_isolation_survives_a_gamma_move(page, server):
    open_map(page, server, QUICK)
    page.locator(".legend .traces").filter(has_text="LS").first.dblclick()
    page.wait_for_timeout(500)
    isolated = dict(page.evaluate(NAMES_VISIBLE))
    assert isolated["LS"] is True and isolated["SAM-GS"] == "legendonly" and isolated["PCGrad"] == "legendonly"
    before = page.evaluate("() => JSON.stringify(document.querySelector('.gs-live .js-plotly-plot').data"
                           ".find(t => t.name === 'SAM-GS').x)")
    nudge_gamma(page)
    after = page.evaluate("() => JSON.stringify(document.querySelector('.gs-live .js-plotly-plot').data"
                          ".find(t => t.name === 'SAM-GS').x)")
    assert after != before                                                  # SAM-GS's paths did change
    assert dict(page.evaluate(NAMES_VISIBLE)) == isolated


def test_the_camera_exports_the_map_without_the_playback_controls(page, server):
    open_map(page, server, QUICK)
    buttons = page.evaluate("() => [...document.querySelectorAll('.gs-live .modebar-btn')].map(b => b.dataset.title)")
    assert "Download plot as a PNG" in buttons and "Share chart..." not in buttons      # nothing leaves the app
    layout = page.evaluate("() => { const l = document.querySelector('.gs-live .js-plotly-plot').layout;"
                           " return [l.updatemenus || null, l.sliders || null, l.height]; }")
    assert layout[:2] == [None, None]                                       # the controls are not in the figure
    size = page.evaluate("""async () => { const gd = document.querySelector('.gs-live .js-plotly-plot');
        const url = await Plotly.toImage(gd, {format: 'png', scale: 1});
        const img = new Image(); img.src = url; await img.decode(); return [img.width, img.height]; }""")
    assert size[1] == page.evaluate("() => document.querySelector('.gs-live .js-plotly-plot')._fullLayout.height")
    assert page.locator(".gs-play").is_visible()                            # they are on the page, outside it


def _overlap(a, b) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"] or
                a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


@contextlib.contextmanager
def sized_page(browser_context, width: int, height: int):
    page = browser_context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda e: page.js_errors.append(str(e)))
    page.set_viewport_size({"width": width, "height": height})
    try:
        yield page
    finally:
        page.close()


def test_nothing_overlaps_at_1024_pixels(browser_context, server, screenshots):
    with sized_page(browser_context, 1024, 800) as page:
        open_map(page, server, "steps=2000")
        legend = page.locator(".gs-live .legend").bounding_box()
        colorbar = page.locator(".gs-live .colorbar").bounding_box()
        plot = page.locator(".gs-live .nsewdrag").first.bounding_box()
        assert not _overlap(legend, colorbar) and not _overlap(legend, plot) and not _overlap(colorbar, plot)
        button = page.locator(".gs-play").bounding_box()
        label = page.locator(".gs-step").bounding_box()
        scrub = page.locator(".gs-scrub").bounding_box()
        assert not _overlap(button, label) and not _overlap(button, scrub) and not _overlap(scrub, label)
        names = [n for n, _ in page.evaluate(NAMES_VISIBLE)]
        assert "end" in names and "start" in names                          # both markers explained
        page.screenshot(path=str(screenshots / "explore-1024.png"))


def test_a_dense_grid_draws_thin_translucent_paths_without_rings(page, server):
    open_map(page, server, "starts=grid:12&methods=samgs,ls&steps=2000")
    path = page.evaluate("() => { const t = document.querySelector('.gs-live .js-plotly-plot')._fullData"
                         ".find(t => t.name === 'SAM-GS'); return [t.line.width, t.opacity, t.x.length]; }")
    assert path[0] < 1 and path[1] < 1 and path[2] >= 144 * 8
    starts = page.evaluate("() => document.querySelector('.gs-live .js-plotly-plot')._fullData"
                           ".find(t => t.name === 'start').marker.size")
    assert starts <= 5


# where each row's run is at the playback frame, in canvas pixels, from the drawn traces and Plotly's own axes, and the
# canvas's alpha there (and one marker radius to the right, where a ring is drawn)
PLAYBACK_PIXELS = """() => {
  const root = document.querySelector('.gs-live').parentElement, gd = document.querySelector('.gs-live .js-plotly-plot');
  const map = root.__gradscapeMap, pb = map.pb, t = map.frame, lay = gd._fullLayout, c = document.querySelector('.gs-overlay');
  const ctx = c.getContext('2d'), ratio = c.width / gd.clientWidth, out = [];
  for (const row of pb.rows) {
    const tr = gd._fullData[row.trace], xa = lay.xaxis, ya = lay.yaxis;
    for (let s = 0; s < pb.S; s++) {
      const x = gd.data[row.trace].x[s * (pb.P + 1) + t], y = gd.data[row.trace].y[s * (pb.P + 1) + t];
      const px = xa._offset + xa.d2p(x), py = ya._offset + ya.d2p(y);
      if (px < xa._offset + 2 || px > xa._offset + xa._length - 2 || py < ya._offset + 2 || py > ya._offset + ya._length - 2) continue;
      const at = (u, v) => ctx.getImageData(Math.round(u * ratio), Math.round(v * ratio), 1, 1).data[3];
      out.push([tr.visible === true, at(px, py), at(px + pb.size / 2, py)]);
    }
  }
  return {ring: pb.ring, points: out};
}"""


def test_playback_draws_a_marker_for_every_run_and_none_for_a_hidden_method(page, server):
    # a dense grid: a filled dot per run, drawn on the canvas over the plot (static/gradscape/live_map.js)
    open_map(page, server, "starts=grid:7&methods=samgs,ls&steps=2000")
    page.evaluate("() => { const s = document.querySelector('.gs-scrub'); s.value = String(Math.floor(s.max / 3));"
                  " s.dispatchEvent(new Event('input')); }")
    seen = page.evaluate(PLAYBACK_PIXELS)
    assert not seen["ring"] and len(seen["points"]) >= 2 * 40
    assert all(centre > 0 for _, centre, _ in seen["points"])
    # both methods hidden (the legend's double click does the same): an empty canvas
    page.evaluate("""() => { const gd = document.querySelector('.gs-live .js-plotly-plot');
        const rows = gd.data.map((t, i) => i).filter(i => ['SAM-GS', 'LS'].includes(gd.data[i].name));
        return document.querySelector('.gs-live').parentElement.__gradscapeMap.P.restyle(gd, {visible: 'legendonly'}, rows); }""")
    page.wait_for_timeout(300)
    hidden = page.evaluate(PLAYBACK_PIXELS)
    assert hidden["points"] and not any(v for v, _, _ in hidden["points"])
    assert all(centre == 0 and edge == 0 for _, centre, edge in hidden["points"])
    # a few starts: a ring per run, its centre left clear where no other ring passes
    open_map(page, server, QUICK)
    rings = page.evaluate(PLAYBACK_PIXELS)
    assert rings["ring"] and all(edge > 0 for _, _, edge in rings["points"])
    assert sum(centre == 0 for _, centre, _ in rings["points"]) >= len(rings["points"]) // 2
    no_exceptions(page)


BUNDLES = """() => performance.getEntriesByType('resource').map(r => r.name.split('?')[0].split('/').pop())
    .filter(n => /^plotly.*[.]min[.]js/.test(n))"""
SAMGS_TYPE = "() => document.querySelector('.gs-live .js-plotly-plot')._fullData.find(t => t.name === 'SAM-GS').type"
CLICK_LISTENERS = "() => document.querySelector('.gs-live .js-plotly-plot')._ev.listeners('plotly_click').length"


RENDERER = """() => { const gl = document.createElement('canvas').getContext('webgl');
    const info = gl && gl.getExtension('WEBGL_debug_renderer_info');
    return gl ? String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER)) : ''; }"""
PLOT_CANVASES = "() => document.querySelectorAll('.gs-live .js-plotly-plot canvas').length"
SVG_LINES = "() => document.querySelectorAll('.gs-live .scatterlayer .trace path.js-line').length"


def test_a_map_without_webgl_loads_the_small_bundle_and_one_with_webgl_the_full_one(page, server):
    # a browser with a GPU (told so: this machine's Chromium has none) draws dense paths with WebGL
    page.add_init_script("window.__gsWebGL = 'hardware'")
    # the cartesian bundle (a third of the full one's size) draws the map until a figure needs WebGL
    open_map(page, server, "starts=grid:6&methods=samgs,ls&steps=2000")
    # by plain <script> tags (the server sends the .gz files as Content-Encoding: gzip), not fetched and inflated
    assert page.evaluate(BUNDLES) == ["plotly-cartesian.min.js"] and page.evaluate(SAMGS_TYPE) == "scatter"
    n = page.evaluate(DRAWS)
    field = page.get_by_label("n (an n × n grid over the box)")
    field.fill("40")
    field.press("Enter")                       # 2 methods x 1 600 starts: past the WebGL threshold
    wait_redraw(page, n)
    assert page.evaluate(BUNDLES) == ["plotly-cartesian.min.js", "plotly.min.js"]
    assert page.evaluate(SAMGS_TYPE) == "scattergl"
    assert page.evaluate(PLOT_CANVASES) > 0                                     # drawn by WebGL
    assert page.evaluate(CLICK_LISTENERS) == 1                                  # the map's events, once
    no_exceptions(page)


def test_where_webgl_runs_in_software_dense_paths_are_drawn_as_svg(page, server):
    # this machine's Chromium (--disable-gpu) emulates WebGL on the CPU, where a WebGL canvas takes seconds to
    # reach the screen: the figure the page sends is the one above (WebGL paths), its lines are drawn as SVG, with
    # the small bundle, and no canvas
    open_map(page, server, "starts=grid:6&methods=samgs,ls&steps=2000")
    assert "SwiftShader" in page.evaluate(RENDERER)
    n = page.evaluate(DRAWS)
    field = page.get_by_label("n (an n × n grid over the box)")
    field.fill("40")
    field.press("Enter")
    wait_redraw(page, n)
    assert page.evaluate(SAMGS_TYPE) == "scatter"
    assert page.evaluate(BUNDLES) == ["plotly-cartesian.min.js"] and page.evaluate(PLOT_CANVASES) == 0
    assert page.evaluate(SVG_LINES) >= 2                                        # each method's paths, in the SVG
    no_exceptions(page)


# -- presentation mode ---------------------------------------------------------------------------------------
def test_presentation_mode_puts_the_map_above_the_fold(browser_context, server, screenshots):
    with sized_page(browser_context, 1280, 720) as page:
        open_map(page, server, "teach=1&knobs=gamma")
        plot = page.locator(".gs-live .js-plotly-plot").bounding_box()
        controls = page.locator(".gs-controls").bounding_box()
        assert plot["y"] >= 0 and controls["y"] + controls["height"] <= 720
        assert plot["width"] >= 0.5 * 1280
        assert page.locator('[data-testid="stSidebar"]').count() == 0          # no empty sidebar
        assert page.get_by_role("button", name="Result (.npz)").count() == 0   # no download row
        body = page.locator('[data-testid="stMainBlockContainer"]').inner_text()
        assert "engine" not in body                                            # no timing caption
        assert "One optimum" in body and "SAM-GS" in body and "γ 0.1" in body and "20,000 steps" in body
        assert page.locator('[data-testid="stSlider"]').filter(has_text="similarity threshold").count() == 1
        page.screenshot(path=str(screenshots / "explore-presentation-1280x720.png"))
        no_exceptions(page)


def test_a_click_adds_a_start_where_it_lands(page, server):
    open_map(page, server, QUICK)
    n = page.evaluate(DRAWS)
    px = page.evaluate("""([x, y]) => { const gd = document.querySelector('.gs-live .js-plotly-plot');
        const r = gd.getBoundingClientRect(); const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        return [r.left + xa._offset + xa.d2p(x), r.top + ya._offset + ya.d2p(y)]; }""", [4.3, -6.1])
    page.mouse.move(*px)
    page.wait_for_timeout(200)
    page.mouse.click(*px)
    wait_redraw(page, n)
    # the map may redraw more than once (a session's first map is followed by the whole page's run, which can
    # still be on its way under load): wait for the drawing with the eighth start, then look where it is
    start_xy = ("() => { const t = document.querySelector('.gs-live .js-plotly-plot')._fullData"
                ".find(t => t.name === 'start'); return [Array.from(t.x), Array.from(t.y)]; }")
    page.wait_for_function(f"() => ({start_xy})()[0].length === 8", timeout=TIMEOUT_MS)
    starts = np.array(page.evaluate(start_xy)).T
    assert len(starts) == 8 and np.hypot(*(starts[-1] - [4.3, -6.1])) < 0.1


def test_a_browser_that_lost_its_pieces_gets_them_again(page, server):
    open_map(page, server, QUICK)
    page.evaluate("() => window.__gradscapePieces.clear()")       # as if the cache had evicted everything
    n = page.evaluate(DRAWS)
    nudge_gamma(page)            # the page sends SAM-GS's new paths only; the browser asks for the rest
    page.wait_for_function(f"() => ({DRAWS})() > {n}", timeout=TIMEOUT_MS)
    idle(page)
    names = [t for t, _ in page.evaluate(NAMES_VISIBLE)]
    assert {"SAM-GS", "LS", "PCGrad", "Pareto set"} <= set(names)
    counts = page.evaluate("() => document.querySelector('.gs-live .js-plotly-plot')._fullData"
                           ".filter(t => ['SAM-GS', 'LS', 'PCGrad'].includes(t.name)).map(t => t.x.length)")
    assert counts and all(c > 100 for c in counts)                  # every path is drawn again, in full
    assert page.evaluate(CONTOUR_PATHS) > 20
    no_exceptions(page)


SIDEBAR_CONTROLS = "() => window.__gsSidebarAt > 0"


def test_a_fresh_browser_gets_the_map_first_and_then_the_whole_page(page, server):
    """A new session's map is drawn before the sidebar's controls and the download row arrive; they come right
    after, on the map's own report, and the page then works as ever (a γ move redraws)."""
    page.add_init_script(SIDEBAR_WATCH)
    open_map(page, server, QUICK)
    page.wait_for_function(SIDEBAR_CONTROLS, timeout=TIMEOUT_MS)
    idle(page)
    first_draw, sidebar = page.evaluate("() => [window.__gradscapeDraws[0].at, window.__gsSidebarAt]")
    assert first_draw < sidebar
    expect(page.get_by_role("button", name="Result (.npz)")).to_be_visible()
    assert "steps=3000" in _share_links(page)[0]
    nudge_gamma(page)
    assert query_of(page)["samgs.gamma"] != "0.1"
    no_exceptions(page)


def test_after_a_gamma_move_the_downloads_hold_the_view_on_screen(page, server, tmp_path):
    """The download row and the export panel sit outside the live area's fragment, so a γ move does not redraw
    them: the downloaded Result and config are still those of the γ on screen, and a figure prepared before the
    move is no longer offered."""
    import json

    from trajectories import Result
    page.add_init_script(SIDEBAR_WATCH)
    open_map(page, server, QUICK)
    page.wait_for_function(SIDEBAR_CONTROLS, timeout=TIMEOUT_MS)
    idle(page)
    nudge_gamma(page)
    gamma = float(query_of(page)["samgs.gamma"])
    assert gamma != 0.1
    with page.expect_download(timeout=TIMEOUT_MS) as dl:
        page.get_by_role("button", name="Result (.npz)").click()
    dl.value.save_as(tmp_path / "r.npz")
    res = Result.load(tmp_path / "r.npz")
    assert res.config["hparams"]["samgs"]["gamma"] == gamma and res.config["steps"] == 3000
    with page.expect_download(timeout=TIMEOUT_MS) as dl:
        page.get_by_role("button", name="Config (.json)", exact=True).click()
    dl.value.save_as(tmp_path / "c.json")
    assert json.loads((tmp_path / "c.json").read_text())["hparams"]["samgs"]["gamma"] == gamma
    page.get_by_text("Export for papers, slides and lectures").click()
    go = page.get_by_role("button", name="Prepare file")
    expect(go).to_be_enabled(timeout=TIMEOUT_MS)
    idle(page)
    go.click()
    prepared = page.get_by_role("button", name="Download gradscape-overlay.pdf", exact=False)
    try:
        expect(prepared).to_be_visible(timeout=60_000)
    except AssertionError:
        # Seen in about half of the full parallel runs since 2026-12-07, and once in 6 repetitions of these steps
        # alone (2026-12-08): the click left an idle page with neither a file nor an error. Logged on the websocket
        # then, the click sent nothing at all (a click that works sends a rerun of the whole page with its
        # trigger), ~1.3 s after a fragment rerun without triggers and right after the two deferred downloads'
        # backend requests: Streamlit's frontend dropped the click. Not fixed on our side; a second click makes
        # the file, as it would for a user.
        print("Prepare file: a second click was needed")
        idle(page)
        go.click()
        expect(prepared).to_be_visible(timeout=120_000)
    idle(page)
    nudge_gamma(page)
    expect(prepared).to_have_count(0, timeout=TIMEOUT_MS)       # the file of the γ before is gone
    no_exceptions(page)


def test_a_map_that_cannot_load_says_so_instead_of_staying_blank(page, server, screenshots):
    """Plotly.js unreachable (both bundles, script tag and fetch), then the map's own code: each time the map's place
    says what failed and to reload, and the sidebar comes as after a drawing; once the files come back, a reload
    draws the map and the message is gone."""
    page.route("**/vendor/plotly*", lambda route: route.abort())
    page.add_init_script(SIDEBAR_WATCH)
    page.goto(server + "/?" + QUICK)
    expect(page.get_by_text("This figure could not be drawn", exact=False)).to_be_visible(timeout=TIMEOUT_MS)
    assert page.evaluate(DRAWS) == 0 and page.locator(".gs-failure[role=alert]").count() == 1
    page.wait_for_function(SIDEBAR_CONTROLS, timeout=TIMEOUT_MS)    # the rest of the page came all the same
    page.screenshot(path=str(screenshots / "explore-map-failed.png"))
    page.unroute("**/vendor/plotly*")
    page.route("**/gradscape/live_map.js*", lambda route: route.abort())
    page.reload()
    expect(page.get_by_text("This figure could not load its code", exact=False)).to_be_visible(timeout=TIMEOUT_MS)
    assert page.evaluate(DRAWS) == 0 and page.locator("[data-error][role=alert]").count() == 1
    page.wait_for_function(SIDEBAR_CONTROLS, timeout=TIMEOUT_MS)
    page.unroute("**/gradscape/live_map.js*")
    page.reload()
    page.wait_for_function(DRAWS + " > 0", timeout=TIMEOUT_MS)
    idle(page)
    assert page.get_by_text("could not", exact=False).count() == 0
    no_exceptions(page)
