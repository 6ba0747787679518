"""The engine: run many methods x starts x settings in lock-step; the Result, its metrics, start sets.

``trajectories.simulate(landscape, methods, starts, steps, ...) -> Result``.

The engine only: it imports ``landscapes`` and ``optimizers`` and nothing to its right (``jobs``, ``figures``,
``views``, ``cli``). Benchmark jobs, their store and runners live in ``jobs/``; the command line in ``cli/``
(``__main__.py`` here is only the entry point that keeps ``python -m trajectories`` working).
"""
from .config import Config, Variant  # noqa: F401
from .engine import Cancelled, estimate_bytes, run, simulate  # noqa: F401
from .result import Result  # noqa: F401

import os as _os

import torch as _torch

# On these small VMs torch's intra-op threads cost more than they give for Gradscape's small tensors
# (measured: 3.6x slower on 2 threads for one landscape evaluation of 160 000 points); the engine
# parallelises across runs itself.
_torch.set_num_threads(int(_os.environ.get("GRADSCAPE_TORCH_THREADS", "1")))
