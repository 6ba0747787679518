"""Building and running the C kernel: gcc, a disk cache keyed by the source, ctypes.

gcc builds a translation unit in about 0.2-1 s into a shared object stored under a hash of its source,
flags, compiler and CPU; ctypes calls it on numpy buffers from several threads (ctypes releases the GIL).
A build first tries glibc's vector maths (libmvec) and falls back to scalar libm.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np
import torch

from . import c as c_printer
from .cache import cache_dir, index_path, write_atomic
from .lower import to_scalar
from .trace import Traced, Unsupported

FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-ffp-contract=off", "-fno-math-errno", "-fno-tree-pre",
         "-fno-trapping-math", "-fPIC", "-shared"]
NP = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64, torch.int32: np.int32,
      torch.bool: np.bool_, torch.uint8: np.uint8}


class CompilerMissing(RuntimeError):
    pass


def compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")


def _cpu_tag() -> str:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = platform.processor()
    return hashlib.sha1(flags.encode()).hexdigest()[:8]


_LOCK = threading.Lock()
_LOADED: dict[str, ctypes.CDLL] = {}


def build(source: str, setup=None) -> ctypes.CDLL:
    """Compile (or reuse from the disk cache) and load a translation unit with ``__SIMD_DECLS__`` in it.
    ``setup(lib)`` declares the functions' argument types."""
    cc = compiler()
    if cc is None:
        raise CompilerMissing("no C compiler (gcc) on PATH: the engine runs eagerly in torch instead")
    variants = [("vec", source.replace("__SIMD_DECLS__", c_printer.simd_decls()), FLAGS + ["-lmvec", "-lm"]),
                ("scalar", source.replace("__SIMD_DECLS__", ""), FLAGS + ["-lm"])]
    errors = []
    for tag, src, flags in variants:
        key = hashlib.sha256((src + " ".join(flags) + cc + _cpu_tag()).encode()).hexdigest()[:24]
        with _LOCK:
            if key in _LOADED:
                return _LOADED[key]
        so = cache_dir() / f"k_{key}.so"
        if not so.exists():
            with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
                cfile = Path(tmp) / "k.c"
                cfile.write_text(src)
                out = Path(tmp) / "k.so"
                proc = subprocess.run([cc, str(cfile), "-o", str(out)] + flags, capture_output=True, text=True)
                if proc.returncode != 0:
                    errors.append(f"{tag}: {proc.stderr.strip()[-2000:]}")
                    continue
                os.replace(out, so)      # atomic: concurrent builders never see a half-written file
        lib = ctypes.CDLL(str(so))
        (setup or _setup_run)(lib)
        with _LOCK:
            _LOADED[key] = lib
        return lib
    raise Unsupported("the C compiler rejected the generated kernel:\n" + "\n".join(errors))


def _setup_run(lib):
    lib.run.argtypes = [ctypes.c_int64] * 6 + [ctypes.c_void_p] * 3
    lib.run.restype = None


class Program:
    """A traced step as C text, with the layout of its inputs and outputs (``ilp``: see :mod:`.c`)."""

    def __init__(self, fn, state: list[torch.Tensor], params: list[torch.Tensor], ilp: int = 1, uniform=()):
        self.fn = fn
        self.traced = Traced(fn, state, params)
        self.scalar = to_scalar(self.traced)
        for name in ("n_state", "n_params", "n_records", "in_dtypes", "in_shapes", "out_dtypes", "out_shapes"):
            setattr(self, name, getattr(self.traced, name))
        self.source = c_printer.source(self.scalar, ilp, uniform)


class Kernel:
    """A traced step compiled to C: ``run`` advances numpy state buffers in place.

    With a ``key`` (everything the traced code depends on) and ``modules`` (the Python modules it was traced
    from, see :func:`.cache.code_fingerprint`), a later process finds the compiled object through the on-disk
    index and skips tracing and compiling altogether. ``ilp``: independent blocks of runs interleaved in one
    SIMD loop (:mod:`.c`); the same results, faster on large batches, 2-3 times gcc's time. ``width``: the runs
    of one block (a range's bounds are best multiples of it). ``uniform``: input leaves the caller has found equal
    in every run (:mod:`.c`), a part of the key.
    """

    def __init__(self, fn, state, params, key=None, modules=(), ilp: int = 1, uniform=()):
        self.program = None
        self.width = c_printer.WIDTH * ilp
        self.uniform = tuple(sorted(uniform))
        if key is not None and self._load(key, modules, ilp):
            return
        self.program = Program(fn, state, params, ilp, self.uniform)
        self.lib = build(self.program.source)
        if key is not None:
            write_atomic(self._index(key, modules, ilp), Path(self.lib._name).name)

    @classmethod
    def cached(cls, key, modules=(), ilp: int = 1, uniform=()) -> "Kernel | None":
        """The kernel built earlier for ``key`` (in this process or another, found through the disk index), or
        None: nothing is traced and gcc does not run."""
        self = cls.__new__(cls)
        self.program = None
        self.width = c_printer.WIDTH * ilp
        self.uniform = tuple(sorted(uniform))
        return self if self._load(key, modules, ilp) else None

    def _index(self, key, modules, ilp: int) -> Path:
        salt = " ".join(FLAGS) + ("" if ilp == 1 else f" ilp={ilp}") + \
            ("" if not self.uniform else f" uniform={','.join(map(str, self.uniform))}")
        return index_path("c", key, modules, salt)

    def _load(self, key, modules, ilp: int) -> bool:
        idx = self._index(key, modules, ilp)
        if not idx.exists():
            return False
        so = cache_dir() / idx.read_text().strip()
        if not so.exists():
            return False
        self.lib = ctypes.CDLL(str(so))
        _setup_run(self.lib)
        return True

    def run(self, state, params, records, t0: int, nsteps: int, rec_every: int, n_rec: int,
            lo: int = 0, hi: int | None = None, tables=None):
        """Advance runs [lo, hi) by ``nsteps`` steps starting at global step ``t0``.

        ``state``/``params``: numpy arrays [B, *shape] (C-contiguous, dtypes as traced);
        ``records``: numpy arrays [B, n_rec, *shape] written at the steps divisible by ``rec_every``.
        ``tables``: :meth:`tables` of these very arrays, when the caller keeps them (a run of many chunks).
        """
        hi = state[0].shape[0] if hi is None else hi
        self.lib.run(lo, hi, t0, nsteps, rec_every, n_rec, *(tables or self.tables(state, params, records)))

    @staticmethod
    def tables(state, params, records) -> tuple:
        """The C pointer tables of the arrays (about 0.1 ms for 40 arrays, with the GIL held, on every chunk of every
        group unless the caller keeps them)."""
        return tuple((ctypes.c_void_p * max(1, len(xs)))(*[x.ctypes.data for x in xs])
                     for xs in (state, params, records))
