"""Jobs on Ray, against a real Ray: one instance for this module (``ray start --head`` on 127.0.0.1, 2 CPUs, no
dashboard; ``tests/ray_cluster.py``), started before the first test that needs it and stopped after the last,
failures included.

Expected values come from the local worker (the same job's per-run table, computed without Ray), from the
store's own rules (every chunk of the plan registered once, its file readable) and from the issue (a cluster
that does not answer fails the job with one line naming the ``cluster`` field, on the page and in the CLI).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from jobs import ray_runner, worker
from jobs.config import JobConfig, parse_cluster, resolve_cluster
from jobs.results import load_result
from jobs.store import Store
from ray_cluster import Head, free_port, started
from trajectories.result import Result

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.ray

SMALL = {"methods": ["samgs", "ls"], "starts": "grid:6", "steps": 3000, "chunk_runs": 12}     # 6 chunks, ~ms each
# two chunks of 512 SAM-GS runs that each keep a core busy for a while (no early exit)
LONG = {"methods": ["samgs"], "starts": "grid:32", "chunk_runs": 512, "early_exit": False, "record_every": 5000}


@pytest.fixture(scope="module")
def head():
    with Head(cpus=2) as h:
        yield h


@pytest.fixture()
def store(tmp_path):
    return Store(tmp_path / "data")


def _wait(pred, timeout, what, detail=None):
    """``pred()`` once it is true; else an AssertionError naming ``what`` and, when given, ``detail()`` (the state
    that tells a slow machine from a stuck job)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f"; {detail()}" if detail else ""))


def _every_chunk_once(store, job_id, cfg):
    rows = store.chunks(job_id)
    assert [r["idx"] for r in rows] == [c.idx for c in cfg.plan()]
    for r in rows:
        Result.load(store.path(job_id, r["file"]))          # whole files only
    assert not list(store.job_dir(job_id).glob(".*.tmp"))   # no half-written file left behind


# ---------------------------------------------------------------------------------------------
# Results.

def test_a_job_through_ray_gives_the_local_workers_per_run_table(head, store):
    local = worker.create(JobConfig.from_dict(SMALL), store)
    assert worker.run_job(store, local) == "finished"
    on_ray = worker.create(JobConfig.from_dict(dict(SMALL, cluster=head.address)), store)
    assert worker.run_job(store, on_ray) == "finished", store.get(on_ray)["message"]
    pd.testing.assert_frame_equal(load_result(store, local).runs, load_result(store, on_ray).runs)
    _every_chunk_once(store, on_ray, JobConfig.from_dict(SMALL))
    ran = json.loads(store.path(on_ray, "ran.json").read_text())
    assert ran["cluster"] == head.address and ran["device"] == "cpu" and ran["machines"] == 1
    assert store.get(on_ray)["config"]["cluster"] == head.address      # the job's record says where it ran


def test_a_ray_worker_killed_mid_chunk_is_retried_and_every_chunk_is_stored_once(head, store):
    cfg = JobConfig.from_dict(dict(LONG, steps=300_000, cluster=head.address))
    job_id = worker.launch(cfg, store)              # the page's way: a worker process, here the Ray driver
    # mid-chunk: a chunk has reported run-steps done (through the progress actor, the heartbeat, the store)
    victim = _wait(lambda: store.get(job_id)["done_steps"] > 0 and head.workers_running_chunks(), 120,
                   "a Ray worker part-way through a chunk")[0]
    os.kill(victim, signal.SIGKILL)
    _wait(lambda: store.get(job_id)["status"] not in ("queued", "running"), 240, "the job to end")
    job = store.get(job_id)
    assert job["status"] == "finished", job["message"]
    assert started(victim) is None                  # it really died
    _every_chunk_once(store, job_id, cfg)
    runs = load_result(store, job_id).runs
    assert len(runs) == 32 * 32 and runs["start"].is_unique


def test_cancel_from_the_store_stops_the_ray_tasks(head, store):
    # two chunks of 5 000 SAM-GS runs x 10^6 steps: over a minute each at the C kernel's ~15 ns a run-step (512
    # runs, as LONG has, took ~8 s once the kernel got faster: a chunk could end and be stored before the cancel)
    cfg = JobConfig.from_dict(dict(LONG, starts="grid:100", chunk_runs=5000, steps=1_000_000, cluster=head.address))
    job_id = worker.launch(cfg, store)
    _wait(lambda: head.workers_running_chunks(), 120, "a Ray worker running a chunk")
    t0 = time.monotonic()
    store.request_cancel(job_id)

    def state():
        job = store.get(job_id)
        return (f"job {job['status']!r} ({job['message']!r}, {job['done_steps']} run-steps done), "
                f"Ray workers running chunks: {head.workers_running_chunks()}")
    _wait(lambda: store.get(job_id)["status"] == "cancelled", 60, "the job to be cancelled", state)
    _wait(lambda: not head.workers_running_chunks(), 30, "the Ray tasks to stop", state)
    assert time.monotonic() - t0 < 60
    assert store.chunks(job_id) == [] and "cancelled" in store.get(job_id)["message"]


def test_a_local_cluster_is_a_ray_instance_of_its_own_started_and_stopped_for_the_job(head, store, monkeypatch):
    monkeypatch.setenv("GRADSCAPE_RAY_CPUS", "1")
    job_id = worker.create(JobConfig.from_dict(dict(SMALL, methods=["ls"], chunk_runs=36, cluster="local")), store)
    assert worker.run_job(store, job_id) == "finished", store.get(job_id)["message"]
    ran = json.loads(store.path(job_id, "ran.json").read_text())
    assert ran["cluster"] == "local" and len(load_result(store, job_id).runs) == 36
    import ray
    assert not ray.is_initialized()                            # the job's own instance is gone with the job


