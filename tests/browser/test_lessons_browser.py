"""The Lessons page and the config round trip in real Chromium: every step renders with its figure, its
"Present this step" link reopens it without navigation or controls, and a config downloaded from Explore, uploaded
into a fresh Explore, reproduces the view.

Uses the shared browser fixtures (tests/browser/conftest.py). Screenshots go to artifacts/screenshots/.
"""
from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest

from views import lesson_steps

pytestmark = pytest.mark.browser

FIRST_TIMEOUT_MS = 300_000
RERUN_TIMEOUT_MS = 120_000


def wait_idle(page, timeout=RERUN_TIMEOUT_MS):
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)
    page.wait_for_timeout(400)


def no_exceptions(page):
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.js_errors == []


def query_of(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def test_every_lesson_step_renders_and_its_link_reopens_it_in_presentation_mode(page, server, screenshots):
    for i, step in enumerate(lesson_steps.STEPS):
        page.goto(f"{server}/lessons?lesson={step.slug}")
        page.get_by_role("heading", name=f"{i + 1} / {len(lesson_steps.STEPS)} · {step.title}").wait_for(
            timeout=FIRST_TIMEOUT_MS)
        page.wait_for_selector(".js-plotly-plot", timeout=FIRST_TIMEOUT_MS)
        wait_idle(page)
        no_exceptions(page)
        assert page.get_by_text("What to notice:").count() == 1
        assert page.locator('[data-testid="stSidebar"]').count() == 1           # the app's navigation
        present = page.get_by_role("link", name="Present this step").get_attribute("href")
        assert query_of(present) == {"lesson": step.slug, "teach": "1"}
        page.goto(present)
        page.get_by_role("heading", name=f"{i + 1} / {len(lesson_steps.STEPS)} · {step.title}").wait_for(
            timeout=RERUN_TIMEOUT_MS)
        page.wait_for_selector(".js-plotly-plot", timeout=RERUN_TIMEOUT_MS)
        wait_idle(page)
        no_exceptions(page)
        assert page.locator('[data-testid="stSidebar"]').count() == 0           # presentation: no navigation
        assert page.get_by_role("heading", name="Lessons").count() == 0
        explore = page.get_by_role("link", name="Open in Explore").get_attribute("href")
        assert urlparse(explore).path.endswith("/explore") and "teach" not in query_of(explore)
        if step.slug == "sum":
            page.screenshot(path=str(screenshots / "lesson-sum-presenting.png"), full_page=True)


def test_a_knob_moves_the_lesson_and_the_link_keeps_it(page, server):
    page.goto(f"{server}/lessons?lesson=nan")
    page.wait_for_selector(".js-plotly-plot", timeout=FIRST_TIMEOUT_MS)
    wait_idle(page)
    page.get_by_test_id("stRadioGroup").get_by_text("clean", exact=True).click()
    page.wait_for_function("() => location.search.includes('pipe=clean')", timeout=RERUN_TIMEOUT_MS)
    wait_idle(page)
    no_exceptions(page)
    url = page.url
    page.goto(url)                                                       # the link reopens it
    page.wait_for_selector(".js-plotly-plot", timeout=RERUN_TIMEOUT_MS)
    wait_idle(page)
    assert page.get_by_role("radio", name="clean").is_checked()


def test_a_config_downloaded_from_explore_and_uploaded_reproduces_the_view(page, server, tmp_path):
    query = "methods=samgs,ls&steps=1500&samgs.gamma=0.3&starts=grid:3&pipe=clean&lr=0.002"
    page.goto(f"{server}/?{query}")
    page.wait_for_selector(".js-plotly-plot", timeout=FIRST_TIMEOUT_MS)
    wait_idle(page)
    with page.expect_download(timeout=RERUN_TIMEOUT_MS) as dl:
        page.get_by_role("button", name="Config (.json)", exact=True).click()
    path = tmp_path / "gradscape-config.json"
    dl.value.save_as(path)
    saved = json.loads(path.read_text())
    assert saved["hparams"]["samgs"]["gamma"] == 0.3 and saved["steps"] == 1500
    page.goto(server + "/")                                              # a fresh view on the defaults
    page.wait_for_selector(".js-plotly-plot", timeout=RERUN_TIMEOUT_MS)
    wait_idle(page)
    assert "samgs.gamma" not in query_of(page.url)
    page.locator('[data-testid="stSidebar"] input[type="file"]').set_input_files(str(path))
    page.wait_for_function("() => location.search.includes('samgs.gamma=0.3')", timeout=RERUN_TIMEOUT_MS)
    wait_idle(page)
    no_exceptions(page)
    got = query_of(page.url)
    want = query_of("?" + query)
    assert set(got.pop("methods").split(",")) == set(want.pop("methods").split(","))
    assert got == want
    assert page.get_by_text("Opened gradscape-config.json").count() >= 1
