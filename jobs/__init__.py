"""Benchmark jobs: a config and its plan of chunks, the merged results table, the store, the runners, presets.

One-way, left to right (each module imports only modules above it in this list, and ``trajectories``):

    config      a job's config and its plan (``Chunk``s); ``cluster``: where it runs
    results     the merged per-run table of a job (``JobResult``) from its chunk files
    store       the SQLite index beside the result files; ``put_chunk`` is how a finished chunk enters it
    chunks      one chunk computed (the engine call both runners make) and handed to the store
    progress    a job's progress and the heartbeat that writes it to the store
    local       the local runner: chunks on threads of the job's process (the default)
    ray_runner  the Ray runner: chunks as Ray tasks on a cluster (or a Ray instance started here)
    worker      the job's process: claims the job, runs its chunks on a runner, merges, finishes
    benchmarks  the shipped presets and the success table
    speed, jobspeed   measurements (``python -m trajectories bench --speed`` / ``--jobs-speed``), not tests

Nothing here imports ``figures``, ``views`` or ``cli``, and this file re-exports nothing: import the module
you need (``from jobs import config, store``).
"""
