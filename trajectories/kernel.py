"""Fused CPU kernels: a traced torch step turned into one C loop over runs x steps.

Why not ``torch.compile``: on these 2-core machines Inductor spent ~40 s generating code for one
method's 10-step chunk (its C++ scheduler, not gcc) and still paid ~50 us of Python per call; a
Gradscape session needs a dozen methods in seconds. The step functions are tiny, element-wise programs
over ``[B, *small]`` tensors, so this module does the one thing needed:

1. ``make_fx`` (with torch's core-ATen decompositions) traces ``fn(*state, *params) -> (*state', *records)``
   with a batch of ``BATCH`` runs;
2. every traced value becomes a small numpy array of C scalar expressions (the batch axis collapsed to
   one run), so views, indexing, broadcasting and reductions over the task/parameter axes are resolved
   at generation time and only scalar arithmetic is emitted;
3. the body goes inside ``for block of 8 runs: for step: #pragma omp simd for run in block``, with the
   state held in block-local arrays for all steps, vector math from glibc's libmvec, and records written
   every ``rec_every`` steps;
4. gcc compiles it (about 0.2-0.5 s) into a shared object cached on disk by a hash of the source, and
   ctypes calls it on numpy buffers from several threads (ctypes releases the GIL).

A step that uses an operation this generator does not know raises :class:`Unsupported` at build
time; the engine then runs the same step eagerly in torch. ``tests/test_kernel.py`` compares every
supported operation with torch, including NaN/inf semantics.
"""
from __future__ import annotations

import ctypes
import hashlib
import math
import operator
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from functools import reduce
from pathlib import Path

import numpy as np
import torch

aten = torch.ops.aten
BATCH = 7919            # the traced batch size: a prime no task/parameter axis will equal
WIDTH = 8               # runs per SIMD block
FLAGS = ["-O3", "-march=native", "-fopenmp-simd", "-ffp-contract=off", "-fno-math-errno", "-fno-tree-pre",
         "-fno-trapping-math", "-fPIC", "-shared"]


class Unsupported(RuntimeError):
    """The traced step uses something the C generator does not handle (the engine falls back to torch)."""


class CompilerMissing(RuntimeError):
    pass


# ---------------------------------------------------------------------------------------------
# C types and literals

_CTYPE = {torch.float32: "float", torch.float64: "double", torch.int64: "int64_t", torch.int32: "int32_t",
          torch.bool: "int", torch.uint8: "int"}
_PTR = {torch.float32: "float", torch.float64: "double", torch.int64: "int64_t", torch.int32: "int32_t",
        torch.bool: "unsigned char", torch.uint8: "unsigned char"}
_NP = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64, torch.int32: np.int32,
       torch.bool: np.bool_, torch.uint8: np.uint8}
_FLOATS = (torch.float32, torch.float64)


def literal(v, dtype) -> str:
    if dtype in _FLOATS:
        v = float(v)
        if math.isnan(v):
            return "NAN" if dtype == torch.float32 else "((double)NAN)"
        if math.isinf(v):
            s = "INFINITY" if dtype == torch.float32 else "((double)INFINITY)"
            return s if v > 0 else "(-" + s + ")"
        r = repr(v)
        return f"{r}f" if dtype == torch.float32 else r
    if dtype == torch.bool:
        return "1" if v else "0"
    return f"((int64_t){int(v)}LL)" if dtype == torch.int64 else f"((int32_t){int(v)})"


def _fn(name, dtype):
    return name + "f" if dtype == torch.float32 else name


VEC_MATH = ("tanh", "log", "exp", "sin", "cos", "log1p", "expm1", "atan", "atan2", "pow")


def _simd_decls() -> str:
    out = []
    for name in VEC_MATH:
        for T, suf in (("float", "f"), ("double", "")):
            args = f"{T}, {T}" if name in ("pow", "atan2") else T
            out.append(f'__attribute__((simd("notinbranch"))) {T} {name}{suf}({args});')
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# Generation


class _Gen:
    def __init__(self):
        self.lines: list[str] = []
        self.count = 0

    def var(self, expr: str, dtype) -> str:
        name = f"v{self.count}"
        self.count += 1
        self.lines.append(f"{_CTYPE[dtype]} {name} = {expr};")
        return name


def _arr(a) -> np.ndarray:
    return a if isinstance(a, np.ndarray) else np.array(a, dtype=object)


def _shape(meta_shape) -> tuple:
    return tuple(1 if (i == 0 and s == BATCH) else int(s) for i, s in enumerate(meta_shape))


def _batched(node) -> bool:
    v = node.meta.get("val")
    return isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == BATCH


