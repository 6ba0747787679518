"""``streamlit run app.py`` on a free loopback port, for the browser tests and the page benchmarks.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``scripts/setup.sh --with-browser``); Playwright's own
browser downloads are never used. Everything listens on 127.0.0.1 only.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running app: its base URL and its process (for CPU and memory readings)."""

    def __init__(self, url: str, proc: subprocess.Popen, log_path: str | None = None):
        self.url, self.proc, self.log_path = url, proc, log_path

    def log_tail(self, chars: int = 6000) -> str:
        """The end of the server's output (stdout and stderr)."""
        if not self.log_path:
            return ""
        text = Path(self.log_path).read_text(errors="replace")
        return text[-chars:]

    def thread_dump(self, wait_s: float = 1.0) -> str:
        """Every thread's Python stack, as the server prints it on SIGUSR1 (app.py registers faulthandler), with
        the log lines before it: what a page that never draws was waiting for."""
        if self.proc.poll() is not None:
            return f"the server has exited (status {self.proc.returncode})\n" + self.log_tail()
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(wait_s)
        return self.log_tail(20000)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextlib.contextmanager
def streamlit_app(env: dict | None = None):
    """``streamlit run app.py`` on 127.0.0.1:<free port> with ``env`` added; yields a :class:`Server`."""
    port = free_port()
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
        yield Server(url, proc, log.name)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        with contextlib.suppress(FileNotFoundError):      # a /tmp cleaner may have been first
            os.unlink(log.name)
