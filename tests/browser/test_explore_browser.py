"""The Explore page in real Chromium against ``streamlit run``: it loads without an exception, the γ slider
redraws the SAM-GS paths, a URL opens the same view, a click on the map adds (and removes) a start, and the
Result download loads with ``Result.load``. Screenshots of the main views go to artifacts/screenshots/.

The drawn data is read from the page itself: ``document.querySelector('.js-plotly-plot')`` is the map (the
first chart of the page); its ``data`` holds the traces as sent, ``_fullData`` the decoded arrays.
"""
from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

pytestmark = pytest.mark.browser

FIRST_PLOT_TIMEOUT_MS = 300_000     # a cold server imports torch and builds kernels on the first visit
RERUN_TIMEOUT_MS = 120_000

QUICK = "methods=samgs,ls&steps=2000"

TRACE = """(name) => { const gd = document.querySelector('.js-plotly-plot');
  const t = gd && gd._fullData && gd._fullData.find(t => t.name === name);
  return t ? [Array.from(t.x), Array.from(t.y)] : null; }"""
TRACE_NAMES = "() => document.querySelector('.js-plotly-plot').data.map(t => t.name)"
RAW_TRACE = """(name) => { const gd = document.querySelector('.js-plotly-plot');
  const t = gd && gd.data.find(t => t.name === name); return t ? JSON.stringify([t.x, t.y]) : null; }"""
TO_PIXELS = """([x, y]) => { const gd = document.querySelector('.js-plotly-plot'); const r = gd.getBoundingClientRect();
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  return [r.left + xa._offset + xa.d2p(x), r.top + ya._offset + ya.d2p(y)]; }"""


def open_page(page, base: str, query: str = ""):
    page.goto(base + "/" + (f"?{query}" if query else ""))
    page.wait_for_selector(".js-plotly-plot", timeout=FIRST_PLOT_TIMEOUT_MS)
    wait_idle(page)


def wait_idle(page):
    """Wait until Streamlit has finished the current run (its status widget gone) and the plot is drawn."""
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                           timeout=RERUN_TIMEOUT_MS)
    page.wait_for_selector(".js-plotly-plot", timeout=RERUN_TIMEOUT_MS)
    page.wait_for_timeout(300)


def no_exceptions(page):
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.js_errors == []


def wait_changed(page, js: str, arg, before, timeout=RERUN_TIMEOUT_MS):
    page.wait_for_function(f"([a, before]) => {{ try {{ return JSON.stringify(({js})(a)) !== before }} "
                           f"catch (e) {{ return false }} }}", arg=[arg, before], timeout=timeout)


def query_of(page) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def test_page_loads_without_exception(page, server, screenshots):
    open_page(page, server)
    no_exceptions(page)
    names = page.evaluate(TRACE_NAMES)
    assert "SAM-GS" in names and "start" in names and "Pareto set" in names and "optimum" in names
    assert len(page.evaluate(TRACE, "start")[0]) == 7          # the paper's seven starts
    page.screenshot(path=str(screenshots / "explore-map-overlay.png"), full_page=True)


