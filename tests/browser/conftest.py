"""Browser tests: ``streamlit run app.py`` on a free loopback port (tools/serve.py), driven by Debian's chromium
through Playwright. Playwright's own browser downloads are never used. Screenshots go to ``artifacts/screenshots/``
(git-ignored).
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import pytest

from tools.serve import CHROMIUM, CHROMIUM_ARGS, ROOT, streamlit_app

SCREENSHOTS = ROOT / "artifacts" / "screenshots"


@contextlib.contextmanager
def _app_url(env: dict | None = None):
    with streamlit_app(env) as srv:
        yield srv.url


@pytest.fixture(scope="session")
def app_launcher():
    """A context manager starting the app with settings of its own; yields its base URL."""
    return _app_url


@pytest.fixture(scope="session")
def server():
    """The app on its defaults; yields its base URL."""
    with streamlit_app() as srv:
        yield srv.url


@pytest.fixture(scope="session")
def browser_context():
    """A persistent chromium context on a fresh user-data dir (downloads accepted)."""
    from playwright.sync_api import sync_playwright
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"{CHROMIUM} is missing: install Debian's chromium (scripts/setup.sh --with-browser)")
    user_data = tempfile.mkdtemp(prefix="gradscape-chromium-")
    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(user_data, executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                                    headless=True, accept_downloads=True,
                                                    viewport={"width": 1500, "height": 1100})
        yield ctx
        ctx.close()
    shutil.rmtree(user_data, ignore_errors=True)


@pytest.fixture
def page(browser_context):
    """A new tab; JavaScript errors on the page are collected in ``page.js_errors``."""
    p = browser_context.new_page()
    p.js_errors = []
    p.on("pageerror", lambda e: p.js_errors.append(str(e)))
    yield p
    p.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