class Program:
    """The C text of a traced step, with the layout of its inputs and outputs."""

    def __init__(self, fn, state: list[torch.Tensor], params: list[torch.Tensor], n_records: int | None = None):
        self.fn = fn
        from torch._decomp import core_aten_decompositions      # imports torch._dynamo: ~6 s, so only here
        from torch.fx.experimental.proxy_tensor import make_fx

        ex = [self._example(t) for t in list(state) + list(params)]
        try:
            gm = make_fx(fn, decomposition_table=core_aten_decompositions(), tracing_mode="real")(*ex)
        except Exception as e:   # a step that cannot be traced at all
            raise Unsupported(f"tracing failed: {e}") from e
        gm.graph.eliminate_dead_code()
        self.graph = gm
        self.n_state, self.n_params = len(state), len(params)
        self.in_dtypes = [t.dtype for t in list(state) + list(params)]
        self.in_shapes = [tuple(t.shape[1:]) for t in list(state) + list(params)]
        outs = list(next(n for n in gm.graph.nodes if n.op == "output").args[0])
        vals = [o.meta["val"] if isinstance(o, torch.fx.Node) else None for o in outs]
        self.out_dtypes = [v.dtype for v in vals]
        self.out_shapes = [tuple(v.shape[1:]) for v in vals]
        self.n_records = len(outs) - self.n_state
        for i in range(self.n_state):
            if self.out_dtypes[i] != self.in_dtypes[i] or self.out_shapes[i] != self.in_shapes[i]:
                raise Unsupported(f"state leaf {i} changes from {self.in_dtypes[i]}{list(self.in_shapes[i])} "
                                  f"to {self.out_dtypes[i]}{list(self.out_shapes[i])}")
        self.body = self._emit(gm)
        self.source = self._source()

    @staticmethod
    def _example(t: torch.Tensor) -> torch.Tensor:
        shape = (BATCH,) + tuple(t.shape[1:])
        if t.dtype in _FLOATS:
            return torch.rand(shape, dtype=t.dtype) + 0.5
        return torch.ones(shape, dtype=t.dtype)

    # -- the body -------------------------------------------------------------------------------
    def _emit(self, gm):
        g = _Gen()
        env: dict = {}
        placeholders = [n for n in gm.graph.nodes if n.op == "placeholder"]
        for i, n in enumerate(placeholders):
            shape = self.in_shapes[i]
            names = [f"in{i}_{e}" for e in range(max(1, math.prod(shape)))]
            env[n] = np.array(names, dtype=object).reshape((1,) + shape)
        for n in gm.graph.nodes:
            if n.op == "placeholder":
                continue
            if n.op == "output":
                outs = []
                for o, shape, dt in zip(n.args[0], self.out_shapes, self.out_dtypes):
                    arr = env[o] if isinstance(o, torch.fx.Node) else _arr(literal(o, dt))
                    arr = np.broadcast_to(arr, (1,) + shape).reshape(-1)
                    odt = o.meta["val"].dtype if isinstance(o, torch.fx.Node) else dt
                    outs.append([_cast(x, odt, dt) for x in arr])
                self.outputs = outs
                continue
            if n.op == "get_attr":
                t = getattr(gm, n.target)
                if t.dim() > 0 and t.shape[0] == BATCH:
                    raise Unsupported("a constant tensor with the batch size")
                env[n] = np.vectorize(lambda v: literal(v, t.dtype), otypes=[object])(t.numpy()) \
                    if t.numel() else np.zeros(t.shape, dtype=object)
                if t.dim() == 0:
                    env[n] = np.array(literal(t.item(), t.dtype), dtype=object)
                continue
            if n.op != "call_function":
                raise Unsupported(f"node kind {n.op}")
            env[n] = _lower(g, n, env)
        return g.lines

    # -- the translation unit -------------------------------------------------------------------
    def _source(self) -> str:
        W = WIDTH
        L = ["#include <math.h>", "#include <stdint.h>", "#include <string.h>", "__SIMD_DECLS__", ""]
        L.append("void run(int64_t b0, int64_t b1, int64_t t0, int64_t nsteps, int64_t rec_every, "
                 "int64_t n_rec, void** S, void** P, void** R) {")
        L.append(f"  for (int64_t bb = b0; bb < b1; bb += {W}) {{")
        L.append(f"    const int64_t n = (b1 - bb) < {W} ? (b1 - bb) : {W};")
        loads, stores = [], []
        inputs = [("S", i, self.in_dtypes[i], self.in_shapes[i]) for i in range(self.n_state)] + \
                 [("P", i, self.in_dtypes[self.n_state + i], self.in_shapes[self.n_state + i])
                  for i in range(self.n_params)]
        for k, (src, i, dt, shape) in enumerate(inputs):
            ne = max(1, math.prod(shape))
            ct, pt = _CTYPE[dt], _PTR[dt]
            L.append(f"    {ct} blk{k}[{ne}][{W}];")
            L.append(f"    for (int64_t j = 0; j < {W}; j++) {{ int64_t b = bb + (j < n ? j : 0); "
                     f"for (int e = 0; e < {ne}; e++) blk{k}[e][j] = (({pt}*){src}[{i}])[b * {ne} + e]; }}")
            if src == "S":
                stores.append(f"    for (int64_t j = 0; j < n; j++) for (int e = 0; e < {ne}; e++) "
                              f"(({pt}*)S[{i}])[(bb + j) * {ne} + e] = blk{k}[e][j];")
        rec_specs = []
        for r in range(self.n_records):
            dt, shape = self.out_dtypes[self.n_state + r], self.out_shapes[self.n_state + r]
            ne = max(1, math.prod(shape))
            rec_specs.append((dt, ne))
            L.append(f"    {_CTYPE[dt]} rb{r}[{ne}][{W}];")

        def simd_loop(record: bool):
            out = [f"      #pragma omp simd", f"      for (int64_t j = 0; j < {W}; j++) {{"]
            for k, (src, i, dt, shape) in enumerate(inputs):
                ne = max(1, math.prod(shape))
                for e in range(ne):
                    out.append(f"        const {_CTYPE[dt]} in{k}_{e} = blk{k}[{e}][j];")
            out += ["        " + line for line in self.body]
            for i in range(self.n_state):
                for e, x in enumerate(self.outputs[i]):
                    out.append(f"        blk{i}[{e}][j] = {x};")
            if record:
                for r in range(self.n_records):
                    for e, x in enumerate(self.outputs[self.n_state + r]):
                        out.append(f"        rb{r}[{e}][j] = {x};")
            out.append("      }")
            return out

        L.append("    for (int64_t s = 0; s < nsteps; s++) {")
        L.append("      const int64_t gs = t0 + s;")
        L.append("      if (rec_every > 0 && gs % rec_every == 0 && gs / rec_every < n_rec) {")
        L += ["  " + x for x in simd_loop(True)]
        L.append("        const int64_t row = gs / rec_every;")
        for r, (dt, ne) in enumerate(rec_specs):
            L.append(f"        for (int64_t j = 0; j < n; j++) for (int e = 0; e < {ne}; e++) "
                     f"(({_PTR[dt]}*)R[{r}])[((bb + j) * n_rec + row) * {ne} + e] = rb{r}[e][j];")
        L.append("      } else {")
        L += ["  " + x for x in simd_loop(False)]
        L.append("      }")
        L.append("    }")
        L += stores
        L.append("  }")
        L.append("}")
        return "\n".join(L) + "\n"


