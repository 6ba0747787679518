"""Building and launching the Triton kernel: the generated module, its cache, the launch.

The printer's text (:mod:`.triton_src`) is written under the cache directory by a hash of itself and imported
as a module (``triton.jit`` reads a function's source from its file); Triton caches the GPU binary itself.
An index entry keyed like the C kernel's lets a fresh process skip tracing. Under ``TRITON_INTERPRET=1`` the
module's ``M`` is rebound to one of :data:`.interpret.SHIMS` (the libm variants the C kernel of the same
program calls), and a launch runs on CPU tensors.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading

from . import triton_src
from .cache import cache_dir, index_path, write_atomic
from .ir import TRANSCENDENTAL
from .lower import to_scalar
from .trace import Traced

BLOCK = 128            # runs per program instance on a GPU: one per thread of 4 warps
NUM_WARPS = 4
INTERPRETER_BLOCK = 1024
_LOCK = threading.Lock()
_MODULES: dict = {}


def interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "") not in ("", "0")


def unavailable() -> str | None:
    """Why Triton cannot run here, or None."""
    try:
        import triton  # noqa: F401
    except Exception as e:      # not installed, or a broken install
        return f"triton cannot be imported ({type(e).__name__}: {e})"
    return None


def _load(path, shim: str):
    """The generated module; under the interpreter with ``M`` bound to :data:`.interpret.SHIMS[shim]`."""
    with _LOCK:
        key = (str(path), shim)
        if key not in _MODULES:
            name = f"gradscape_triton_{path.stem}_{shim}"
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            spec.loader.exec_module(mod)
            if shim:
                from .interpret import SHIMS
                mod.M = SHIMS[shim]
            _MODULES[key] = mod
        return _MODULES[key]


class TritonKernel:
    """A traced step as a Triton kernel: ``run`` advances device tensors in place. ``program``: a scalar program
    already traced (by the C kernel of the same step, say), instead of tracing ``fn``."""

    def __init__(self, fn, state, params, key=None, modules=(), program=None):
        self.program = program
        self.source = None
        path = None
        interp = interpreting()
        idx = index_path("triton", key, modules) if key is not None else None
        if idx is not None and not interp:    # the interpreter needs the program (below), so it always traces
            if idx.exists():
                path = cache_dir("triton") / idx.read_text().strip()
                if not path.exists():
                    path = None
        if path is None:
            self.program = self.program or to_scalar(Traced(fn, state, params))
            self.source = triton_src.source(self.program)
            h = hashlib.sha256(self.source.encode()).hexdigest()[:24]
            path = cache_dir("triton") / f"t_{h}.py"
            if not path.exists():
                write_atomic(path, self.source)
            if idx is not None:
                write_atomic(idx, path.name)
        shim = ""
        if interp:
            from .interpret import c_kernel_vectorises
            vector = not self.program.uses(TRANSCENDENTAL) or c_kernel_vectorises(self.program)
            shim = "vector" if vector else "scalar"
        self.module = _load(path, shim)
        self.layout = self.module.LAYOUT

    def run(self, state, params, records, t0: int, nsteps: int, rec_every: int, n_rec: int):
        """Advance every run by ``nsteps`` steps from global step ``t0`` (tensors as the C kernel's buffers)."""
        import triton
        B = state[0].shape[0]
        if interpreting():
            block, warps = min(INTERPRETER_BLOCK, triton.next_power_of_2(B)), 1
        else:
            block, warps = BLOCK, NUM_WARPS
        grid = (triton.cdiv(B, block),)
        self.module.step[grid](*state, *params, *records, B, t0, nsteps, rec_every, n_rec, BLOCK=block,
                               num_warps=warps, enable_fp_fusion=False)
