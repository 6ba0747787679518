"""Lowering: each ATen node of a traced step becomes scalar instructions for one run.

Every traced value becomes a numpy object array of scalar values (:mod:`.ir`) shaped like the tensor with
the run axis collapsed to 1, so views, indexing, broadcasting and reductions over the small task/parameter
axes are resolved here, at generation time, and only scalar arithmetic reaches a printer.

One function per operation, registered with ``@lowers(op, ...)`` (an overload packet such as ``aten.add``
or one overload such as ``aten.pow.Tensor_Scalar``; the overload wins). A function receives the builder,
the node, its positional and keyword arguments and the environment, and returns the node's array. An
operation without an entry raises :class:`Unsupported` with its name. The rules a lowering keeps:

* operands are cast to torch's promoted compute dtype first (:func:`_compute_dtype`), the result to the
  node's dtype last, as torch's TensorIterator does;
* nothing may mix runs: an operation over the run axis (a reduction, a permute, an index) is refused;
* composite operations are spelled in the primitive ones in the order torch's CPU kernels round them
  (``maximum`` propagates NaN, ``clamp`` lets NaN through), and tests/test_kernel.py checks each against torch.
"""
from __future__ import annotations

import math
import operator
from functools import reduce

import numpy as np
import torch

from .ir import FLOATS, Builder, Const, ScalarProgram
from .trace import BATCH, Traced, Unsupported

aten = torch.ops.aten
LOWERINGS: dict = {}


def lowers(*targets):
    def deco(fn):
        for t in targets:
            LOWERINGS[t] = fn
        return fn
    return deco


def to_scalar(tr: Traced) -> ScalarProgram:
    """The scalar program of a traced step."""
    b = Builder()
    env: dict = {}
    inputs = []
    placeholders = [n for n in tr.graph.graph.nodes if n.op == "placeholder"]
    for i, n in enumerate(placeholders):
        shape, dt = tr.in_shapes[i], tr.in_dtypes[i]
        names = [b.input(f"in{i}_{e}", dt) for e in range(max(1, math.prod(shape)))]
        inputs.append(names)
        env[n] = np.array(names, dtype=object).reshape((1,) + shape)
    outputs = None
    for n in tr.graph.graph.nodes:
        if n.op == "placeholder":
            continue
        if n.op == "output":
            outputs = []
            for o, shape, dt in zip(n.args[0], tr.out_shapes, tr.out_dtypes):
                arr = env[o] if isinstance(o, torch.fx.Node) else np.array(Const.of(o, dt), dtype=object)
                arr = np.broadcast_to(arr, (1,) + shape).reshape(-1)
                outputs.append([b.cast(x, dt) for x in arr])
            continue
        if n.op == "get_attr":
            env[n] = _constant_tensor(getattr(tr.graph, n.target))
            continue
        if n.op != "call_function":
            raise Unsupported(f"node kind {n.op}")
        t = n.target
        fn = LOWERINGS.get(t) or LOWERINGS.get(getattr(t, "overloadpacket", None))
        if fn is None:
            raise Unsupported(f"operation {t}")
        env[n] = fn(b, n, n.args, n.kwargs, env)
    return ScalarProgram(b.instrs, b.dtypes, inputs, outputs, tr.in_dtypes, tr.in_shapes, tr.out_dtypes,
                         tr.out_shapes, tr.n_state, tr.n_params)


def _constant_tensor(t: torch.Tensor) -> np.ndarray:
    if t.dim() > 0 and t.shape[0] == BATCH:
        raise Unsupported("a constant tensor with the batch size")
    if t.dim() == 0:
        return np.array(Const.of(t.item(), t.dtype), dtype=object)
    out = np.empty(t.shape, dtype=object)
    for idx, v in np.ndenumerate(t.numpy()):
        out[idx] = Const.of(v.item(), t.dtype)
    return out


# ---------------------------------------------------------------------------------------------
# Helpers


