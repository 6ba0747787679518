"""The Ray runner: a job's chunks as Ray tasks, for sweeps that outgrow one machine.

The job's process (the page's worker, or the CLI) is the Ray *driver*: it joins the cluster named by the job's
``cluster`` field (``"local"`` starts a Ray instance on this machine and stops it after the job), ships this
checkout's code with the tasks (``runtime_env.working_dir``), and submits one task per chunk. Rules:

* a task computes its chunk with the local worker's own call (``chunks.compute``, ``device="auto"`` resolved on
  the machine that runs it) and returns it serialised; one task per core (``num_cpus=1``, one engine thread),
  or one per GPU where the cluster has GPUs and the job may use them;
* only the driver writes the store, through ``chunks.save`` (the local worker's path: the file written and
  renamed into place, then the index row), so the store never holds half a chunk and needs no shared disk;
* a task whose worker process or machine dies is retried by Ray (``MAX_RETRIES``); a chunk is stored once,
  whichever attempt returns it (``Store.put_chunk`` replaces by chunk index);
* an error inside a task (a refused config, say) fails the job with that error's message, after the chunks
  already returned are stored; a cancel request from the store cancels every task with ``ray.cancel``;
* tasks report progress (run-steps done) to a small actor the driver reads on every poll, so the page's
  progress moves within a chunk as it does with the local worker;
* an address that does not answer, or a cluster that refuses the driver, fails the job at once with a
  one-line message naming the ``cluster`` field (:class:`ClusterError`).
"""
from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path

from trajectories import engine

from . import chunks as chunks_mod
from .config import LOCAL_CLUSTER, split_address

CONNECT_TIMEOUT_S = 5.0     # a TCP connect to the cluster's address before Ray is asked to join it
POLL_S = 0.25               # how often the driver collects finished tasks, progress and a cancel request
REPORT_S = 0.5              # how often a task reports its progress
CANCEL_WAIT_S = 15.0        # how long cancelled tasks get to stop before they are killed
MAX_RETRIES = 3             # retries of a task whose worker process (or machine) died
REPO_ROOT = Path(__file__).resolve().parents[1]
# what the tasks need of this checkout: the packages, not the tests, tools, data or the browser assets
SHIP_EXCLUDES = [".git", ".venv", "venv", "tests", "tools", "static", "artifacts", "gradscape-data", "**/__pycache__",
                 "*.npz", "*.sqlite*"]
# the environment that changes what an engine call computes or where it caches its kernels
PASSED_ENV = ("GRADSCAPE_CACHE", "GRADSCAPE_METHODS", "GRADSCAPE_MAX_BYTES", "GRADSCAPE_TORCH_THREADS")


class ClusterError(ValueError):
    """The cluster could not be used (one line, naming the ``cluster`` field); the job fails with it."""


def is_loopback(cluster: str) -> bool:
    if cluster == LOCAL_CLUSTER:
        return True
    host, _ = split_address(cluster)
    if host == "localhost":
        return True
    try:
        return socket.inet_aton(host)[0] == 127
    except OSError:
        return host == "::1"


def check_reachable(cluster: str, timeout: float = CONNECT_TIMEOUT_S):
    """Raise :class:`ClusterError` unless something accepts a TCP connection at the cluster's address."""
    host, port = split_address(cluster)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        why = "connection refused" if isinstance(e, ConnectionRefusedError) else \
            "timed out" if isinstance(e, (socket.timeout, TimeoutError)) else (e.strerror or type(e).__name__)
        raise ClusterError(f"cluster: no Ray cluster answers at {cluster} ({why}); start one with "
                           f"`ray start --head --port={port}`, fix the address, or use 'local'") from None


def _import_ray(cluster: str):
    if is_loopback(cluster):
        # Ray turns 127.0.0.1 into this machine's outward address (and then waits for a node there) unless it is
        # told that clusters span one machine; it reads the switch when it is imported. Only for loopback: a
        # driver on a node of a real cluster must register under the address the other nodes see.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    return ray


def local_cpus() -> int:
    """Cores a ``local`` Ray instance offers (``GRADSCAPE_RAY_CPUS``, default: every core of this machine)."""
    try:
        return max(1, int(os.environ.get("GRADSCAPE_RAY_CPUS", "") or os.cpu_count() or 1))
    except ValueError:
        return max(1, os.cpu_count() or 1)


def connect(cluster: str):
    """Join ``cluster`` (or start a local instance) as this process's Ray driver; returns the ``ray`` module."""
    if cluster != LOCAL_CLUSTER:
        check_reachable(cluster)
    ray = _import_ray(cluster)
    # our own excludes say what stays behind; Ray's defaults (.git, .venv) would warn on every job that they apply
    os.environ.setdefault("RAY_OVERRIDE_RUNTIME_ENV_DEFAULT_EXCLUDES", "")
    env = {k: os.environ[k] for k in PASSED_ENV if os.environ.get(k)}
    runtime_env = {"working_dir": str(REPO_ROOT), "excludes": SHIP_EXCLUDES, "env_vars": env}
    kw = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, runtime_env=runtime_env)
    if ray.is_initialized():        # a driver joins one cluster per job
        ray.shutdown()
    try:
        if cluster == LOCAL_CLUSTER:
            ray.init(address="local", num_cpus=local_cpus(), **kw)    # a new instance, never one found running
        else:
            kw.pop("include_dashboard")    # a setting of the cluster, not of a driver that joins it
            ray.init(address=cluster, **kw)
    except Exception as e:     # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, its own errors
        ray.shutdown()
        what = "could not start a local Ray instance" if cluster == LOCAL_CLUSTER else \
            f"could not join the Ray cluster at {cluster}"
        raise ClusterError(f"cluster: {what}: {_first_line(e)}") from None
    return ray


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


