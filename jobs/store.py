"""The job store: an embedded SQLite index beside a folder of result files.

Layout of the data folder (``GRADSCAPE_DATA``, a ``--data`` flag, or ``./gradscape-data``)::

    index.sqlite                      jobs and their completed chunks (WAL mode: many readers, one writer)
    jobs/<job id>/config.json         the job config as launched
    jobs/<job id>/chunk-0003.npz      one engine call's Result (+ .json beside it), written atomically
    jobs/<job id>/runs.npz            the merged per-run table of a finished job, written atomically
    jobs/<job id>/ran.json            where it ran: device, backends (and the Ray cluster, for a Ray job)
    jobs/<job id>/worker.log          the worker's stdout/stderr

Rules that keep the listing robust:

* a file is registered in the index only after it has been fully written and renamed into place, so a
  killed worker never leaves a registered half-written file; readers skip files they cannot read;
* a finished chunk enters the store through :meth:`Store.put_chunk` only, whichever runner computed it (the
  local worker's threads or a Ray task): one code path, and a chunk registered twice (a retried Ray task) is
  still one row;
* every write to the index is one short transaction; every reader opens its own connection;
* a job whose worker process is gone while the index says ``queued``/``running`` is marked ``failed``
  (``reap``), keeping the chunks it completed.

Statuses: ``queued`` -> ``running`` -> ``finished`` | ``failed`` | ``cancelled``.
"""
from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

STATUSES = ("queued", "running", "finished", "failed", "cancelled")
ACTIVE = ("queued", "running")
DONE = ("finished", "failed", "cancelled")
DEFAULT_DIR = "gradscape-data"
NEVER_STARTED_S = 120.0        # a queued job with no worker PID this long after creation has failed

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    status TEXT NOT NULL,
    host TEXT,
    pid INTEGER,
    pid_start TEXT,
    config TEXT NOT NULL,
    fraction REAL NOT NULL DEFAULT 0,
    done_steps REAL NOT NULL DEFAULT 0,
    total_steps REAL NOT NULL DEFAULT 0,
    rate REAL,
    eta_s REAL,
    heartbeat REAL,
    chunks_done INTEGER NOT NULL DEFAULT 0,
    chunks_total INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    wall_s REAL
);
CREATE TABLE IF NOT EXISTS chunks (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    file TEXT NOT NULL,
    method TEXT NOT NULL,
    seed INTEGER NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    wall_s REAL NOT NULL,
    steps_run INTEGER NOT NULL,
    PRIMARY KEY (job_id, idx)
);
"""

_READY: set = set()     # (index path, pid) whose schema this process has checked

_JOB_FIELDS = ("id", "name", "created", "started", "finished", "status", "host", "pid", "pid_start", "config", "fraction",
               "done_steps", "total_steps", "rate", "eta_s", "heartbeat", "chunks_done", "chunks_total",
               "cancel", "message", "wall_s")


def data_dir(path=None) -> Path:
    """The data folder: ``path`` if given, else ``$GRADSCAPE_DATA``, else ``./gradscape-data``."""
    return Path(path or os.environ.get("GRADSCAPE_DATA") or DEFAULT_DIR).expanduser().resolve()


def new_job_id() -> str:
    """Sortable by creation time, unique across processes: ``20250101-120000-3fa2c1``."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


def proc_start(pid) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot, from /proc), or None where unknown."""
    try:
        return Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError, ValueError, TypeError):
        return None


def pid_alive(pid, start: str | None = None) -> bool:
    """True if process ``pid`` runs (not a zombie) and, when its recorded ``start`` time is given and
    /proc is readable, started at that time (guards against a recycled PID)."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        fields = Path(f"/proc/{int(pid)}/stat").read_text().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):
            return False
        if start is not None and fields[19] != str(start):
            return False
    except (OSError, IndexError):
        pass
    return True


