"""Browser tests: ``streamlit run app.py`` on a free loopback port, driven by Debian's chromium through Playwright.

Chromium is the system's (``/usr/bin/chromium``, installed by ``scripts/setup.sh --with-browser``); Playwright's
own browser downloads are never used. Screenshots go to ``artifacts/screenshots/`` (git-ignored).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_app(env: dict | None = None):
    """``streamlit run app.py`` on 127.0.0.1:<free port> with ``env`` added; yields its base URL."""
    port = _free_port()
    streamlit = Path(sys.executable).with_name("streamlit")
    cmd = [str(streamlit), "run", "app.py", "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    log = tempfile.NamedTemporaryFile("w+", prefix="streamlit-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + START_TIMEOUT_S
    try:
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.seek(0)
                raise RuntimeError(f"streamlit did not start on {url}:\n{log.read()[-4000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        os.unlink(log.name)


@pytest.fixture(scope="session")
def app_launcher():
    """``streamlit_app`` for tests that need a server with settings of their own."""
    return streamlit_app


@pytest.fixture(scope="session")
def server():
    """The app on its defaults; yields its base URL."""
    with streamlit_app() as url:
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
