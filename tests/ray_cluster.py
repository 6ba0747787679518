"""A real Ray instance for the tests: ``ray start --head`` on 127.0.0.1 with 2 CPUs and no dashboard, in a
process group of its own, stopped by the ids it started with (never ``ray stop``, which stops every Ray on the
machine). Also how a test finds the worker processes that run chunks: they descend from that head process and
Ray titles them after the task they run (``ray::_run_chunk``).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
# Ray on one machine: loopback addresses stay loopback (jobs/ray_runner.py says why), no token to share
ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
TASK_TITLE = "ray::_run_chunk"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(d.name))
    return kids


def descendants(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def started(pid: int) -> str | None:
    """When ``pid`` started (clock ticks since boot): with the pid, it names one process, never a recycled pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def kill(pid: int, start: str | None, sig=signal.SIGKILL):
    """Signal the process ``pid`` if it is still the one that started at ``start``."""
    if start is not None and started(pid) == start:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return ""


class Head:
    """``with Head() as head: head.address``: a one-machine Ray cluster for the duration of the block."""

    def __init__(self, cpus: int = 2):
        self.cpus = cpus
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.temp = tempfile.mkdtemp(prefix="gsray", dir="/tmp")     # short: Ray's socket paths must fit 107 bytes
        self.proc = None

    def __enter__(self) -> "Head":
        os.environ.update(ENV)          # for the drivers the tests run in this process and the workers they spawn
        self.proc = subprocess.Popen(
            [RAY, "start", "--head", "--block", f"--port={self.port}", "--node-ip-address=127.0.0.1",
             f"--num-cpus={self.cpus}", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={self.temp}"],
            env=dict(os.environ), stdin=subprocess.DEVNULL, stdout=open(Path(self.temp) / "head.log", "wb"),
            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited: {(Path(self.temp) / 'head.log').read_text()[-2000:]}")
            if self._raylet_up():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("the Ray head did not come up in 90 s")

    def _raylet_up(self) -> bool:
        return any("raylet" in title(p) for p in descendants(self.proc.pid))

    def workers_running_chunks(self) -> list[int]:
        return [p for p in descendants(self.proc.pid) if title(p).startswith(TASK_TITLE)]

    def stop(self):
        if self.proc is None:
            return
        pids = [(p, started(p)) for p in descendants(self.proc.pid)]    # workers sit in process groups of their own
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=3)       # Ray's own shutdown takes longer; what is left is killed
        except subprocess.TimeoutExpired:
            pass
        for pid, start in pids:
            kill(pid, start)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.proc = None

    def __exit__(self, *exc):
        self.stop()
