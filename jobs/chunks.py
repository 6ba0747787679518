"""One chunk of a job computed: the engine call both runners make, and what it hands back to the store.

Rules:

* a chunk is computed by :func:`compute` and nothing else: the local worker calls it on a thread, a Ray task
  calls it on whichever machine Ray picked, with ``device="auto"`` resolved there; so a chunk's runs are the
  same wherever it ran;
* what comes back is a :class:`ChunkOutput`: the chunk's Result already serialised (npz bytes, compressed
  where it was computed, so a cluster spreads that work too) plus the few numbers the index keeps; the store
  writes it (``Store.put_chunk``) on the machine that holds the store.
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass

from trajectories import engine

from .config import Chunk, JobConfig


@dataclass(frozen=True)
class ChunkOutput:
    """A finished chunk on its way to the store."""

    idx: int
    data: bytes          # the chunk's Result as npz bytes (``Result.to_bytes``)
    meta: str            # the Result's metadata as JSON (the ``.json`` beside the chunk file)
    wall_s: float        # engine time
    steps_run: int       # steps the engine ran (fewer than the budget after an early exit)
    device: str          # the device that ran it, in words (``trajectories/device.py``)
    backends: dict       # method -> backend that ran it (c, triton, compile, torch)
    host: str            # the machine that computed it
    pid: int             # the process that computed it

    @property
    def nbytes(self) -> int:
        return len(self.data) + len(self.meta)


def compute(cfg: JobConfig, chunk: Chunk, starts, *, threads=None, cancel=None, progress=None) -> ChunkOutput:
    """Run ``chunk`` of ``cfg`` (``starts``: the job's start points, all of them) in this process.

    ``progress(done, total)`` and ``cancel()`` are the engine's callbacks (between its 1000-step chunks)."""
    res = engine.run(cfg.engine_config(chunk.method, chunk.seed, starts[chunk.lo:chunk.hi]), threads=threads,
                     cancel=cancel, progress=progress)
    return ChunkOutput(idx=chunk.idx, data=res.to_bytes(), meta=json.dumps(res.meta(), indent=2, sort_keys=True),
                       wall_s=float(res.timings["wall_s"]), steps_run=int(res.timings["steps_run"]),
                       device=str(res.timings.get("device", "")), backends=dict(res.timings.get("backends", {})),
                       host=socket.gethostname(), pid=os.getpid())


def save(store, job_id: str, chunk: Chunk, out: ChunkOutput):
    """Hand a finished chunk to the store (the one call both runners make)."""
    store.put_chunk(job_id, chunk, out.data, meta=out.meta, wall_s=out.wall_s, steps_run=out.steps_run)