def _cast(x: str, src, dst) -> str:
    if src == dst:
        return x
    if dst in (torch.bool,):
        return f"(({x}) != 0)"
    return f"(({_CTYPE[dst]})({x}))"


# ---------------------------------------------------------------------------------------------
# Lowering of one ATen op to C scalar expressions


def _meta(node):
    return node.meta["val"]


def _operand(env, a, dtype):
    """An argument as an object array of C expressions cast to ``dtype`` (literals printed in it)."""
    if isinstance(a, torch.fx.Node):
        src = _meta(a).dtype
        arr = env[a]
        if src == dtype:
            return arr
        return np.vectorize(lambda x: _cast(x, src, dtype), otypes=[object])(arr)
    if isinstance(a, (bool, int, float)):
        return np.array(literal(a, dtype), dtype=object)
    raise Unsupported(f"argument {a!r}")


def _compute_dtype(node, args):
    """torch's promotion for the operands: tensors win over Python scalars."""
    tensors = [_meta(a).dtype for a in args if isinstance(a, torch.fx.Node)]
    dt = reduce(torch.promote_types, tensors) if tensors else _meta(node).dtype
    scalars = [a for a in args if not isinstance(a, torch.fx.Node)]
    if any(isinstance(s, float) for s in scalars) and dt not in _FLOATS:
        dt = torch.get_default_dtype()
    return dt


def _elementwise(g, node, env, args, fmt):
    out_dt = _meta(node).dtype
    cdt = _compute_dtype(node, args)
    ops = [_operand(env, a, cdt) for a in args]
    b = np.broadcast_arrays(*ops) if len(ops) > 1 else [ops[0]]
    shape = b[0].shape
    res = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape) if shape else [()]:
        expr = fmt(cdt, *[x[idx] for x in b])
        res[idx] = g.var(_cast(expr, _expr_dtype(node, cdt), out_dt), out_dt)
    return res


_BOOL_OPS = {aten.eq, aten.ne, aten.lt, aten.le, aten.gt, aten.ge, aten.logical_and, aten.logical_or,
             aten.logical_not, aten.logical_xor, aten.isnan, aten.isinf}


def _expr_dtype(node, cdt):
    return torch.bool if node.target.overloadpacket in _BOOL_OPS else cdt


def _binop(sym):
    return lambda dt, a, b: f"({a} {sym} {b})"


def _maxmin(gt: bool):
    cmp = ">" if gt else "<"
    return lambda dt, a, b: f"((({a}) != ({a}) | ({b}) != ({b})) ? (({a}) + ({b})) : (({a}) {cmp} ({b}) ? ({a}) : ({b})))"


def _pow_scalar(dt, x, p):
    return f"{_fn('pow', dt)}({x}, {p})"