def test_gamma_slider_changes_the_samgs_paths(page, server, screenshots):
    open_page(page, server)
    before = page.evaluate(RAW_TRACE, "SAM-GS")
    ls_before = page.evaluate(RAW_TRACE, "LS")
    slider = page.locator('[data-testid="stSlider"]').filter(has_text="similarity threshold")
    track = slider.locator('[data-orientation="horizontal"]').nth(1).bounding_box()
    thumb = slider.locator('[data-testid="stSliderThumbValue"]').locator("..").bounding_box()
    y = thumb["y"] + thumb["height"] / 2
    page.mouse.move(thumb["x"] + thumb["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(track["x"] + 0.5 * track["width"], y, steps=6)
    t0 = time.perf_counter()
    page.mouse.up()
    page.wait_for_function(f"(before) => ({RAW_TRACE})('SAM-GS') !== before", arg=before, timeout=RERUN_TIMEOUT_MS)
    redraw_s = time.perf_counter() - t0
    wait_idle(page)
    gamma = float(slider.locator("input[type=range]").input_value())
    assert 0.3 <= gamma <= 0.7, gamma
    assert float(query_of(page)["samgs.gamma"]) == pytest.approx(gamma)
    assert page.evaluate(RAW_TRACE, "LS") == ls_before           # only SAM-GS depends on gamma
    no_exceptions(page)
    print(f"\nslider move -> SAM-GS paths redrawn in {redraw_s:.2f} s (browser, end to end)")
    page.screenshot(path=str(screenshots / "explore-map-gamma.png"), full_page=True)


def test_a_url_with_parameters_opens_the_same_view(page, server, browser_context, screenshots):
    query = ("land=two_optima&methods=samgs,ls&samgs.gamma=0.3&steps=3000&starts=grid:3&loss=task1"
             "&lr=0.002&layout=overlay")
    open_page(page, server, query)
    no_exceptions(page)
    assert page.locator('[data-testid="stSlider"]').filter(has_text="similarity threshold") \
        .locator("input[type=range]").input_value() == "0.3"
    assert page.get_by_role("combobox", name="Landscape").input_value().startswith("Two optima")
    names = set(page.evaluate(TRACE_NAMES))
    assert {"SAM-GS", "LS"} <= names and "PCGrad" not in names
    assert len(page.evaluate(TRACE, "start")[0]) == 9
    title = page.evaluate("() => document.querySelector('.js-plotly-plot')._fullLayout.title.text")
    assert "task 1" in title and "Two optima" in title
    written = query_of(page)                                          # written back (layout: the default)
    assert set(written.pop("methods").split(",")) == {"samgs", "ls"}
    assert written == {k: v[0] for k, v in parse_qs(query).items() if k not in ("methods", "layout")}
    samgs = page.evaluate(RAW_TRACE, "SAM-GS")
    other = browser_context.new_page()                                # a second visit: the same drawing
    try:
        open_page(other, server, query)
        assert other.evaluate(RAW_TRACE, "SAM-GS") == samgs
    finally:
        other.close()
    page.screenshot(path=str(screenshots / "explore-url-two-optima.png"), full_page=True)


def test_a_click_on_the_map_adds_and_removes_a_start(page, server):
    open_page(page, server, QUICK)
    before = page.evaluate(TRACE, "start")
    assert len(before[0]) == 7
    px = page.evaluate(TO_PIXELS, [5.0, -5.0])
    page.mouse.move(*px)
    page.wait_for_timeout(200)
    page.mouse.click(*px)
    wait_changed(page, TRACE, "start", page.evaluate("(v) => JSON.stringify(v)", before))
    wait_idle(page)
    after = np.array(page.evaluate(TRACE, "start")).T
    assert len(after) == 8
    new = after[-1]
    assert np.hypot(new[0] - 5.0, new[1] - -5.0) < 0.5               # the click target grid is ~0.44 apart
    assert len(query_of(page)["starts"].split(";")) == 8
    no_exceptions(page)
    # clicking the new start removes it again: back to the paper preset
    px = page.evaluate(TO_PIXELS, [float(new[0]), float(new[1])])
    page.mouse.move(*px)
    page.wait_for_timeout(200)
    page.mouse.click(*px)
    wait_changed(page, TRACE, "start", page.evaluate("(v) => JSON.stringify(v)", after.T.tolist()))
    wait_idle(page)
    assert len(page.evaluate(TRACE, "start")[0]) == 7
    assert "starts" not in query_of(page)
    no_exceptions(page)


def test_the_result_download_loads(page, server, tmp_path):
    from trajectories import Result
    open_page(page, server, QUICK)
    with page.expect_download(timeout=RERUN_TIMEOUT_MS) as dl:
        page.get_by_role("button", name="Result (.npz)").click()
    path = tmp_path / "downloaded.npz"
    dl.value.save_as(path)
    res = Result.load(path)
    assert sorted(res.methods) == ["ls", "samgs"]
    assert res.config["steps"] == 2000 and res.positions.shape[:2] == (2, 7)
    assert np.allclose(res.starts[0], [-8.0, 5.0])
    with page.expect_download(timeout=RERUN_TIMEOUT_MS) as dl:
        page.get_by_role("button", name="Trajectories (.csv)").click()
    csv = tmp_path / "t.csv"
    dl.value.save_as(csv)
    header = csv.read_text().splitlines()[0].split(",")
    assert header[:6] == ["method", "label", "start", "start_x", "start_y", "step"]
    no_exceptions(page)


TITLE = "() => { const gd = document.querySelector('.js-plotly-plot'); " \
        "return gd && gd._fullLayout && gd._fullLayout.title ? gd._fullLayout.title.text : ''; }"


def test_screenshots_of_the_main_views(page, server, screenshots):
    """Switch views on one session (the engine result is cached) and keep a screenshot of each."""
    open_page(page, server)
    page.get_by_text("One panel per method", exact=True).click()
    page.wait_for_function(f"() => ({TITLE})().includes('one panel per method')", timeout=RERUN_TIMEOUT_MS)
    wait_idle(page)
    page.screenshot(path=str(screenshots / "explore-small-multiples.png"), full_page=True)
    for label, marker, name in (("Loss space", "Loss space", "explore-loss-space"),
                                ("Diagnostics", "gradients at step", "explore-diagnostics")):
        page.get_by_text(label, exact=True).click()
        page.wait_for_function(f"() => ({TITLE})().includes('{marker}')", timeout=RERUN_TIMEOUT_MS)
        wait_idle(page)
        no_exceptions(page)
        page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)
    page.get_by_text("Summary", exact=True).click()
    page.wait_for_selector("[data-testid='stDataFrame']", timeout=RERUN_TIMEOUT_MS)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                           timeout=RERUN_TIMEOUT_MS)
    page.wait_for_timeout(500)
    no_exceptions(page)
    page.screenshot(path=str(screenshots / "explore-summary.png"), full_page=True)
    open_page(page, server, "teach=1&land=two_optima")
    assert page.locator('[data-testid="stSlider"]').count() == 0          # no controls on a teaching link
    no_exceptions(page)
    page.screenshot(path=str(screenshots / "explore-teaching-link.png"), full_page=True)