def _meta(node):
    return node.meta["val"]


def _shape(meta_shape) -> tuple:
    return tuple(1 if (i == 0 and s == BATCH) else int(s) for i, s in enumerate(meta_shape))


def _batched(node) -> bool:
    v = node.meta.get("val")
    return isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == BATCH


def _map(fn, *arrays) -> np.ndarray:
    """``fn`` over the elements of broadcast object arrays (one instruction or more per element)."""
    arrays = np.broadcast_arrays(*[a if isinstance(a, np.ndarray) else np.array(a, dtype=object) for a in arrays])
    out = np.empty(arrays[0].shape, dtype=object)
    for idx in np.ndindex(*out.shape) if out.shape else [()]:
        out[idx] = fn(*[a[idx] for a in arrays])
    return out


def _operand(b, env, a, dtype) -> np.ndarray:
    """An argument as an object array of values of ``dtype``."""
    if isinstance(a, torch.fx.Node):
        return _map(lambda x: b.cast(x, dtype), env[a])
    if isinstance(a, (bool, int, float)):
        return np.array(Const.of(a, dtype), dtype=object)
    raise Unsupported(f"argument {a!r}")


def _compute_dtype(node, args):
    """torch's promotion for the operands: tensors win over Python scalars."""
    tensors = [_meta(a).dtype for a in args if isinstance(a, torch.fx.Node)]
    dt = reduce(torch.promote_types, tensors) if tensors else _meta(node).dtype
    scalars = [a for a in args if not isinstance(a, torch.fx.Node)]
    if any(isinstance(s, float) for s in scalars) and dt not in FLOATS:
        dt = torch.get_default_dtype()
    return dt


def _elementwise(b, node, env, args, fn, cdt=None):
    """``fn(b, dtype, *values) -> value`` per element, in the compute dtype, cast to the node's dtype."""
    out_dt = _meta(node).dtype
    cdt = cdt or _compute_dtype(node, args)
    ops = [_operand(b, env, a, cdt) for a in args]
    return _map(lambda *xs: b.cast(fn(b, cdt, *xs), out_dt), *ops)


def _op(name):
    return lambda b, dt, *xs: b.emit(name, xs, dt)


def _cmp(name):
    return lambda b, dt, x, y: b.emit(name, (x, y), torch.bool)


def _max_nan(gt: bool):
    """maximum/minimum as torch's CPU kernel: NaN if either is NaN (a + b carries it), else the larger/smaller."""
    def f(b, dt, x, y):
        if dt not in FLOATS:
            return b.emit("where", (b.emit("gt" if gt else "lt", (x, y), torch.bool), x, y), dt)
        nan = b.emit("or", (b.emit("ne", (x, x), torch.bool), b.emit("ne", (y, y), torch.bool)), torch.bool)
        pick = b.emit("where", (b.emit("gt" if gt else "lt", (x, y), torch.bool), x, y), dt)
        return b.emit("where", (nan, b.emit("add", (x, y), dt), pick), dt)
    return f


def _one(dt):
    return Const.of(1, dt)


def _fold(b, arr, axes, dtype, combine, keepdim):
    """Reduce ``axes`` of an object array left to right with ``combine(b, dtype, acc, x)``."""
    axes = sorted(a % arr.ndim for a in axes)
    out_shape = tuple(1 if i in axes else s for i, s in enumerate(arr.shape))
    res = np.empty(out_shape, dtype=object)
    for idx in np.ndindex(*out_shape) if out_shape else [()]:
        sl = tuple(slice(None) if i in axes else idx[i] for i in range(arr.ndim))
        items = list(np.asarray(arr[sl]).reshape(-1))
        acc = items[0]
        for x in items[1:]:
            acc = combine(b, dtype, acc, x)
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


def _const_array(node, value):
    out = _meta(node)
    return np.full(_shape(out.shape), Const.of(value, out.dtype), dtype=object)


# ---------------------------------------------------------------------------------------------
# Pointwise arithmetic