def _fold(g, arr, axes, dtype, combine, keepdim):
    axes = sorted(a % arr.ndim for a in axes)
    out_shape = tuple(1 if i in axes else s for i, s in enumerate(arr.shape))
    res = np.empty(out_shape, dtype=object)
    for idx in np.ndindex(*out_shape) if out_shape else [()]:
        sl = tuple(slice(None) if i in axes else idx[i] for i in range(arr.ndim))
        items = list(np.asarray(arr[sl]).reshape(-1))
        acc = items[0]
        for x in items[1:]:
            acc = g.var(combine(dtype, acc, x), dtype)
        res[idx] = acc
    if not keepdim:
        res = res.reshape(tuple(s for i, s in enumerate(out_shape) if i not in axes))
    return res


def _check_batch_axes(node, axes):
    x = node.args[0]
    if _batched(x) and any(a % _meta(x).dim() == 0 for a in axes):
        raise Unsupported(f"{node.target}: a reduction over the batch axis mixes runs")


def _reduce_axes(node, dims):
    nd = _meta(node.args[0]).dim()
    if dims is None or (isinstance(dims, (list, tuple)) and len(dims) == 0):
        return list(range(nd))
    if isinstance(dims, int):
        return [dims]
    return list(dims)


def _reshape_to(node, arr):
    out = _meta(node)
    if _batched(node.args[0]) != _batched(node):
        raise Unsupported(f"{node.target}: reshaping across the batch axis")
    return np.ascontiguousarray(arr).reshape(_shape(out.shape))


def _const_array(node, value):
    out = _meta(node)
    return np.full(_shape(out.shape), literal(value, out.dtype), dtype=object)


