"""libdevice for Triton's interpreter (``TRITON_INTERPRET=1``): the maths the generated kernels call as ``M.*``.

The interpreter runs ``tl`` and ``tl.math`` operations on numpy arrays, but the functions of
``triton.language.extra.libdevice`` are stubs there (they return None). The generated kernel text stays
the same on a GPU and under the interpreter; only the object bound to its ``M`` differs: on a GPU, libdevice;
here, one of :data:`SHIMS`, whose functions take and return interpreter tensors.

Why this rather than a jit helper per function written in ``tl`` operations: such helpers would compute
something neither backend computes, so the interpreter tests would prove nothing about either. The shim
calls the very functions the C kernel calls, through a small library of vector loops built by the same
gcc with the same flags and libmvec declarations as the kernel (:func:`.build_c.build`): the vector variants
where gcc vectorised that program's C kernel, scalar libm where it did not (:func:`c_kernel_vectorises`). So
under the interpreter a Triton kernel agrees with the C kernel bit for bit; the tests hold it to that. Without a C
compiler the shim uses numpy's functions, which differ from glibc's by an ulp or so. On a GPU the difference
is libdevice's: its documented maximum errors (CUDA C Programming Guide, "Mathematical Functions") are
1-4 ulp in float32 and 1-2 ulp in float64 for these functions; ``trunc`` and ``rint`` are exact everywhere.
"""
from __future__ import annotations

import ctypes
import threading
import types

import numpy as np

FUNCS = {"exp": 1, "log": 1, "tanh": 1, "sin": 1, "cos": 1, "log1p": 1, "expm1": 1, "atan": 1, "atan2": 2, "pow": 2}
_NUMPY = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "sin": np.sin, "cos": np.cos, "log1p": np.log1p,
          "expm1": np.expm1, "atan": np.arctan, "atan2": np.arctan2, "pow": np.power, "trunc": np.trunc,
          "rint": np.rint}
LANES = 8      # the C kernel's SIMD block: the same vector variants of the libm functions are called

_LOCK = threading.Lock()
_LIBS: dict = {}


def _source(vector: bool) -> str:
    out = ["#include <math.h>", "#include <stdint.h>", "__SIMD_DECLS__" if vector else ""]
    for name, arity in FUNCS.items():
        for T, suf in (("float", "f"), ("double", "")):
            params = ", ".join(f"const {T}* a{i}" for i in range(arity))
            call = ", ".join(f"a{i}[i + j]" for i in range(arity))
            out.append(f"void gs_{name}{suf}({params}, {T}* y, int64_t n) {{\n"
                       f"  for (int64_t i = 0; i < n; i += {LANES}) {{\n"
                       f"    #pragma omp simd\n"
                       f"    for (int64_t j = 0; j < {LANES}; j++) y[i + j] = {name}{suf}({call});\n  }}\n}}")
    return "\n".join(out) + "\n"


def _library(vector: bool):
    """The gcc-built loops calling libmvec's vector variants (``vector``) or scalar libm, or None without gcc.
    Without the ``simd`` declarations gcc cannot vectorise a libm call, so the second library calls the
    scalar functions, as a C kernel that gcc did not vectorise does."""
    with _LOCK:
        if vector not in _LIBS:
            from .build_c import CompilerMissing, build
            try:
                _LIBS[vector] = build(_source(vector), setup=lambda lib: None)
            except (CompilerMissing, RuntimeError):
                _LIBS[vector] = None
        return _LIBS[vector]


def c_kernel_vectorises(program) -> bool:
    """Whether gcc vectorised the C kernel of ``program`` (then it imports libmvec's ``_ZGV*`` symbols), so the
    interpreter can call the variants that kernel calls. gcc leaves a loop scalar when, for one, AVX2 has no
    instruction for a conversion it needs (float to int64, as the counter-based RNG does)."""
    from pathlib import Path

    from . import c
    from .build_c import CompilerMissing, build
    try:
        lib = build(c.source(program))
    except (CompilerMissing, RuntimeError):
        return False
    return b"_ZGV" in Path(lib._name).read_bytes()


def libm(name: str, *xs: np.ndarray, vector: bool = True) -> np.ndarray:
    """``name`` applied element-wise as the C kernel applies it (or numpy's, without a compiler)."""
    lib = _library(vector) if name in FUNCS else None
    if lib is None:
        return _NUMPY[name](*xs)
    xs = np.broadcast_arrays(*xs)
    dt = xs[0].dtype
    n = xs[0].size
    pad = -n % LANES
    bufs = [np.ascontiguousarray(np.concatenate([x.reshape(-1), np.ones(pad, dt)])) for x in xs]
    y = np.empty(n + pad, dt)
    fn = getattr(lib, f"gs_{name}{'f' if dt == np.float32 else ''}")
    fn(*[ctypes.c_void_p(b.ctypes.data) for b in bufs], ctypes.c_void_p(y.ctypes.data), ctypes.c_int64(n + pad))
    return y[:n].reshape(xs[0].shape)


def _wrap(name, vector):
    def f(*args):
        import triton.language as tl
        from triton.runtime.interpreter import TensorHandle
        first = args[0]
        out = libm(name, *[a.handle.data for a in args], vector=vector)
        return tl.core.tensor(TensorHandle(out.astype(first.handle.data.dtype), first.handle.dtype.scalar),
                              first.type)
    f.__name__ = name
    return f


SHIMS = {mode: types.SimpleNamespace(**{name: _wrap(name, mode == "vector") for name in _NUMPY})
         for mode in ("vector", "scalar")}