@lowers(operator.getitem)
def _getitem(b, n, a, kw, env):
    return env[a[0]][a[1]]


@lowers(aten.add, aten.sub)
def _add_sub(b, n, a, kw, env):
    alpha = kw.get("alpha", 1)
    name = "add" if n.target.overloadpacket is aten.add else "sub"
    if alpha != 1:
        return _elementwise(b, n, env, [a[0], a[1], alpha],
                            lambda b, dt, x, y, al: b.emit(name, (x, b.emit("mul", (al, y), dt)), dt))
    return _elementwise(b, n, env, [a[0], a[1]], _op(name))


@lowers(aten.mul)
def _mul(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0], a[1]], _op("mul"))


@lowers(aten.div)
def _div(b, n, a, kw, env):
    mode = kw.get("rounding_mode")
    if mode is None:
        return _elementwise(b, n, env, [a[0], a[1]], _op("div"))
    if _compute_dtype(n, a[:2]) in FLOATS:
        name = "floor" if mode == "floor" else "trunc"
        return _elementwise(b, n, env, [a[0], a[1]],
                            lambda b, dt, x, y: b.emit(name, (b.emit("div", (x, y), dt),), dt))
    if mode == "trunc":
        return _elementwise(b, n, env, [a[0], a[1]], _op("div"))

    def floordiv(b, dt, x, y):     # C's truncation, minus one where the remainder and the signs disagree
        zero = Const.of(0, dt)
        inexact = b.emit("ne", (b.emit("mod", (x, y), dt), zero), torch.bool)
        signs = b.emit("ne", (b.emit("lt", (x, zero), torch.bool), b.emit("lt", (y, zero), torch.bool)), torch.bool)
        adjust = b.cast(b.emit("and", (inexact, signs), torch.bool), dt)
        return b.emit("sub", (b.emit("div", (x, y), dt), adjust), dt)
    return _elementwise(b, n, env, [a[0], a[1]], floordiv)


@lowers(aten.rsub)
def _rsub(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[1], a[0]], _op("sub"))


@lowers(aten.remainder)
def _remainder(b, n, a, kw, env):
    if _compute_dtype(n, a[:2]) in FLOATS:
        def f(b, dt, x, y):
            q = b.emit("floor", (b.emit("div", (x, y), dt),), dt)
            return b.emit("sub", (x, b.emit("mul", (q, y), dt)), dt)
    else:
        def f(b, dt, x, y):
            return b.emit("mod", (b.emit("add", (b.emit("mod", (x, y), dt), y), dt), y), dt)
    return _elementwise(b, n, env, [a[0], a[1]], f)


@lowers(aten.neg)
def _neg(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0]], _op("neg"))


@lowers(aten.abs)
def _abs(b, n, a, kw, env):
    def f(b, dt, x):
        if dt in FLOATS:
            return b.emit("fabs", (x,), dt)
        return b.emit("where", (b.emit("lt", (x, Const.of(0, dt)), torch.bool), b.emit("neg", (x,), dt), x), dt)
    return _elementwise(b, n, env, [a[0]], f)


@lowers(aten.sign)
def _sign(b, n, a, kw, env):
    def f(b, dt, x):
        zero = Const.of(0, dt)
        pos = b.cast(b.emit("gt", (x, zero), torch.bool), dt)
        neg = b.cast(b.emit("lt", (x, zero), torch.bool), dt)
        return b.emit("sub", (pos, neg), dt)
    return _elementwise(b, n, env, [a[0]], f)


@lowers(aten.reciprocal)
def _reciprocal(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0]], lambda b, dt, x: b.emit("div", (_one(dt), x), dt))


@lowers(aten.rsqrt)
def _rsqrt(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0]], lambda b, dt, x: b.emit("div", (_one(dt), b.emit("sqrt", (x,), dt)), dt))