def _lower(g, n, env):  # noqa: C901 - one table of cases
    t = n.target
    a = n.args
    kw = n.kwargs
    pk = t.overloadpacket if hasattr(t, "overloadpacket") else t
    X = (lambda i=0: env[a[i]])

    if t is operator.getitem:
        return env[a[0]][a[1]]
    # -- pointwise arithmetic -----------------------------------------------------------------
    if pk in (aten.add, aten.sub):
        alpha = kw.get("alpha", 1)
        sym = "+" if pk is aten.add else "-"
        if alpha != 1:
            return _elementwise(g, n, env, [a[0], a[1], alpha], lambda dt, x, y, al: f"({x} {sym} {al} * {y})")
        return _elementwise(g, n, env, [a[0], a[1]], _binop(sym))
    if pk is aten.mul:
        return _elementwise(g, n, env, [a[0], a[1]], _binop("*"))
    if pk is aten.div:
        mode = kw.get("rounding_mode")
        if mode is None:
            return _elementwise(g, n, env, [a[0], a[1]], _binop("/"))
        f = "floor" if mode == "floor" else "trunc"
        if _compute_dtype(n, a[:2]) in _FLOATS:
            return _elementwise(g, n, env, [a[0], a[1]], lambda dt, x, y: f"{_fn(f, dt)}({x} / {y})")
        if mode == "trunc":
            return _elementwise(g, n, env, [a[0], a[1]], _binop("/"))
        return _elementwise(g, n, env, [a[0], a[1]],
                            lambda dt, x, y: f"(({x}) / ({y}) - ((({x}) % ({y}) != 0) & ((({x}) < 0) != (({y}) < 0))))")
    if pk is aten.rsub:
        return _elementwise(g, n, env, [a[1], a[0]], _binop("-"))
    if pk is aten.remainder:
        if _compute_dtype(n, a[:2]) in _FLOATS:
            return _elementwise(g, n, env, [a[0], a[1]],
                                lambda dt, x, y: f"({x} - {_fn('floor', dt)}({x} / {y}) * {y})")
        return _elementwise(g, n, env, [a[0], a[1]], lambda dt, x, y: f"(((({x}) % ({y})) + ({y})) % ({y}))")
    if pk is aten.neg:
        return _elementwise(g, n, env, [a[0]], lambda dt, x: f"(-{x})")
    if pk is aten.abs:
        return _elementwise(g, n, env, [a[0]], lambda dt, x: f"{_fn('fabs', dt)}({x})" if dt in _FLOATS
                            else f"(({x}) < 0 ? -({x}) : ({x}))")
    if pk is aten.sign:
        return _elementwise(g, n, env, [a[0]], lambda dt, x: f"(({x}) > 0) - (({x}) < 0)")
    if pk is aten.reciprocal:
        return _elementwise(g, n, env, [a[0]], lambda dt, x: f"({literal(1, dt)} / {x})")
    if pk is aten.rsqrt:
        return _elementwise(g, n, env, [a[0]], lambda dt, x: f"({literal(1, dt)} / {_fn('sqrt', dt)}({x}))")
    if pk is aten.sigmoid:
        return _elementwise(g, n, env, [a[0]],
                            lambda dt, x: f"({literal(1, dt)} / ({literal(1, dt)} + {_fn('exp', dt)}(-{x})))")
    simple = {aten.sqrt: "sqrt", aten.exp: "exp", aten.log: "log", aten.tanh: "tanh", aten.sin: "sin",
              aten.cos: "cos", aten.log1p: "log1p", aten.expm1: "expm1", aten.atan: "atan", aten.floor: "floor",
              aten.ceil: "ceil", aten.trunc: "trunc", aten.round: "nearbyint"}
    if pk in simple:
        name = simple[pk]
        return _elementwise(g, n, env, [a[0]], lambda dt, x: f"{_fn(name, dt)}({x})")
    if pk is aten.atan2:
        return _elementwise(g, n, env, [a[0], a[1]], lambda dt, y, x: f"{_fn('atan2', dt)}({y}, {x})")
    if t is aten.pow.Tensor_Scalar:
        p = a[1]
        special = {2: "({x} * {x})", 3: "({x} * {x} * {x})", 1: "({x})", 0.5: "{sq}({x})"}
        if p in special:
            return _elementwise(g, n, env, [a[0]],
                                lambda dt, x: special[p].format(x=x, sq=_fn("sqrt", dt)))
        if p == -1:
            return _elementwise(g, n, env, [a[0]], lambda dt, x: f"({literal(1, dt)} / {x})")
        if p == -2:
            return _elementwise(g, n, env, [a[0]], lambda dt, x: f"({literal(1, dt)} / ({x} * {x}))")
        return _elementwise(g, n, env, [a[0], float(p)], _pow_scalar)
    if t in (aten.pow.Tensor_Tensor, aten.pow.Scalar):
        return _elementwise(g, n, env, [a[0], a[1]], _pow_scalar)
    if pk in (aten.maximum, aten.fmax):
        return _elementwise(g, n, env, [a[0], a[1]], _maxmin(True))
    if pk in (aten.minimum, aten.fmin):
        return _elementwise(g, n, env, [a[0], a[1]], _maxmin(False))
    if pk in (aten.clamp, aten.clamp_min, aten.clamp_max):
        lo = a[1] if len(a) > 1 else kw.get("min")
        hi = a[2] if len(a) > 2 else kw.get("max")
        if pk is aten.clamp_max:
            lo, hi = None, a[1]
        ops = [a[0]] + [v for v in (lo, hi) if v is not None]

        def fmt(dt, x, *bounds):
            e, k = x, 0
            if lo is not None:
                e, k = f"(({e}) < {bounds[0]} ? {bounds[0]} : ({e}))", 1
            if hi is not None:
                e = f"(({e}) > {bounds[k]} ? {bounds[k]} : ({e}))"
            return e
        return _elementwise(g, n, env, ops, fmt)
    if pk is aten.where:
        out_dt = _meta(n).dtype
        c = _operand(env, a[0], torch.bool)
        x, y = _operand(env, a[1], out_dt), _operand(env, a[2], out_dt)
        c, x, y = np.broadcast_arrays(c, x, y)
        res = np.empty(c.shape, dtype=object)
        for idx in np.ndindex(*c.shape) if c.shape else [()]:
            res[idx] = g.var(f"({c[idx]} ? {x[idx]} : {y[idx]})", out_dt)
        return res
    if pk is aten.masked_fill:
        out_dt = _meta(n).dtype
        x, c, v = _operand(env, a[0], out_dt), _operand(env, a[1], torch.bool), _operand(env, a[2], out_dt)
        x, c, v = np.broadcast_arrays(x, c, v)
        res = np.empty(x.shape, dtype=object)
        for idx in np.ndindex(*x.shape) if x.shape else [()]:
            res[idx] = g.var(f"({c[idx]} ? {v[idx]} : {x[idx]})", out_dt)
        return res
    cmp = {aten.eq: "==", aten.ne: "!=", aten.lt: "<", aten.le: "<=", aten.gt: ">", aten.ge: ">="}
    if pk in cmp:
        return _elementwise(g, n, env, [a[0], a[1]], _binop(cmp[pk]))
    if pk is aten.logical_and:
        return _elementwise(g, n, env, [a[0], a[1]], lambda dt, x, y: f"((({x}) != 0) & (({y}) != 0))")
    if pk is aten.logical_or:
        return _elementwise(g, n, env, [a[0], a[1]], lambda dt, x, y: f"((({x}) != 0) | (({y}) != 0))")
    if pk is aten.logical_xor:
        return _elementwise(g, n, env, [a[0], a[1]], lambda dt, x, y: f"(((({x}) != 0)) != ((({y}) != 0)))")
    if pk is aten.logical_not:
        return _elementwise(g, n, env, [a[0]], lambda dt, x: f"(({x}) == 0)")
    bit = {aten.bitwise_and: "&", aten.bitwise_or: "|", aten.bitwise_xor: "^",
           aten.bitwise_left_shift: "<<", aten.bitwise_right_shift: ">>", aten.__rshift__: ">>",
           aten.__lshift__: "<<", aten.__and__: "&", aten.__or__: "|", aten.__xor__: "^"}
    if pk in bit:
        return _elementwise(g, n, env, [a[0], a[1]], _binop(bit[pk]))
    if pk is aten.bitwise_not:
        # not "!x": gcc turns it into a 1-bit _Bool and then leaves the whole step loop scalar (8x slower, seen
        # on CAGrad); a bool is 0 or 1 here, so 1 - x is the same value and vectorises
        return _elementwise(g, n, env, [a[0]], lambda dt, x: f"(1 - ({x}))" if dt == torch.bool else f"(~({x}))")
    if pk is aten.isnan:
        return _elementwise(g, n, env, [a[0]], lambda dt, x: f"(({x}) != ({x}))")
    if pk is aten.isinf:
        return _elementwise(g, n, env, [a[0]],
                            lambda dt, x: f"((({x}) == {literal(math.inf, dt)}) | (({x}) == {literal(-math.inf, dt)}))")
    if pk is aten.lerp and t is aten.lerp.Scalar:
        return _elementwise(g, n, env, [a[0], a[1], a[2]], lambda dt, x, y, w: f"({x} + {w} * ({y} - {x}))")
    # -- dtype conversion and identities ------------------------------------------------------
    if pk in (aten._to_copy, aten.clone, aten.alias, aten.detach, aten.lift_fresh_copy, aten.contiguous):
        out_dt = _meta(n).dtype
        src = _meta(a[0]).dtype
        if src == out_dt:
            return X()
        return np.vectorize(lambda x: g.var(_cast(x, src, out_dt), out_dt), otypes=[object])(X())
    if pk is aten.copy:
        out = _meta(n)
        src = _operand(env, a[1], out.dtype)
        return np.broadcast_to(src, _shape(out.shape)).copy()
    # -- views --------------------------------------------------------------------------------
    if pk in (aten.view, aten._unsafe_view, aten.reshape):
        return _reshape_to(n, X())
    if pk is aten.expand:
        return np.broadcast_to(X(), _shape(_meta(n).shape)).copy()
    if pk is aten.permute:
        dims = [d % X().ndim for d in a[1]]
        if _batched(a[0]) and dims[0] != 0:
            raise Unsupported("permute moves the batch axis")
        return np.transpose(X(), dims)
    if pk is aten.transpose:
        d0, d1 = a[1] % X().ndim, a[2] % X().ndim
        if _batched(a[0]) and 0 in (d0, d1):
            raise Unsupported("transpose moves the batch axis")
        return np.swapaxes(X(), d0, d1)
    if pk is aten.t:
        return X().T
    if pk is aten.unsqueeze:
        return np.expand_dims(X(), a[1] % (X().ndim + 1))
    if pk is aten.squeeze:
        return X().reshape(_shape(_meta(n).shape))
    if pk is aten.select:
        d = a[1] % X().ndim
        if d == 0 and _batched(a[0]):
            raise Unsupported("indexing the batch axis")
        return np.take(X(), a[2], axis=d)
    if pk is aten.slice:
        d = a[1] % X().ndim
        if d == 0 and _batched(a[0]):
            raise Unsupported("slicing the batch axis")
        start = a[2] if len(a) > 2 and a[2] is not None else None
        end = a[3] if len(a) > 3 else None
        step = a[4] if len(a) > 4 else 1
        sl = [slice(None)] * X().ndim
        sl[d] = slice(start, None if end is None or end >= 2 ** 62 else end, step)
        return X()[tuple(sl)]
    if pk in (aten.cat, aten.stack):
        out = _meta(n)
        d = a[1] if len(a) > 1 else 0
        parts = [_operand(env, x, out.dtype) for x in a[0]]
        if pk is aten.stack:
            return np.stack(parts, axis=d % (parts[0].ndim + 1))
        parts = [p for p, x in zip(parts, a[0]) if _meta(x).numel() > 0]
        return np.concatenate(parts, axis=d % parts[0].ndim)
    if pk in (aten.unbind,):
        d = a[1] if len(a) > 1 else 0
        return [np.take(X(), i, axis=d % X().ndim) for i in range(X().shape[d])]
    if pk in (aten.split_with_sizes, aten.split):
        d = a[2] if len(a) > 2 else 0
        sizes = a[1] if pk is aten.split_with_sizes else None
        arr = X()
        if sizes is None:
            size = a[1]
            sizes = [min(size, arr.shape[d] - i) for i in range(0, arr.shape[d], size)]
        cuts = np.cumsum(sizes)[:-1]
        return np.split(arr, cuts, axis=d % arr.ndim)
    # -- constructors -------------------------------------------------------------------------
    if pk in (aten.full, aten.full_like, aten.new_full):
        return _const_array(n, a[-1] if pk is not aten.new_full else a[2])
    if pk in (aten.zeros, aten.zeros_like, aten.new_zeros, aten.empty_like, aten.new_empty):
        return _const_array(n, 0)
    if pk in (aten.ones, aten.ones_like, aten.new_ones):
        return _const_array(n, 1)
    if pk is aten.scalar_tensor:
        return np.array(literal(a[0], _meta(n).dtype), dtype=object)
    if pk is aten.arange:
        start, end, step = (0, a[0], 1) if len(a) == 1 else (a[0], a[1], a[2] if len(a) > 2 else 1)
        dt = _meta(n).dtype
        return np.array([literal(x, dt) for x in np.arange(start, end, step).tolist()], dtype=object)
    # -- reductions ---------------------------------------------------------------------------
    if pk in (aten.sum, aten.mean, aten.amax, aten.amin, aten.prod, aten.any, aten.all):
        dims = a[1] if len(a) > 1 else kw.get("dim")
        keep = a[2] if len(a) > 2 else kw.get("keepdim", False)
        axes = _reduce_axes(n, dims)
        _check_batch_axes(n, axes)
        out_dt = _meta(n).dtype
        arr = _operand(env, a[0], out_dt if pk not in (aten.any, aten.all) else torch.bool)
        comb = {aten.sum: _binop("+"), aten.mean: _binop("+"), aten.prod: _binop("*"),
                aten.amax: _maxmin(True), aten.amin: _maxmin(False),
                aten.any: lambda dt, x, y: f"((({x}) != 0) | (({y}) != 0))",
                aten.all: lambda dt, x, y: f"((({x}) != 0) & (({y}) != 0))"}[pk]
        res = _fold(g, arr, axes, out_dt if pk not in (aten.any, aten.all) else torch.bool, comb, keep)
        if pk is aten.mean:
            cnt = math.prod(X().shape[ax % X().ndim] for ax in axes)
            res = np.vectorize(lambda x: g.var(f"({x} / {literal(cnt, out_dt)})", out_dt), otypes=[object])(res)
        return res
    if pk is aten.linalg_vector_norm:
        ordv = a[1] if len(a) > 1 else kw.get("ord", 2)
        dims = a[2] if len(a) > 2 else kw.get("dim")
        keep = a[3] if len(a) > 3 else kw.get("keepdim", False)
        axes = _reduce_axes(n, dims)
        _check_batch_axes(n, axes)
        dt = _meta(n).dtype
        arr = _operand(env, a[0], dt)
        if ordv == 2:
            sq = np.vectorize(lambda x: g.var(f"({x} * {x})", dt), otypes=[object])(arr)
            s = _fold(g, sq, axes, dt, _binop("+"), keep)
            return np.vectorize(lambda x: g.var(f"{_fn('sqrt', dt)}({x})", dt), otypes=[object])(s)
        if ordv == 1:
            ab = np.vectorize(lambda x: g.var(f"{_fn('fabs', dt)}({x})", dt), otypes=[object])(arr)
            return _fold(g, ab, axes, dt, _binop("+"), keep)
        if ordv == math.inf:
            ab = np.vectorize(lambda x: g.var(f"{_fn('fabs', dt)}({x})", dt), otypes=[object])(arr)
            return _fold(g, ab, axes, dt, _maxmin(True), keep)
        raise Unsupported(f"vector norm of order {ordv}")
    if pk in (aten._softmax, aten._log_softmax):
        d = a[1]
        _check_batch_axes(n, [d])
        dt = _meta(n).dtype
        x = _operand(env, a[0], dt)
        m = _fold(g, x, [d], dt, _maxmin(True), True)
        sh = np.vectorize(lambda p, q: g.var(f"({p} - {q})", dt), otypes=[object])(*np.broadcast_arrays(x, m))
        e = np.vectorize(lambda p: g.var(f"{_fn('exp', dt)}({p})", dt), otypes=[object])(sh)
        s = _fold(g, e, [d], dt, _binop("+"), True)
        if pk is aten._softmax:
            return np.vectorize(lambda p, q: g.var(f"({p} / {q})", dt), otypes=[object])(*np.broadcast_arrays(e, s))
        ls = np.vectorize(lambda q: g.var(f"{_fn('log', dt)}({q})", dt), otypes=[object])(s)
        return np.vectorize(lambda p, q: g.var(f"({p} - {q})", dt), otypes=[object])(*np.broadcast_arrays(sh, ls))
    # -- small matrix products ----------------------------------------------------------------
    if pk in (aten.mm, aten.bmm):
        dt = _meta(n).dtype
        A, B = _operand(env, a[0], dt), _operand(env, a[1], dt)
        lead = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
        A = np.broadcast_to(A, lead + A.shape[-2:])
        B = np.broadcast_to(B, lead + B.shape[-2:])
        rows, inner, cols = A.shape[-2], A.shape[-1], B.shape[-1]
        res = np.empty(lead + (rows, cols), dtype=object)
        for li in np.ndindex(*lead) if lead else [()]:
            for i in range(rows):
                for j in range(cols):
                    terms = [f"{A[li + (i, k)]} * {B[li + (k, j)]}" for k in range(inner)]
                    res[li + (i, j)] = g.var("(" + " + ".join(terms) + ")" if terms else literal(0, dt), dt)
        return res
    raise Unsupported(f"operation {t}")


