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
SERVERS: dict = {}          # base URL -> tools.serve.Server, for the report of a failing test
PAGE_STATE = """() => ({title: document.title, url: location.href,
    running: !!document.querySelector('[data-testid="stStatusWidget"]'),
    draws: (window.__gradscapeDraws || []).length,
    files: performance.getEntriesByType('resource').length,
    component_errors: [...document.querySelectorAll('[data-error]')].map(e => e.dataset.error),
    text: document.body.innerText.slice(0, 800)})"""


@contextlib.contextmanager
def _app_url(env: dict | None = None):
    with streamlit_app(env) as srv:
        SERVERS[srv.url] = srv
        try:
            yield srv.url
        finally:
            SERVERS.pop(srv.url, None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing browser test reports what the page showed and what every thread of its server was doing (a
    SIGUSR1 thread dump from the server's log): a page that never draws is otherwise a bare timeout."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    args = getattr(item, "funcargs", {})
    page = args.get("page")
    if page is not None:
        try:
            state = page.wait_for_function(PAGE_STATE, timeout=5000).json_value()     # a hung tab times out
            report.sections.append(("page state", f"{state!r}\nJavaScript errors: {page.js_errors!r}"))
        except Exception as e:       # the page itself may be what broke
            report.sections.append(("page state", f"unreadable: {e}"))
    urls = [v for v in args.values() if isinstance(v, str)] + [v[0] for v in args.values() if isinstance(v, tuple)
                                                               and v and isinstance(v[0], str)]
    for url in dict.fromkeys(u for u in urls if u in SERVERS):
        try:
            dump = SERVERS[url].thread_dump()
        except OSError as e:
            dump = f"unreadable: {e}"
        report.sections.append((f"server {url}: log and thread dump", dump))


@pytest.fixture(scope="session")
def app_launcher():
    """A context manager starting the app with settings of its own; yields its base URL."""
    return _app_url


@pytest.fixture(scope="session")
def server():
    """The app on its defaults; yields its base URL."""
    with _app_url() as url:
        yield url


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