@lowers(aten.sigmoid)
def _sigmoid(b, n, a, kw, env):
    def f(b, dt, x):
        e = b.emit("exp", (b.emit("neg", (x,), dt),), dt)
        return b.emit("div", (_one(dt), b.emit("add", (_one(dt), e), dt)), dt)
    return _elementwise(b, n, env, [a[0]], f)


_UNARY = {aten.sqrt: "sqrt", aten.exp: "exp", aten.log: "log", aten.tanh: "tanh", aten.sin: "sin",
          aten.cos: "cos", aten.log1p: "log1p", aten.expm1: "expm1", aten.atan: "atan", aten.floor: "floor",
          aten.ceil: "ceil", aten.trunc: "trunc", aten.round: "rint"}


@lowers(*_UNARY)
def _unary(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0]], _op(_UNARY[n.target.overloadpacket]))


@lowers(aten.atan2)
def _atan2(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0], a[1]], _op("atan2"))


@lowers(aten.pow.Tensor_Scalar)
def _pow_scalar(b, n, a, kw, env):
    p = a[1]

    def square(b, dt, x):
        return b.emit("mul", (x, x), dt)
    special = {2: square,
               3: lambda b, dt, x: b.emit("mul", (square(b, dt, x), x), dt),
               1: lambda b, dt, x: x,
               0.5: lambda b, dt, x: b.emit("sqrt", (x,), dt),
               -1: lambda b, dt, x: b.emit("div", (_one(dt), x), dt),
               -2: lambda b, dt, x: b.emit("div", (_one(dt), square(b, dt, x)), dt)}
    if p in special:
        return _elementwise(b, n, env, [a[0]], special[p])
    return _elementwise(b, n, env, [a[0], float(p)], _op("pow"))


@lowers(aten.pow.Tensor_Tensor, aten.pow.Scalar)
def _pow(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0], a[1]], _op("pow"))


@lowers(aten.maximum, aten.fmax)
def _maximum(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0], a[1]], _max_nan(True))


@lowers(aten.minimum, aten.fmin)
def _minimum(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0], a[1]], _max_nan(False))


@lowers(aten.clamp, aten.clamp_min, aten.clamp_max)
def _clamp(b, n, a, kw, env):
    pk = n.target.overloadpacket
    lo = a[1] if len(a) > 1 else kw.get("min")
    hi = a[2] if len(a) > 2 else kw.get("max")
    if pk is aten.clamp_max:
        lo, hi = None, a[1]
    ops = [a[0]] + [v for v in (lo, hi) if v is not None]

    def f(b, dt, x, *bounds):       # NaN passes through, as in torch
        k = 0
        if lo is not None:
            x = b.emit("where", (b.emit("lt", (x, bounds[0]), torch.bool), bounds[0], x), dt)
            k = 1
        if hi is not None:
            x = b.emit("where", (b.emit("gt", (x, bounds[k]), torch.bool), bounds[k], x), dt)
        return x
    return _elementwise(b, n, env, ops, f)


@lowers(aten.where)
def _where(b, n, a, kw, env):
    out_dt = _meta(n).dtype
    c = _operand(b, env, a[0], torch.bool)
    x, y = _operand(b, env, a[1], out_dt), _operand(b, env, a[2], out_dt)
    return _map(lambda c, x, y: b.emit("where", (c, x, y), out_dt), c, x, y)


@lowers(aten.masked_fill)
def _masked_fill(b, n, a, kw, env):
    out_dt = _meta(n).dtype
    x, c, v = _operand(b, env, a[0], out_dt), _operand(b, env, a[1], torch.bool), _operand(b, env, a[2], out_dt)
    return _map(lambda x, c, v: b.emit("where", (c, v, x), out_dt), x, c, v)


_CMP = {aten.eq: "eq", aten.ne: "ne", aten.lt: "lt", aten.le: "le", aten.gt: "gt", aten.ge: "ge"}


@lowers(*_CMP)
def _compare(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0], a[1]], _cmp(_CMP[n.target.overloadpacket]))