# ---------------------------------------------------------------------------------------------
# Compilation and the cache


def cache_dir() -> Path:
    root = os.environ.get("GRADSCAPE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gradscape")
    path = Path(root) / "kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cpu_tag() -> str:
    try:
        flags = next(line for line in open("/proc/cpuinfo") if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = platform.processor()
    return hashlib.sha1(flags.encode()).hexdigest()[:8]


_LOCK = threading.Lock()
_LOADED: dict[str, ctypes.CDLL] = {}


def compiler() -> str | None:
    return os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")


def build(source: str) -> ctypes.CDLL:
    """Compile (or reuse from the disk cache) and load a generated translation unit."""
    cc = compiler()
    if cc is None:
        raise CompilerMissing("no C compiler (gcc) on PATH: the engine runs eagerly in torch instead")
    variants = [("vec", source.replace("__SIMD_DECLS__", _simd_decls()), FLAGS + ["-lmvec", "-lm"]),
                ("scalar", source.replace("__SIMD_DECLS__", ""), FLAGS + ["-lm"])]
    errors = []
    for tag, src, flags in variants:
        key = hashlib.sha256((src + " ".join(flags) + cc + _cpu_tag()).encode()).hexdigest()[:24]
        with _LOCK:
            if key in _LOADED:
                return _LOADED[key]
        so = cache_dir() / f"k_{key}.so"
        if not so.exists():
            d = cache_dir()
            with tempfile.TemporaryDirectory(dir=d) as tmp:
                c = Path(tmp) / "k.c"
                c.write_text(src)
                out = Path(tmp) / "k.so"
                proc = subprocess.run([cc, str(c), "-o", str(out)] + flags, capture_output=True, text=True)
                if proc.returncode != 0:
                    errors.append(f"{tag}: {proc.stderr.strip()[-2000:]}")
                    continue
                os.replace(out, so)      # atomic: concurrent builders never see a half-written file
        lib = _load(so)
        with _LOCK:
            _LOADED[key] = lib
        return lib
    raise Unsupported("the C compiler rejected the generated kernel:\n" + "\n".join(errors))


_COMMON = ("optimizers/base.py", "optimizers/rng.py", "optimizers/outer.py", "trajectories/engine.py",
           "trajectories/kernel.py")
_FP_CACHE: dict = {}


def code_fingerprint(modules=()) -> str:
    """A hash of the sources a traced step is made of: the shared engine files, every landscapes module,
    and the given modules (a method's own module and the optimizers modules it uses). Editing any of them
    invalidates the cached kernels built from them, and only those."""
    import sys
    root = Path(__file__).resolve().parent.parent
    files = {root / f for f in _COMMON} | set((root / "landscapes").glob("*.py"))
    for name in modules:
        mod = sys.modules.get(name)
        if mod is None or not getattr(mod, "__file__", None):
            continue
        files.add(Path(mod.__file__).resolve())
        for v in vars(mod).values():
            home = getattr(v, "__module__", None) or (getattr(v, "__name__", "") if hasattr(v, "__file__") else "")
            if isinstance(home, str) and home.startswith("optimizers.") and home in sys.modules:
                files.add(Path(sys.modules[home].__file__).resolve())
    key = tuple(sorted(str(f) for f in files))
    if key not in _FP_CACHE:
        h = hashlib.sha256(torch.__version__.encode() + " ".join(FLAGS).encode())
        for f in key:
            h.update(f.encode() + Path(f).read_bytes())
        _FP_CACHE[key] = h.hexdigest()[:24]
    return _FP_CACHE[key]


def _index_path(key, modules=()) -> Path:
    d = cache_dir() / "index"
    d.mkdir(exist_ok=True)
    return d / (hashlib.sha256((repr(key) + code_fingerprint(modules)).encode()).hexdigest()[:32] + ".txt")


def _load(so: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(so))
    lib.run.argtypes = [ctypes.c_int64] * 6 + [ctypes.c_void_p] * 3
    lib.run.restype = None
    return lib


class Kernel:
    """A traced step compiled to C: ``run`` advances numpy state buffers in place.

    With a ``key`` (everything the traced code depends on), a later process finds the compiled object
    through an on-disk index and skips tracing and compiling altogether.
    """

    def __init__(self, fn, state, params, key=None, modules=()):
        self.program = None
        if key is not None:
            idx = _index_path(key, modules)
            if idx.exists():
                so = cache_dir() / idx.read_text().strip()
                if so.exists():
                    self.lib = _load(so)
                    return
        self.program = Program(fn, state, params)
        self.lib = build(self.program.source)
        if key is not None:
            tmp = idx.with_suffix(".tmp" + str(os.getpid()))
            tmp.write_text(Path(self.lib._name).name)
            os.replace(tmp, idx)

    def run(self, state, params, records, t0: int, nsteps: int, rec_every: int, n_rec: int,
            lo: int = 0, hi: int | None = None):
        """Advance runs [lo, hi) by ``nsteps`` steps starting at global step ``t0``.

        ``state``/``params``: numpy arrays [B, *shape] (C-contiguous, dtypes as traced);
        ``records``: numpy arrays [B, n_rec, *shape] written at the steps divisible by ``rec_every``.
        """
        hi = state[0].shape[0] if hi is None else hi
        S = (ctypes.c_void_p * max(1, len(state)))(*[x.ctypes.data for x in state])
        P = (ctypes.c_void_p * max(1, len(params)))(*[x.ctypes.data for x in params])
        R = (ctypes.c_void_p * max(1, len(records)))(*[x.ctypes.data for x in records])
        self.lib.run(lo, hi, t0, nsteps, rec_every, n_rec, S, P, R)
