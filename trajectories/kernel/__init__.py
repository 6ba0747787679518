"""Fused kernels from a traced torch step: trace -> scalar program -> printer (C, Triton) -> build and cache.

Why not ``torch.compile`` on the CPU: on these 2-core machines Inductor spent ~40 s generating code for one
method's 10-step chunk and still paid ~50 us of Python per call. The step functions are tiny element-wise
programs over ``[B, *small]`` tensors, so this package does the one thing needed, in four stages:

* :mod:`.trace` — ``make_fx`` with core-ATen decompositions turns ``fn(*state, *params) -> (*state', *records)``
  into a graph;
* :mod:`.lower` — one registered lowering per ATen operation turns the graph into a *scalar program*
  (:mod:`.ir`): SSA instructions for one run, the small task/parameter axes resolved at generation time;
* :mod:`.c` and :mod:`.triton_src` — printers: a C loop over blocks of 8 runs (or 8 x ``ilp``) x steps (``#pragma omp simd``),
  and a Triton kernel holding a block of runs in registers over a chunk of steps;
* :mod:`.build_c` and :mod:`.build_triton` — gcc with a disk cache and ctypes; ``triton.jit`` (on a GPU, or
  on CPU tensors under ``TRITON_INTERPRET=1`` with :mod:`.interpret`'s maths).

A step using an operation no lowering knows raises :class:`Unsupported` at build time; the engine then runs
the same step on the device's fallback (eager torch on the CPU, ``torch.compile`` on CUDA). ``tests/test_kernel.py`` compares every lowering with torch.
"""
from .build_c import NP, CompilerMissing, Kernel, Program, build, compiler  # noqa: F401
from .c import WIDTH, literal  # noqa: F401
from .cache import cache_dir, code_fingerprint  # noqa: F401
from .trace import BATCH, Unsupported  # noqa: F401

_NP = NP      # the name the method test suites use