@lowers(aten.logical_and, aten.logical_or, aten.logical_xor)
def _logical(b, n, a, kw, env):
    name = {aten.logical_and: "and", aten.logical_or: "or", aten.logical_xor: "ne"}[n.target.overloadpacket]
    return _elementwise(b, n, env, [a[0], a[1]],
                        lambda b, dt, x, y: b.emit(name, (b.truthy(x), b.truthy(y)), torch.bool))


@lowers(aten.logical_not)
def _logical_not(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0]], lambda b, dt, x: b.emit("eq", (x, Const.of(0, dt)), torch.bool))


@lowers(aten.isnan)
def _isnan(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0]], lambda b, dt, x: b.emit("ne", (x, x), torch.bool))


@lowers(aten.isinf)
def _isinf(b, n, a, kw, env):
    def f(b, dt, x):
        return b.emit("or", (b.emit("eq", (x, Const.of(math.inf, dt)), torch.bool),
                             b.emit("eq", (x, Const.of(-math.inf, dt)), torch.bool)), torch.bool)
    return _elementwise(b, n, env, [a[0]], f)


_BITS = {aten.bitwise_and: "and", aten.bitwise_or: "or", aten.bitwise_xor: "xor", aten.bitwise_left_shift: "shl",
         aten.bitwise_right_shift: "shr", aten.__rshift__: "shr", aten.__lshift__: "shl", aten.__and__: "and",
         aten.__or__: "or", aten.__xor__: "xor"}


@lowers(*_BITS)
def _bitwise(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0], a[1]], _op(_BITS[n.target.overloadpacket]))


@lowers(aten.bitwise_not)
def _bitwise_not(b, n, a, kw, env):
    return _elementwise(b, n, env, [a[0]], _op("not"))


@lowers(aten.lerp.Scalar)
def _lerp(b, n, a, kw, env):
    def f(b, dt, x, y, w):
        return b.emit("add", (x, b.emit("mul", (w, b.emit("sub", (y, x), dt)), dt)), dt)
    return _elementwise(b, n, env, [a[0], a[1], a[2]], f)


# ---------------------------------------------------------------------------------------------
# Dtype conversion, identities and views (no instructions, or casts only)


@lowers(aten._to_copy, aten.clone, aten.alias, aten.detach, aten.lift_fresh_copy, aten.contiguous)
def _copy_like(b, n, a, kw, env):
    out_dt = _meta(n).dtype
    return _map(lambda x: b.cast(x, out_dt), env[a[0]])


@lowers(aten.copy)
def _copy(b, n, a, kw, env):
    out = _meta(n)
    return np.broadcast_to(_operand(b, env, a[1], out.dtype), _shape(out.shape)).copy()


@lowers(aten.view, aten._unsafe_view, aten.reshape)
def _reshape(b, n, a, kw, env):
    if _batched(a[0]) != _batched(n):
        raise Unsupported(f"{n.target}: reshaping across the batch axis")
    return np.ascontiguousarray(env[a[0]]).reshape(_shape(_meta(n).shape))


@lowers(aten.expand)
def _expand(b, n, a, kw, env):
    return np.broadcast_to(env[a[0]], _shape(_meta(n).shape)).copy()


@lowers(aten.permute)
def _permute(b, n, a, kw, env):
    x = env[a[0]]
    dims = [d % x.ndim for d in a[1]]
    if _batched(a[0]) and dims[0] != 0:
        raise Unsupported("permute moves the batch axis")
    return np.transpose(x, dims)


@lowers(aten.transpose)
def _transpose(b, n, a, kw, env):
    x = env[a[0]]
    d0, d1 = a[1] % x.ndim, a[2] % x.ndim
    if _batched(a[0]) and 0 in (d0, d1):
        raise Unsupported("transpose moves the batch axis")
    return np.swapaxes(x, d0, d1)


@lowers(aten.t)
def _t(b, n, a, kw, env):
    return env[a[0]].T