# ---------------------------------------------------------------------------------------------
# Addresses: malformed, unanswered.

@pytest.mark.parametrize("text", ["not an address", "127.0.0.1", "127.0.0.1:99999", "http://x:1", "[zz]:80"])
def test_a_malformed_cluster_address_is_refused_naming_the_field(text):
    with pytest.raises(ValueError) as e:
        JobConfig.from_dict(dict(SMALL, cluster=text))
    assert str(e.value).startswith("cluster: ") and "\n" not in str(e.value)


def test_cluster_addresses_normalise_and_the_environment_decides_only_where_the_config_is_silent():
    assert parse_cluster(" LOCAL ") == "local" and parse_cluster("ray://head:10001") == "ray://head:10001"
    assert parse_cluster("[::1]:6379") == "[::1]:6379" and parse_cluster(None) == ""
    cfg = JobConfig.from_dict(SMALL)
    assert "cluster" not in cfg.to_dict()              # a local job's stored config is what it was before Ray
    assert resolve_cluster(cfg, {"GRADSCAPE_RAY_ADDRESS": "10.1.2.3:6379"}).cluster == "10.1.2.3:6379"
    assert resolve_cluster(cfg, {}).cluster == ""
    mine = JobConfig.from_dict(dict(SMALL, cluster="local"))
    assert resolve_cluster(mine, {"GRADSCAPE_RAY_ADDRESS": "10.1.2.3:6379"}).cluster == "local"
    assert resolve_cluster(JobConfig.from_dict(dict(SMALL, cluster="none")),
                           {"GRADSCAPE_RAY_ADDRESS": "10.1.2.3:6379"}).cluster == ""
    with pytest.raises(ValueError, match="^GRADSCAPE_RAY_ADDRESS: 'nope' is not a Ray address"):
        resolve_cluster(cfg, {"GRADSCAPE_RAY_ADDRESS": "nope"})


def test_an_address_that_does_not_answer_fails_the_job_with_a_clear_message_and_loses_nothing(store):
    dead = f"127.0.0.1:{free_port()}"             # nothing listens there
    before = worker.create(JobConfig.from_dict(SMALL), store)
    assert worker.run_job(store, before) == "finished"
    job_id = worker.create(JobConfig.from_dict(dict(SMALL, cluster=dead)), store)
    t0 = time.monotonic()
    assert worker.run_job(store, job_id) == "failed"
    assert time.monotonic() - t0 < 30
    job = store.get(job_id)
    assert job["message"] == (f"cluster: no Ray cluster answers at {dead} (connection refused); start one with "
                              f"`ray start --head --port={dead.split(':')[1]}`, fix the address, or use 'local'")
    assert job["config"]["cluster"] == dead and store.get(before)["status"] == "finished"
    assert len(load_result(store, before).runs) == 2 * 36       # the other job is untouched


def test_the_cli_says_so_in_one_line(tmp_path):
    dead = f"127.0.0.1:{free_port()}"
    cfg = tmp_path / "job.json"
    cfg.write_text(json.dumps(SMALL))

    def bench(*args):
        return subprocess.run([sys.executable, "-m", "trajectories", "bench", str(cfg), "--quiet", "--data",
                               str(tmp_path / "data"), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)

    out = bench("--cluster", dead)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: job ") and \
        lines[0].endswith(f"failed: cluster: no Ray cluster answers at {dead} (connection refused); start one "
                          f"with `ray start --head --port={dead.split(':')[1]}`, fix the address, or use 'local'")
    bad = bench("--cluster", "nope")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "bench: cluster: 'nope' is not a Ray address (write HOST:PORT such as 127.0.0.1:6379, ray://HOST:PORT, "
        "or 'local' for a Ray instance on this machine)")
    jobs = Store(tmp_path / "data").list_jobs()
    assert [j["status"] for j in jobs] == ["failed"]       # the refused one was never recorded


def test_the_page_shows_an_unanswered_cluster_as_the_jobs_error_and_a_malformed_one_under_the_field(tmp_path,
                                                                                                      monkeypatch):
    from streamlit.testing.v1 import AppTest
    monkeypatch.setenv("GRADSCAPE_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("GRADSCAPE_RAY_ADDRESS", raising=False)
    store = Store(tmp_path / "data")
    dead = f"127.0.0.1:{free_port()}"
    job_id = worker.create(JobConfig.from_dict(dict(SMALL, name="on-a-dead-cluster", cluster=dead)), store)
    assert worker.run_job(store, job_id) == "failed"
    at = AppTest.from_file(str(ROOT / "views" / "benchmark.py"), default_timeout=120)
    at.query_params["job"] = job_id
    at.run()
    assert not at.exception
    assert any(e.value.startswith(f"cluster: no Ray cluster answers at {dead}") for e in at.error)
    at.text_input(key="bj_cluster").set_value("127.0.0.1").run()
    assert not at.exception
    assert any(e.value.startswith("cluster: '127.0.0.1' is not a Ray address") for e in at.error)


# ---------------------------------------------------------------------------------------------
# How the runner reaches a cluster.

def test_only_loopback_addresses_and_local_count_as_this_machine():
    assert ray_runner.is_loopback("local") and ray_runner.is_loopback("127.0.0.1:6379")
    assert ray_runner.is_loopback("localhost:1") and ray_runner.is_loopback("[::1]:6379")
    assert not ray_runner.is_loopback("10.0.0.5:6379") and not ray_runner.is_loopback("ray://head:10001")