class _Board:
    """A Ray actor holding each running chunk's reported run-steps (the driver reads it on every poll)."""

    def __init__(self):
        self.done = {}

    def report(self, idx: int, done: float):
        self.done[idx] = done

    def read(self) -> dict:
        return self.done


def _run_chunk(cfg, chunk, starts, board):
    """A Ray task: one chunk, computed as the local worker computes it, on one engine thread."""
    last = [0.0]

    def progress(done, total):
        now = time.monotonic()
        if now - last[0] >= REPORT_S:
            last[0] = now
            board.report.remote(chunk.idx, done)

    return chunks_mod.compute(cfg, chunk, starts, threads=1, progress=progress)


def _resources(ray, cfg) -> dict:
    """One task per GPU where the cluster has GPUs and the job's device allows one, else one per core."""
    gpus = ray.cluster_resources().get("GPU", 0)
    if gpus and (cfg.device == "auto" or cfg.device.startswith("cuda")):
        return {"num_cpus": 1, "num_gpus": 1}
    return {"num_cpus": 1}


def run_chunks(store, job_id, cfg, todo, pts, progress, hb, *, note_ran=None):
    """Run the chunks ``todo`` of job ``job_id`` as Ray tasks on ``cfg.cluster``; store each as it returns.

    ``note_ran(dict)`` is called whenever what ran changes (devices, backends, the cluster, machines)."""
    if not todo:            # a resumed job with every chunk stored: nothing to ask a cluster for
        return
    ray = connect(cfg.cluster)
    board = None
    try:
        from ray import exceptions as rex
        board = ray.remote(num_cpus=0)(_Board).remote()
        task = ray.remote(_run_chunk).options(max_retries=MAX_RETRIES, retry_exceptions=False, **_resources(ray, cfg))
        cfg_ref, pts_ref = ray.put(cfg), ray.put(pts)
        refs = {}
        for chunk in todo:
            refs[task.remote(cfg_ref, chunk, pts_ref, board)] = chunk
            progress.start_chunk(chunk.idx, chunk.run_steps)
        ran = {"device": "", "backends": {}, "cluster": cfg.cluster, "machines": 0}
        devices, hosts = set(), set()
        error = None
        cancelled_at = None
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=POLL_S)
            for ref in ready:
                chunk = refs.pop(ref)
                try:
                    out = ray.get(ref)
                except rex.TaskCancelledError:
                    progress.drop_chunk(chunk.idx)
                    continue
                except rex.RayTaskError as e:        # the chunk's own error (the engine refused it, say)
                    progress.drop_chunk(chunk.idx)
                    if hb.cancelled.is_set():
                        # cancelled: a task the cancel caught while it returned fails with Ray's own error
                        # ("TypeError: 'Handlers' object is not callable": Ray's DeferSigint calls the worker's
                        # default SIGINT handler), seen once in a clean-clone run; the job was cancelled, not failed
                        continue
                    cause = getattr(e, "cause", None)
                    if error is None:
                        error = cause if isinstance(cause, Exception) else RuntimeError(_first_line(e))
                    continue
                except rex.RayError as e:            # its worker or machine died MAX_RETRIES + 1 times
                    progress.drop_chunk(chunk.idx)
                    if error is None:
                        error = ClusterError(f"cluster: chunk {chunk.idx} failed on {cfg.cluster} after "
                                             f"{MAX_RETRIES + 1} tries: {_first_line(e)}")
                    continue
                chunks_mod.save(store, job_id, chunk, out)
                progress.end_chunk(chunk.idx)
                if out.device not in devices or out.host not in hosts or \
                        any(ran["backends"].get(k) != v for k, v in out.backends.items()):
                    devices.add(out.device)
                    hosts.add(out.host)
                    ran.update(device=", ".join(sorted(devices)), machines=len(hosts))
                    ran["backends"].update(out.backends)
                    if note_ran:
                        note_ran(dict(ran))
            if (error is not None or hb.cancelled.is_set()) and cancelled_at is None:
                cancelled_at = time.monotonic()
                for ref in refs:
                    ray.cancel(ref)
            elif cancelled_at is not None and time.monotonic() - cancelled_at > CANCEL_WAIT_S:
                for ref in refs:                    # still running: stop their worker processes
                    ray.cancel(ref, force=True)
                cancelled_at = float("inf")
            if refs and cancelled_at is None:
                try:
                    for idx, done in ray.get(board.read.remote(), timeout=5).items():
                        progress.report(idx, done)
                except rex.GetTimeoutError:          # a busy actor only delays the progress bar
                    pass
        if error is not None:
            raise error
        if hb.cancelled.is_set():
            raise engine.Cancelled("cancelled")
    finally:
        if board is not None:
            try:
                ray.kill(board)
            except Exception:   # noqa: BLE001 - the cluster may be gone already
                pass
        ray.shutdown()