@lowers(aten.unsqueeze)
def _unsqueeze(b, n, a, kw, env):
    x = env[a[0]]
    return np.expand_dims(x, a[1] % (x.ndim + 1))


@lowers(aten.squeeze)
def _squeeze(b, n, a, kw, env):
    return env[a[0]].reshape(_shape(_meta(n).shape))


@lowers(aten.select)
def _select(b, n, a, kw, env):
    x = env[a[0]]
    d = a[1] % x.ndim
    if d == 0 and _batched(a[0]):
        raise Unsupported("indexing the batch axis")
    return np.take(x, a[2], axis=d)


@lowers(aten.slice)
def _slice(b, n, a, kw, env):
    x = env[a[0]]
    d = a[1] % x.ndim
    if d == 0 and _batched(a[0]):
        raise Unsupported("slicing the batch axis")
    start = a[2] if len(a) > 2 and a[2] is not None else None
    end = a[3] if len(a) > 3 else None
    step = a[4] if len(a) > 4 else 1
    sl = [slice(None)] * x.ndim
    sl[d] = slice(start, None if end is None or end >= 2 ** 62 else end, step)
    return x[tuple(sl)]


@lowers(aten.cat, aten.stack)
def _cat(b, n, a, kw, env):
    out = _meta(n)
    d = a[1] if len(a) > 1 else 0
    parts = [_operand(b, env, x, out.dtype) for x in a[0]]
    if n.target.overloadpacket is aten.stack:
        return np.stack(parts, axis=d % (parts[0].ndim + 1))
    parts = [p for p, x in zip(parts, a[0]) if _meta(x).numel() > 0]
    return np.concatenate(parts, axis=d % parts[0].ndim)


@lowers(aten.unbind)
def _unbind(b, n, a, kw, env):
    x = env[a[0]]
    d = a[1] if len(a) > 1 else 0
    return [np.take(x, i, axis=d % x.ndim) for i in range(x.shape[d])]


@lowers(aten.split_with_sizes, aten.split)
def _split(b, n, a, kw, env):
    d = a[2] if len(a) > 2 else 0
    arr = env[a[0]]
    if n.target.overloadpacket is aten.split_with_sizes:
        sizes = a[1]
    else:
        sizes = [min(a[1], arr.shape[d] - i) for i in range(0, arr.shape[d], a[1])]
    return np.split(arr, np.cumsum(sizes)[:-1], axis=d % arr.ndim)


# ---------------------------------------------------------------------------------------------
# Constructors


@lowers(aten.full, aten.full_like)
def _full(b, n, a, kw, env):
    return _const_array(n, a[-1])


@lowers(aten.new_full)
def _new_full(b, n, a, kw, env):
    return _const_array(n, a[2])


@lowers(aten.zeros, aten.zeros_like, aten.new_zeros, aten.empty_like, aten.new_empty)
def _zeros(b, n, a, kw, env):
    return _const_array(n, 0)


@lowers(aten.ones, aten.ones_like, aten.new_ones)
def _ones(b, n, a, kw, env):
    return _const_array(n, 1)


@lowers(aten.scalar_tensor)
def _scalar_tensor(b, n, a, kw, env):
    return np.array(Const.of(a[0], _meta(n).dtype), dtype=object)


@lowers(aten.arange)
def _arange(b, n, a, kw, env):
    start, end, step = (0, a[0], 1) if len(a) == 1 else (a[0], a[1], a[2] if len(a) > 2 else 1)
    dt = _meta(n).dtype
    return np.array([Const.of(x, dt) for x in np.arange(start, end, step).tolist()], dtype=object)


# ---------------------------------------------------------------------------------------------
# Reductions over the small axes


def _any(b, dt, x, y):
    return b.emit("or", (b.truthy(x), b.truthy(y)), torch.bool)


def _all(b, dt, x, y):
    return b.emit("and", (b.truthy(x), b.truthy(y)), torch.bool)