def atomic_write_text(path: Path, text: str):
    """Write ``text`` to ``path`` via a temporary file and a rename: readers see the old or the new file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Store:
    """The job index and result folder. Cheap to construct; open one per thread or process."""

    def __init__(self, path=None, *, reap: bool = True):
        self.root = data_dir(path)
        self.jobs_dir = self.root / "jobs"
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "index.sqlite"
        if (self.db_path, os.getpid()) not in _READY or not self.db_path.exists():
            with self._db() as db:
                db.executescript(_SCHEMA)
                have = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
                for col, decl in (("pid_start", "TEXT"),):     # folders made by an earlier version
                    if col not in have:
                        db.execute(f"ALTER TABLE jobs ADD COLUMN {col} {decl}")
            _READY.add((self.db_path, os.getpid()))
        if reap:
            self.reap()

    # -- connection ------------------------------------------------------------------------------
    @contextmanager
    def _db(self):
        db = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            db.row_factory = sqlite3.Row
            yield db
        finally:
            db.close()

    @contextmanager
    def _tx(self):
        """One write transaction (BEGIN IMMEDIATE: serialised against other writers)."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    # -- jobs ------------------------------------------------------------------------------------
    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def create(self, config: dict, *, name: str = "", chunks_total: int = 0, total_steps: float = 0) -> str:
        """A new ``queued`` job with its config written beside the index; returns its id."""
        job_id = new_job_id()
        d = self.job_dir(job_id)
        d.mkdir(parents=True)
        text = json.dumps(config, indent=2)   # key order kept: the sweep order is the axes order
        atomic_write_text(d / "config.json", text)
        with self._tx() as db:
            db.execute("INSERT INTO jobs (id, name, created, status, host, config, chunks_total, total_steps) "
                       "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
                       (job_id, name or job_id, time.time(), socket.gethostname(), text, chunks_total,
                        float(total_steps)))
        return job_id

    def get(self, job_id: str) -> dict | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list_jobs(self, statuses=None, limit: int | None = None) -> list[dict]:
        """Jobs, newest first (optionally only those with the given statuses)."""
        q = "SELECT * FROM jobs"
        args: list = []
        if statuses:
            q += " WHERE status IN (%s)" % ",".join("?" * len(statuses))
            args += list(statuses)
        q += " ORDER BY created DESC, id DESC"
        if limit:
            q += " LIMIT ?"
            args.append(int(limit))
        with self._db() as db:
            rows = db.execute(q, args).fetchall()
        return [_job(r) for r in rows]

    def update(self, job_id: str, **fields):
        bad = set(fields) - set(_JOB_FIELDS)
        if bad:
            raise KeyError(f"unknown job fields: {sorted(bad)}")
        if not fields:
            return
        cols = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as db:
            db.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*fields.values(), job_id))

    def set_pid(self, job_id: str, pid: int):
        """Record the worker process of a job (its PID and start time, so a recycled PID is not mistaken
        for it)."""
        with self._tx() as db:   # the worker may have claimed the job (and recorded itself) already
            db.execute("UPDATE jobs SET pid=?, pid_start=?, host=? WHERE id=? AND pid IS NULL",
                       (int(pid), proc_start(pid), socket.gethostname(), job_id))

    def claim(self, job_id: str, max_running: int) -> str:
        """Move a queued job to ``running`` if fewer than ``max_running`` jobs run (checked and set in one
        transaction). Returns the job's status after the attempt (``queued`` means: wait and retry)."""
        with self._tx() as db:
            row = db.execute("SELECT status, cancel FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job {job_id!r}")
            if row["status"] != "queued":
                return row["status"]
            if row["cancel"]:
                db.execute("UPDATE jobs SET status='cancelled', finished=?, message=? WHERE id=?",
                           (time.time(), "cancelled before it started", job_id))
                return "cancelled"
            running = db.execute("SELECT id, pid, pid_start FROM jobs WHERE status='running' AND host=?",
                                 (socket.gethostname(),)).fetchall()
            n = sum(1 for r in running if pid_alive(r["pid"], r["pid_start"]))
            if n >= max_running:
                return "queued"
            now = time.time()
            db.execute("UPDATE jobs SET status='running', started=?, heartbeat=?, pid=?, pid_start=?, host=? "
                       "WHERE id=?", (now, now, os.getpid(), proc_start(os.getpid()), socket.gethostname(), job_id))
            return "running"

    def progress(self, job_id: str, *, fraction: float, done_steps: float, rate: float | None,
                 eta_s: float | None):
        self.update(job_id, fraction=float(min(max(fraction, 0.0), 1.0)), done_steps=float(done_steps),
                    rate=rate, eta_s=eta_s, heartbeat=time.time())

    def finish(self, job_id: str, status: str, message: str = "", wall_s: float | None = None):
        if status not in DONE:
            raise ValueError(f"status: {status!r} is not a final status")
        fields = dict(status=status, finished=time.time(), message=message[:2000], eta_s=None)
        if wall_s is not None:
            fields["wall_s"] = float(wall_s)
        if status == "finished":
            fields["fraction"] = 1.0
        self.update(job_id, **fields)

    def request_cancel(self, job_id: str) -> str:
        """Ask a job to stop. A queued job whose worker has not started is cancelled at once; a running
        one stops at its next check (every ~0.25 s of its heartbeat). Returns the status after the call."""
        with self._tx() as db:
            row = db.execute("SELECT status, pid, pid_start FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job {job_id!r}")
            if row["status"] not in ACTIVE:
                return row["status"]
            db.execute("UPDATE jobs SET cancel = 1 WHERE id = ?", (job_id,))
            if row["status"] == "queued" and not pid_alive(row["pid"], row["pid_start"]):
                db.execute("UPDATE jobs SET status='cancelled', finished=?, message=? WHERE id=?",
                           (time.time(), "cancelled before it started", job_id))
                return "cancelled"
            return row["status"]

    def cancel_requested(self, job_id: str) -> bool:
        with self._db() as db:
            row = db.execute("SELECT cancel FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row["cancel"])

    def delete(self, job_id: str):
        """Remove a finished/failed/cancelled job and its files."""
        import shutil
        job = self.get(job_id)
        if job is None:
            return
        if job["status"] in ACTIVE:
            raise ValueError("delete: cancel the job first; it is still " + job["status"])
        with self._tx() as db:
            db.execute("DELETE FROM chunks WHERE job_id = ?", (job_id,))
            db.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def reap(self) -> list[str]:
        """Mark active jobs of this host whose worker process is gone as ``failed`` (their completed
        chunks stay). Returns the ids marked."""
        now = time.time()
        host = socket.gethostname()
        with self._db() as db:
            rows = db.execute("SELECT id, status, pid, pid_start, created, host FROM jobs "
                              "WHERE status IN ('queued','running')").fetchall()
        dead = []
        for r in rows:
            if r["host"] not in (None, host):
                continue
            if r["pid"]:
                if not pid_alive(r["pid"], r["pid_start"]):
                    dead.append((r["id"], f"the worker process (pid {r['pid']}) stopped without finishing"))
            elif now - r["created"] > NEVER_STARTED_S:
                dead.append((r["id"], "no worker process ever started for this job"))
        marked = []
        for job_id, msg in dead:
            with self._tx() as db:   # re-check inside the transaction: the worker may have just finished
                cur = db.execute("UPDATE jobs SET status='failed', finished=?, message=?, eta_s=NULL "
                                 "WHERE id=? AND status IN ('queued','running')", (now, msg, job_id))
                if cur.rowcount:
                    marked.append(job_id)
        return marked

    # -- chunks ----------------------------------------------------------------------------------
    def add_chunk(self, job_id: str, idx: int, file: str, *, method: str, seed: int, lo: int, hi: int,
                  wall_s: float, steps_run: int):
        """Register a completed chunk whose file is already in place."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO chunks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (job_id, int(idx), file, method, int(seed), int(lo), int(hi), float(wall_s),
                        int(steps_run)))
            n = db.execute("SELECT COUNT(*) FROM chunks WHERE job_id = ?", (job_id,)).fetchone()[0]
            db.execute("UPDATE jobs SET chunks_done = ? WHERE id = ?", (n, job_id))

    def put_chunk(self, job_id: str, chunk, data: bytes, *, meta: str, wall_s: float, steps_run: int) -> Path:
        """Store a finished chunk: ``data`` (its Result as npz bytes) is written under a temporary name, flushed
        to disk and renamed into place, ``meta`` (JSON) beside it, and only then is the chunk registered in the
        index. ``chunk`` is the plan's :class:`jobs.config.Chunk` (its ``idx``, ``file``, ``method``, ``seed``,
        ``lo``, ``hi``). Returns the file's path."""
        path = self.path(job_id, chunk.file)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        atomic_write_text(path.with_suffix(".json"), meta)
        self.add_chunk(job_id, chunk.idx, chunk.file, method=chunk.method, seed=chunk.seed, lo=chunk.lo,
                       hi=chunk.hi, wall_s=wall_s, steps_run=steps_run)
        return path

    def chunks(self, job_id: str) -> list[dict]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM chunks WHERE job_id = ? ORDER BY idx", (job_id,)).fetchall()
        return [dict(r) for r in rows]

    def path(self, job_id: str, name: str) -> Path:
        return self.job_dir(job_id) / name


def _job(row) -> dict:
    d = dict(row)
    try:
        d["config"] = json.loads(d["config"])
    except (TypeError, ValueError):
        d["config"] = {}
    d["cancel"] = bool(d["cancel"])
    return d
