"""The job store and its worker processes: the index, atomic files, reaping dead workers, a worker killed
mid-job, cancellation, the queue, and two jobs at once.

Worker tests start real ``python -m jobs.worker`` processes (as the page does) on a private
data folder; expected results come from independent in-process engine calls of the same runs.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import trajectories
from jobs import worker
from jobs.config import JobConfig
from jobs.results import load_result
from jobs.store import Store, pid_alive

WAIT_S = 240
ROOT = Path(__file__).resolve().parents[1]


def wait_for(pred, timeout=WAIT_S, every=0.2, what="condition"):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# A job that would run for minutes (25 chunks of 64 LS runs x 10^6 steps, no early exit): the tests that
# use it kill or cancel it once it has done what they need to see.
LONG = {"methods": ["ls"], "starts": "grid:40", "steps": 1_000_000, "record_every": 10_000, "chunk_runs": 64,
        "early_exit": False}


def cfg_dict(**kw):
    d = {"methods": ["samgs", "ls"], "starts": "paper", "steps": 400}
    d.update(kw)
    return d


# ---------------------------------------------------------------------------------------------
# The index.

def test_create_list_update_finish(tmp_path):
    s = Store(tmp_path)
    a = s.create({"x": 1}, name="first")
    time.sleep(0.01)
    b = s.create({"x": 2}, name="second")
    assert [j["id"] for j in s.list_jobs()] == [b, a]          # newest first
    assert s.get(a)["status"] == "queued" and s.get(a)["config"] == {"x": 1}
    assert (s.job_dir(a) / "config.json").exists()
    s.progress(a, fraction=0.25, done_steps=10, rate=5.0, eta_s=3.0)
    j = s.get(a)
    assert (j["fraction"], j["rate"], j["eta_s"]) == (0.25, 5.0, 3.0) and j["heartbeat"] is not None
    s.finish(a, "finished", wall_s=1.5)
    j = s.get(a)
    assert j["status"] == "finished" and j["fraction"] == 1.0 and j["wall_s"] == 1.5
    assert [j["id"] for j in s.list_jobs(statuses=["queued"])] == [b]
    with pytest.raises(ValueError):
        s.finish(b, "running")
    # the index lives where the data folder says, the environment variable included
    os.environ["GRADSCAPE_DATA"] = str(tmp_path / "env")
    try:
        assert Store().root == (tmp_path / "env").resolve()
    finally:
        del os.environ["GRADSCAPE_DATA"]


def test_claim_respects_the_running_limit(tmp_path):
    s = Store(tmp_path)
    a, b = s.create({}), s.create({})
    assert s.claim(a, 1) == "running"          # this test process is a's live worker
    assert s.claim(b, 1) == "queued"
    assert s.claim(b, 2) == "running"
    s.request_cancel(a)
    assert s.get(a)["cancel"] and s.get(a)["status"] == "running"


def test_reap_marks_dead_and_recycled_pids_failed(tmp_path):
    s = Store(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    a, b, c = s.create({}), s.create({}), s.create({})
    s.update(a, status="running", pid=dead.pid)
    s.update(b, status="running", pid=os.getpid(), pid_start="1")   # alive, but started at another time: recycled
    s.update(c, status="queued")                          # no worker yet: left alone (recently created)
    assert sorted(Store(tmp_path).reap()) == []           # constructing the store already reaped them
    assert s.get(a)["status"] == "failed" and str(dead.pid) in s.get(a)["message"]
    assert s.get(b)["status"] == "failed"
    assert s.get(c)["status"] == "queued"
    assert s.request_cancel(c) == "cancelled"             # a queued job with no worker is cancelled at once


def test_pid_alive_sees_zombies_as_dead():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_for(lambda: open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z", what="zombie")
    assert not pid_alive(p.pid)
    p.wait()
    assert pid_alive(os.getpid())


def test_listing_survives_damaged_and_half_written_files(tmp_path):
    s = Store(tmp_path)
    cfg = JobConfig.from_dict(cfg_dict(chunk_runs=7))      # one chunk per method
    job_id = worker.create(cfg, s)
    assert worker.run_job(s, job_id) == "finished"
    # a half-written chunk that was never registered, a stray temporary file and a damaged merged file
    (s.job_dir(job_id) / "chunk-00009.npz").write_bytes(b"PK\x03\x04 half")
    (s.job_dir(job_id) / ".runs.npz.123.tmp").write_bytes(b"junk")
    (s.job_dir(job_id) / "runs.npz").write_bytes(b"not an npz")
    assert [j["id"] for j in s.list_jobs()] == [job_id]
    res = load_result(s, job_id)            # falls back to the registered chunks
    assert len(res.runs) == 14 and res.complete
    # a registered chunk damaged on disk is skipped with a note, the rest still loads
    (s.job_dir(job_id) / "chunk-00001.npz").write_bytes(b"garbage")
    res = load_result(s, job_id)
    assert len(res.runs) == 7 and not res.complete and any("chunk 1" in n for n in res.notes)


# ---------------------------------------------------------------------------------------------
# Worker processes.

def test_worker_killed_mid_job_leaves_a_failed_record_with_its_chunks(tmp_path):
    s = Store(tmp_path)
    cfg = JobConfig.from_dict(LONG)
    n_chunks = len(cfg.plan())
    assert n_chunks == 25
    job_id = worker.launch(cfg, s)
    wait_for(lambda: s.get(job_id)["chunks_done"] >= 2, what="two completed chunks")
    job = s.get(job_id)
    assert job["status"] == "running" and job["chunks_done"] < n_chunks
    os.kill(job["pid"], signal.SIGKILL)
    wait_for(lambda: not pid_alive(job["pid"]), what="the worker to die")
    worker.reap_children()
    fresh = Store(tmp_path)                        # start-up reaps dead workers
    job = fresh.get(job_id)
    assert job["status"] == "failed" and "stopped without finishing" in job["message"]
    chunks = fresh.chunks(job_id)
    assert 2 <= len(chunks) < n_chunks
    assert [j["id"] for j in fresh.list_jobs()] == [job_id]
    res = load_result(fresh, job_id)
    assert not res.complete and len(res.runs) == sum(c["hi"] - c["lo"] for c in chunks)
    # what was kept is right: the same starts run directly give the same finals
    pts = cfg.start_points()
    for c in chunks[:2]:
        ref = trajectories.simulate("one_optimum", ["ls"], pts[c["lo"]:c["hi"]], cfg.steps,
                                    record_every=cfg.record_every, record=("positions",))
        got = res.runs[(res.runs["chunk"] == c["idx"])].sort_values("start")
        np.testing.assert_allclose(got[["final_x", "final_y"]].to_numpy(), ref.final[0], atol=1e-6)


def test_cancel_a_running_job_keeps_its_completed_chunks(tmp_path):
    s = Store(tmp_path)
    cfg = JobConfig.from_dict(LONG)
    job_id = worker.launch(cfg, s)
    wait_for(lambda: s.get(job_id)["chunks_done"] >= 1, what="a completed chunk")
    assert s.request_cancel(job_id) == "running"
    job = wait_for(lambda: (j := s.get(job_id))["status"] != "running" and j, what="the job to stop")
    assert job["status"] == "cancelled" and "cancelled" in job["message"]
    assert 1 <= job["chunks_done"] < len(cfg.plan())
    assert len(load_result(s, job_id).runs) == 64 * job["chunks_done"]


def test_progress_is_written_at_least_once_a_second(tmp_path):
    s = Store(tmp_path)
    job_id = worker.launch(JobConfig.from_dict(LONG), s)
    wait_for(lambda: s.get(job_id)["status"] == "running" and s.get(job_id)["rate"], what="running")
    beats, fracs = [], []
    t0 = time.time()
    while time.time() - t0 < 4:
        j = s.get(job_id)
        beats.append(time.time() - j["heartbeat"])
        fracs.append(j["fraction"])
        time.sleep(0.1)
    s.request_cancel(job_id)
    # written about once a second; on a loaded 2-core CI machine the worker may be descheduled for a while
    assert float(np.median(beats)) < 1.0 and max(beats) < 5.0
    assert fracs[-1] > fracs[0]
    j = s.get(job_id)
    assert j["eta_s"] is not None and j["rate"] > 0
    wait_for(lambda: s.get(job_id)["status"] == "cancelled", what="cancel")


def _finals(cfg):
    return trajectories.simulate(cfg.landscape, list(cfg.methods), cfg.starts, cfg.steps, record_every=cfg.record_every,
                                 record=("positions",), early_exit=cfg.early_exit).final


def test_two_jobs_at_once(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADSCAPE_MAX_JOBS", "2")
    s = Store(tmp_path)
    # no early exit: when a batch stops depends on which runs share it, and chunks are smaller batches
    a = JobConfig.from_dict(cfg_dict(methods=["ls"], starts="grid:10", steps=20000, chunk_runs=25,
                                          early_exit=False))
    b = JobConfig.from_dict(cfg_dict(methods=["samgs"], starts="grid:10", steps=20000, chunk_runs=25,
                                          early_exit=False))
    ia, ib = worker.launch(a, s), worker.launch(b, s)
    wait_for(lambda: all(s.get(i)["status"] in ("finished", "failed", "cancelled") for i in (ia, ib)), what="both jobs")
    ja, jb = s.get(ia), s.get(ib)
    assert ja["status"] == jb["status"] == "finished", (ja["message"], jb["message"])
    assert ja["started"] < jb["finished"] and jb["started"] < ja["finished"]     # they ran at the same time
    for cfg, i in ((a, ia), (b, ib)):
        res = load_result(s, i)
        assert res.complete and len(res.runs) == 100
        got = res.runs.sort_values("start")[["final_x", "final_y"]].to_numpy()
        np.testing.assert_allclose(got, _finals(cfg)[0], atol=1e-6)


def test_queue_runs_one_job_at_a_time_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADSCAPE_MAX_JOBS", "1")
    s = Store(tmp_path)
    ia = worker.launch(JobConfig.from_dict({**LONG, "starts": "grid:100"}), s)    # minutes, not seconds
    wait_for(lambda: s.get(ia)["status"] == "running", what="first job running")
    ib = worker.launch(JobConfig.from_dict(cfg_dict()), s)
    time.sleep(8)                                     # the second worker is up, and waits for the slot
    assert s.get(ia)["status"] == "running" and s.get(ib)["status"] == "queued"
    s.request_cancel(ia)
    wait_for(lambda: s.get(ib)["status"] == "finished", what="second job after the first")
    assert s.get(ia)["status"] == "cancelled"
    assert s.get(ib)["started"] >= s.get(ia)["finished"] - 1.0


# ---------------------------------------------------------------------------------------------
# Faults: a full disk, the app restarted while a job runs.

def _mount_tmpfs(path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def _check_listing(root, job_id):
    """The store lists the job with a final status, and every chunk it lists loads."""
    fresh = Store(root)
    job = fresh.get(job_id)
    assert [j["id"] for j in fresh.list_jobs()] == [job_id]
    res = load_result(fresh, job_id)
    assert not res.notes, res.notes                     # no registered chunk is damaged or missing
    assert len(res.runs) == sum(c["hi"] - c["lo"] for c in fresh.chunks(job_id))
    return job, res


def test_disk_full_mid_job_fails_the_job_and_keeps_every_completed_chunk(tmp_path):
    """A real full filesystem (a small tmpfs filled up while the worker runs) where this machine lets us mount
    one; otherwise the same fault injected in-process (``Result.save`` raising ENOSPC after two chunks)."""
    root = tmp_path / "small"
    if _mount_tmpfs(root, "64m"):
        try:
            s = Store(root)
            cfg = JobConfig.from_dict({**LONG, "record_every": 1000})
            job_id = worker.launch(cfg, s)
            wait_for(lambda: s.get(job_id)["chunks_done"] >= 2, what="two completed chunks")
            pid = s.get(job_id)["pid"]
            with open(root / "filler", "wb") as f:            # fill the disk while the job runs
                try:
                    while True:
                        f.write(b"\0" * (1 << 20))
                        f.flush()
                except OSError:
                    pass
            wait_for(lambda: not pid_alive(pid), what="the worker to stop")   # (the index is unreadable meanwhile)
            worker.reap_children()
            (root / "filler").unlink()                        # space again: the app starts and lists the store
            job, res = _check_listing(root, job_id)
            assert job["status"] == "failed", job
            assert 2 <= len(res.chunks) < len(cfg.plan()) and not res.complete
        finally:
            subprocess.run(["umount", "-l", str(root)], capture_output=True)
    else:
        from trajectories.result import Result
        s = Store(root)
        cfg = JobConfig.from_dict({**LONG, "steps": 2000, "chunk_runs": 100})
        job_id = worker.create(cfg, s)
        real, calls = Result.save, []

        def save(self, path, *a, **kw):
            calls.append(path)
            if len(calls) > 2:
                raise OSError(28, "No space left on device")
            return real(self, path, *a, **kw)
        Result.save = save
        try:
            assert worker.run_job(s, job_id, limit=1) == "failed"
        finally:
            Result.save = real
        job, res = _check_listing(root, job_id)
        assert job["status"] == "failed" and "No space left" in job["message"]
        assert len(res.chunks) == 2


def test_app_restarted_during_a_job_finds_it_running_then_finished(tmp_path, monkeypatch):
    """The worker is its own process: a new app process (a fresh Store and page) sees the job running, with
    progress, and later finished with every chunk."""
    from streamlit.testing.v1 import AppTest
    s = Store(tmp_path)
    cfg = JobConfig.from_dict({**LONG, "starts": "grid:32"})        # 16 chunks, some seconds each
    job_id = worker.launch(cfg, s)
    wait_for(lambda: s.get(job_id)["status"] == "running", what="the job to start")
    del s                                               # "the app goes away"
    monkeypatch.setenv("GRADSCAPE_DATA", str(tmp_path))
    page = str(ROOT / "views" / "benchmark.py")
    at = AppTest.from_file(page, default_timeout=180).run()
    assert not at.exception
    assert dict(at.session_state["bench_sig"])[job_id] in ("running", "finished")
    fresh = Store(tmp_path)
    wait_for(lambda: fresh.get(job_id)["status"] in ("finished", "failed", "cancelled"), what="the job to end")
    job, res = _check_listing(tmp_path, job_id)
    assert job["status"] == "finished" and res.complete and len(res.chunks) == len(cfg.plan())
    at.run()
    assert not at.exception
    from figures import vocabulary
    share = vocabulary.header("reached_share")          # the success table, its headers in words
    assert any(d.value is not None and share in d.value.columns for d in at.dataframe)