_COMBINE = {aten.sum: _op("add"), aten.mean: _op("add"), aten.prod: _op("mul"), aten.amax: _max_nan(True),
            aten.amin: _max_nan(False), aten.any: _any, aten.all: _all}


@lowers(*_COMBINE)
def _reduction(b, n, a, kw, env):
    pk = n.target.overloadpacket
    dims = a[1] if len(a) > 1 else kw.get("dim")
    keep = a[2] if len(a) > 2 else kw.get("keepdim", False)
    axes = _reduce_axes(n, dims)
    _check_batch_axes(n, axes)
    dt = torch.bool if pk in (aten.any, aten.all) else _meta(n).dtype
    arr = _operand(b, env, a[0], dt)
    res = _fold(b, arr, axes, dt, _COMBINE[pk], keep)
    if pk is aten.mean:
        cnt = Const.of(math.prod(env[a[0]].shape[ax % env[a[0]].ndim] for ax in axes), dt)
        res = _map(lambda x: b.emit("div", (x, cnt), dt), res)
    return res


@lowers(aten.linalg_vector_norm)
def _vector_norm(b, n, a, kw, env):
    ordv = a[1] if len(a) > 1 else kw.get("ord", 2)
    dims = a[2] if len(a) > 2 else kw.get("dim")
    keep = a[3] if len(a) > 3 else kw.get("keepdim", False)
    axes = _reduce_axes(n, dims)
    _check_batch_axes(n, axes)
    dt = _meta(n).dtype
    arr = _operand(b, env, a[0], dt)
    if ordv == 2:
        s = _fold(b, _map(lambda x: b.emit("mul", (x, x), dt), arr), axes, dt, _op("add"), keep)
        return _map(lambda x: b.emit("sqrt", (x,), dt), s)
    if ordv in (1, math.inf):
        ab = _map(lambda x: b.emit("fabs", (x,), dt), arr)
        return _fold(b, ab, axes, dt, _op("add") if ordv == 1 else _max_nan(True), keep)
    raise Unsupported(f"vector norm of order {ordv}")


@lowers(aten._softmax, aten._log_softmax)
def _softmax(b, n, a, kw, env):
    d = a[1]
    _check_batch_axes(n, [d])
    dt = _meta(n).dtype
    x = _operand(b, env, a[0], dt)
    m = _fold(b, x, [d], dt, _max_nan(True), True)
    sh = _map(lambda p, q: b.emit("sub", (p, q), dt), x, m)
    e = _map(lambda p: b.emit("exp", (p,), dt), sh)
    s = _fold(b, e, [d], dt, _op("add"), True)
    if n.target.overloadpacket is aten._softmax:
        return _map(lambda p, q: b.emit("div", (p, q), dt), e, s)
    ls = _map(lambda q: b.emit("log", (q,), dt), s)
    return _map(lambda p, q: b.emit("sub", (p, q), dt), sh, ls)


# ---------------------------------------------------------------------------------------------
# Small matrix products


@lowers(aten.mm, aten.bmm)
def _matmul(b, n, a, kw, env):
    dt = _meta(n).dtype
    A, B = _operand(b, env, a[0], dt), _operand(b, env, a[1], dt)
    lead = np.broadcast_shapes(A.shape[:-2], B.shape[:-2])
    A = np.broadcast_to(A, lead + A.shape[-2:])
    B = np.broadcast_to(B, lead + B.shape[-2:])
    rows, inner, cols = A.shape[-2], A.shape[-1], B.shape[-1]
    res = np.empty(lead + (rows, cols), dtype=object)
    for li in np.ndindex(*lead) if lead else [()]:
        for i in range(rows):
            for j in range(cols):
                terms = [b.emit("mul", (A[li + (i, k)], B[li + (k, j)]), dt) for k in range(inner)]
                res[li + (i, j)] = reduce(lambda x, y: b.emit("add", (x, y), dt), terms) if terms else Const.of(0, dt)
    return res
