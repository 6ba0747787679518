"""The method contract, checked: the rules every method keeps, whether it ships in ``optimizers/methods/`` or is
loaded from a file or an entry point (``optimizers/plugins.py``).

``check(method) -> Report``; ``require(method)`` raises a ``ValueError`` that names every broken rule. The plugin
loader runs them on each method it loads, and ``tests/test_method_contract.py`` runs the same functions on every
registered method: one tracing helper (:func:`trace`), one list of operations the fused kernel refuses
(:data:`FORBIDDEN_OPS`). Everything runs on the CPU on small batches, in well under a second for a method of
ordinary size.

The rules, in the order they are checked (each message starts with the rule's name):

``spec``
    The Method's fields: ``key`` and hyperparameter names are lowercase identifiers (they become URL keys and
    ``--hp METHOD.NAME=V`` flags), ``family`` is one of ``FAMILIES``, every ``HParam`` has low <= default <= high,
    ``reference`` / ``clean`` are ``Post``, ``aux`` names strings, ``colour`` is ``"#rrggbb"`` or None.
``signature``
    ``init(B, K, D, hp, *, dtype, device)`` and ``step(G, L, state, hp, ctx)`` take those arguments, and ``step``
    returns the triple ``(d, state, aux)``.
``d of shape [B, D]``
    ``d`` is a tensor with G's batch and parameter sizes and G's dtype.
``state and aux [B, ...]``
    ``init`` and ``step`` return dicts of tensors with a leading B whose names, shapes and dtypes stay the same
    from step to step (the fused kernel keeps them in fixed buffers); ``aux`` holds the declared keys, each
    [B, ...].
``no reduction over the batch``
    In the traced step (``make_fx`` with a prime batch size no other axis has), no reduction (sum, mean, max,
    softmax, cumsum, norm, ...) and no matrix product runs over the batch axis, and no tensor pairs every run
    with every other ([B, B]). Runs are independent problems that happen to share a batch.
``rows independent``
    Over three steps of a batch that mixes ordinary, zero, equal, opposite, tiny and huge gradients with a NaN
    run and an inf run, with per-run hyperparameters, RNG keys and loss floors, each run's d, state and aux
    equal those of the same run computed alone (to 1e-9, float64): no run, not even a NaN one, changes another.
``finite on ordinary input``
    Gradient norms in [1e-3, 1e3] in any direction and losses in [1, 50] (above the floor) give a finite d.

Not a rule, but reported (``Report.eager``): operations the fused C kernel does not take (:data:`FORBIDDEN_OPS`,
in-place ops) or a step ``make_fx`` cannot trace. A built-in uses none of them; a plugin that does is run in
eager torch, and the engine records why (``Result.timings["kernel_fallbacks"]``).
"""
from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .base import FAMILIES, PIPELINES, Context, HParam, Method, Post

RULES = ("spec", "signature", "d of shape [B, D]", "state and aux [B, ...]", "no reduction over the batch",
         "rows independent", "finite on ordinary input")

# The traced batch size: a prime that no task, parameter or state axis of a toy equals or divides, so an axis
# whose size it divides is the batch axis (possibly merged with another by a reshape).
TRACE_BATCH = 1009

# Operations the fused C kernel cannot take (a fragment of the ATen op name -> why). A built-in method uses none;
# a plugin that does runs in eager torch. In-place ops (a trailing "_") are refused as well.
FORBIDDEN_OPS = {
    "linalg": "torch.linalg (write the small solve out, as optimizers/linalg.py does)",
    "sort": "sorting (count pairwise comparisons instead)",
    "topk": "top-k selection",
    "argmax": "argmax (a data-dependent index)",
    "argmin": "argmin (a data-dependent index)",
    "gather": "tensor indexing",
    "scatter": "tensor indexing",
    "index": "tensor indexing",
    "nonzero": "a data-dependent shape",
    "masked_select": "a data-dependent shape",
    "masked_scatter": "a data-dependent write",
    "_local_scalar_dense": "a tensor value read into Python (.item(), bool(), an if on data)",
    "rand": "torch's global random generator (draw from ctx.uniform / ctx.normal)",
    "normal": "torch's global random generator (draw from ctx.uniform / ctx.normal)",
    "uniform": "torch's global random generator (draw from ctx.uniform / ctx.normal)",
    "bernoulli": "torch's global random generator (draw from ctx.uniform / ctx.normal)",
    "multinomial": "torch's global random generator (draw from ctx.uniform / ctx.normal)",
}


def explain(text: str) -> str:
    """What a refused operation named in ``text`` is (from :data:`FORBIDDEN_OPS`), or "" if none is named."""
    ops = re.findall(r"aten\.([A-Za-z0-9_]+)", text)
    for op in ops:
        why = next((w for frag, w in FORBIDDEN_OPS.items() if frag in op), None)
        if why:
            return why
    return ""


# Reductions: ATen ops whose "dim" argument (none: every axis) is reduced or scanned.
_REDUCTIONS = {
    "sum", "nansum", "mean", "nanmean", "amax", "amin", "max", "min", "aminmax", "prod", "any", "all", "logsumexp",
    "var", "std", "var_mean", "std_mean", "norm", "linalg_vector_norm", "cumsum", "cumprod", "cummax", "cummin",
    "logcumsumexp", "argmax", "argmin", "median", "nanmedian", "mode", "kthvalue", "count_nonzero", "_softmax",
    "_log_softmax", "softmax", "log_softmax", "_safe_softmax", "sort", "argsort", "topk",
}
# Matrix products: the positions of the two factors in the op's arguments.
_PRODUCTS = {"mm": (0, 1), "bmm": (0, 1), "matmul": (0, 1), "mv": (0, 1), "dot": (0, 1), "vdot": (0, 1),
             "addmm": (1, 2), "baddbmm": (1, 2), "addmv": (1, 2), "addbmm": (1, 2)}

_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
RTOL = 1e-9                   # rows independent: float64, so only rounding may differ (and it does not, in practice)


@dataclass
class Report:
    """What :func:`check` found: broken rules (``"rule: detail"``) and why the C kernel would refuse the step."""

    violations: list = field(default_factory=list)
    eager: list = field(default_factory=list)
    traces: list = field(default_factory=list)      # the Traced steps the graph checks ran on

    @property
    def ok(self) -> bool:
        return not self.violations


class _Broken(Exception):
    """A rule is broken and the later checks cannot run (internal)."""

    def __init__(self, rule: str, detail: str):
        super().__init__(f"{rule}: {detail}")


# ---------------------------------------------------------------------------------------------
# The tracing helper (the loader, the contract suite and the kernel tests all use it).

@dataclass
class Traced:
    graph: object                    # torch.fx.GraphModule, or None when make_fx failed
    fn: Callable                     # the flat step that was traced (see flat_step)
    state: list                      # example state leaves (t first)
    params: list                     # example parameter leaves
    error: str = ""                  # why make_fx failed


def hp_tensors(method: Method, B: int, dtype, values: dict | None = None) -> dict:
    """Hyperparameters as a step receives them: ``[B]`` tensors (``values[name]`` may hold B per-run values),
    static ones as Python numbers."""
    out = {}
    for h in method.hparams:
        v = (values or {}).get(h.name, h.default)
        if h.static:
            out[h.name] = v
        elif np.ndim(v) == 0:
            out[h.name] = torch.full((B,), float(v), dtype=dtype)
        else:
            out[h.name] = torch.as_tensor(v, dtype=dtype)
    return out


def flat_step(method: Method, pipeline: str, state_names: list, hp_names: list, static: dict) -> Callable:
    """The step as a function of flat tensors, in the fused kernel's layout ``fn(*state, *params)``::

        fn(t, *state_leaves, G, L, key, floor, *hp_leaves) -> (t + 1, *new_state_leaves, d, *aux[method.aux])

    ``state_names`` / ``hp_names`` give the order of the leaves; ``static`` holds the static hyperparameters.
    """
    n = len(state_names)

    def fn(t, *xs):
        state = dict(zip(state_names, xs[:n]))
        G, L, key, floor = xs[n:n + 4]
        hp = dict(static, **dict(zip(hp_names, xs[n + 4:])))
        d, new, aux = method.step(G, L, state, hp, Context(pipeline, t, key, floor))
        return (t + 1, *[new[k] for k in state_names], d, *[aux[a] for a in method.aux])

    return fn


def example_inputs(method: Method, *, K: int, D: int, B: int, dtype=torch.float32, seed: int = 0,
                   G: torch.Tensor | None = None):
    """``(state_names, hp_names, static, state, params)`` for :func:`flat_step`: random gradients (the first
    three runs with a zero task gradient, equal and opposite gradients), losses in [1, 2) above a floor of -21,
    distinct RNG keys, default hyperparameters, the method's initial state."""
    gen = torch.Generator().manual_seed(seed)
    if G is None:
        G = torch.randn(B, K, D, generator=gen, dtype=torch.float64)
        if B >= 3:
            G[0, 0] = 0.0
            G[1, 1:] = G[1, 0]
            G[2, 1] = -G[2, 0]
        G = G.to(dtype)
    L = (torch.rand(B, K, generator=gen, dtype=torch.float64) + 1.0).to(dtype)
    hp = hp_tensors(method, B, dtype)
    static = {k: v for k, v in hp.items() if not torch.is_tensor(v)}
    hp_names = [k for k in hp if torch.is_tensor(hp[k])]
    state = method.init(B, K, D, hp, dtype=dtype, device="cpu")
    state_names = sorted(state)
    leaves = [torch.ones(B, dtype=dtype), *[state[k] for k in state_names]]
    params = [G, L, torch.arange(B, dtype=torch.int64) * 7919 + 1, torch.full((B, K), -21.0, dtype=dtype),
              *[hp[k] for k in hp_names]]
    return state_names, hp_names, static, leaves, params


def trace(method: Method, *, K: int = 3, D: int = 2, pipeline: str = "clean", B: int = TRACE_BATCH,
          dtype=torch.float32, seed: int = 0) -> Traced:
    """``make_fx`` the flat step (:func:`flat_step`) on example inputs of batch size ``B``."""
    from torch.fx.experimental.proxy_tensor import make_fx

    names, hp_names, static, state, params = example_inputs(method, K=K, D=D, B=B, dtype=dtype, seed=seed)
    fn = flat_step(method, pipeline, names, hp_names, static)
    try:
        graph = make_fx(fn)(*state, *params)
    except Exception as e:      # noqa: BLE001 - any failure to trace means "eager only", never a crash
        return Traced(None, fn, state, params, f"{type(e).__name__}: {_first_line(e)}")
    return Traced(graph, fn, state, params)


def _op_name(target) -> str | None:
    packet = getattr(target, "overloadpacket", None)
    if packet is not None:
        return packet.__name__
    return None                 # operator.getitem and other Python callables: not an ATen op


def _shape(x):
    val = x.meta.get("val") if hasattr(x, "meta") else None
    if isinstance(val, (tuple, list)):
        val = next((v for v in val if isinstance(v, torch.Tensor)), None)
    return tuple(val.shape) if isinstance(val, torch.Tensor) else None


def _out_shapes(node) -> list:
    val = node.meta.get("val")
    vals = val if isinstance(val, (tuple, list)) else [val]
    return [tuple(v.shape) for v in vals if isinstance(v, torch.Tensor)]


def _bound_args(node) -> dict:
    schema = getattr(node.target, "_schema", None)
    if schema is None:
        return {}
    names = [a.name for a in schema.arguments]
    out = dict(zip(names, node.args))
    out.update(node.kwargs)
    for a in schema.arguments:              # make_fx leaves defaults out (sort's dim=-1, norm's dim=None)
        if a.name not in out and a.has_default_value():
            out[a.name] = a.default_value
    return out


def graph_findings(graph, B: int = TRACE_BATCH) -> tuple[list[str], list[str]]:
    """``(over_batch, eager)`` for a traced step: operations that reduce over (or pair) the batch axis of size
    ``B``, and operations the fused C kernel refuses (:data:`FORBIDDEN_OPS`, in-place ops)."""
    over, eager = [], []
    batchy = (lambda n: n % B == 0 and n > 0)
    for node in graph.graph.nodes:
        if node.op != "call_function":
            continue
        name = _op_name(node.target)
        if name is None:
            continue
        why = next((w for frag, w in FORBIDDEN_OPS.items() if frag in name), None)
        if why is None and name.endswith("_") and not name.endswith("__"):
            why = "an in-place operation (write x = f(x) instead)"
        if why and f"aten.{name}: {why}" not in eager:
            eager.append(f"aten.{name}: {why}")
        args = _bound_args(node)
        if name in _REDUCTIONS and "other" not in args:          # max(a, b) and the like are element-wise
            shape = _shape(node.args[0]) if node.args else None
            if shape is None:
                continue
            dims = args.get("dim")
            if dims is None or dims == [] or "dim" not in args:
                axes = list(range(len(shape)))
            else:
                axes = [dims] if isinstance(dims, int) else list(dims)
            if any(batchy(shape[a % len(shape)]) for a in axes if shape):
                over.append(f"aten.{name} over dim {_dims_text(dims, args)} of a {_shape_text(shape, B)} tensor")
        elif name in _PRODUCTS:
            i, j = _PRODUCTS[name]
            a = _shape(node.args[i]) if len(node.args) > i else None
            if a:
                inner = [a[-1]] + ([a[0]] if name == "addbmm" else [])
                if name in ("dot", "vdot"):
                    inner = [a[0]]
                if any(batchy(n) for n in inner):
                    over.append(f"aten.{name} contracts the batch axis of a {_shape_text(a, B)} factor")
        paired = (lambda shape: sum(batchy(n) for n in shape) >= 2)
        ins = [_shape(a) for a in node.args if hasattr(a, "meta")]
        if not any(sh and paired(sh) for sh in ins):          # name the op that first pairs runs, not its users
            for shape in _out_shapes(node):
                if paired(shape):
                    over.append(f"aten.{name} makes a {_shape_text(shape, B)} tensor (every run paired with every "
                                f"other)")
                    break
    return list(dict.fromkeys(over)), eager


def _shape_text(shape, B) -> str:
    return "[" + ", ".join("B" if n == B else (f"{n // B}B" if n % B == 0 and n else str(n)) for n in shape) + "]"


def _dims_text(dims, args) -> str:
    if "dim" not in args or dims is None or dims == []:
        return "(all)"
    return str(dims)


# ---------------------------------------------------------------------------------------------
# The checks.

def check(method: Method, *, pipelines=PIPELINES, tasks=(2, 3), trace_graph: bool = True) -> Report:
    """Every rule of the contract for ``method`` (for each pipeline and number of tasks given)."""
    report = Report()
    try:
        _check_spec(method)
        _check_signature(method)
    except _Broken as e:
        report.violations.append(str(e))
        return report
    for K in [K for K in tasks if K >= method.min_tasks] or [method.min_tasks]:
        for pipeline in pipelines:
            shapes_ok = True
            for rule_check in (_check_shapes, _check_rows, _check_finite):
                try:
                    rule_check(method, pipeline, K)
                except _Broken as e:
                    report.violations.append(str(e))
                    shapes_ok = rule_check is not _check_shapes
                    break               # later checks of this case would only repeat the failure
            if trace_graph and shapes_ok:   # a step that cannot even be called right is not worth tracing
                t = trace(method, K=K, pipeline=pipeline)
                report.traces.append(t)
                if t.graph is None:
                    note = f"make_fx cannot trace the step ({t.error})"
                    if note not in report.eager:
                        report.eager.append(note)
                    continue
                over, eager = graph_findings(t.graph)
                for o in over:
                    msg = f"no reduction over the batch: {o} mixes the runs of a batch ({pipeline} pipeline, " \
                          f"K = {K}); reduce over the task or parameter axes only"
                    report.violations.append(msg)
                report.eager += [e for e in eager if e not in report.eager]
    first = {}                          # one message per broken rule (the first case that showed it)
    for v in report.violations:
        first.setdefault(v.split(":", 1)[0], v)
    report.violations = list(first.values())
    return report


def require(method: Method, **kw) -> Report:
    """:func:`check`, raising ``ValueError`` naming every broken rule (one line)."""
    report = check(method, **kw)
    if report.violations:
        raise ValueError(f"method {getattr(method, 'key', method)!r} breaks the contract: "
                         + "; ".join(report.violations))
    return report


def _check_spec(m) -> None:
    rule = "spec"
    if not isinstance(m, Method):
        raise _Broken(rule, f"expected an optimizers.Method, got {type(m).__name__}")
    if not isinstance(m.key, str) or not _IDENT.match(m.key):
        raise _Broken(rule, f"key {m.key!r} must be a lowercase identifier of at most 32 characters "
                            f"(a-z, 0-9, _; it becomes a URL key and a --hp prefix)")
    for attr in ("name", "paper", "summary"):
        if not isinstance(getattr(m, attr), str) or not getattr(m, attr).strip():
            raise _Broken(rule, f"{attr} must be a non-empty string")
    if m.family not in FAMILIES:
        raise _Broken(rule, f"family {m.family!r} must be one of {', '.join(FAMILIES)}")
    if not isinstance(m.hparams, tuple) or not all(isinstance(h, HParam) for h in m.hparams):
        raise _Broken(rule, "hparams must be a tuple of optimizers.HParam")
    seen = set()
    for h in m.hparams:
        if not _IDENT.match(str(h.name)) or h.name in seen:
            raise _Broken(rule, f"hyperparameter name {h.name!r} must be a new lowercase identifier")
        seen.add(h.name)
        nums = (h.default, h.low, h.high, h.step)
        if not all(isinstance(x, (int, float)) and math.isfinite(x) for x in nums):
            raise _Broken(rule, f"hyperparameter {h.name}: default, low, high and step must be finite numbers")
        if not (h.low <= h.default <= h.high) or h.step <= 0:
            raise _Broken(rule, f"hyperparameter {h.name}: needs low <= default <= high and step > 0 "
                                f"(got {h.low:g} <= {h.default:g} <= {h.high:g}, step {h.step:g})")
        if h.log and h.low <= 0:
            raise _Broken(rule, f"hyperparameter {h.name}: a log-scale slider needs low > 0")
    if not isinstance(m.reference, Post) or not isinstance(m.clean, Post):
        raise _Broken(rule, "reference and clean must be optimizers.Post")
    if not isinstance(m.aux, tuple) or not all(isinstance(a, str) for a in m.aux):
        raise _Broken(rule, "aux must be a tuple of names")
    if m.colour is not None and not (isinstance(m.colour, str) and _COLOUR.match(m.colour)):
        raise _Broken(rule, f"colour {m.colour!r} must be '#rrggbb'")
    if not isinstance(m.min_tasks, int) or not 2 <= m.min_tasks <= 4:
        raise _Broken(rule, "min_tasks must be 2, 3 or 4 (the landscapes have 2 to 4 tasks)")


def _check_signature(m: Method) -> None:
    rule = "signature"
    for fname, args, kwargs, text in (
            ("init", (1, 2, 2, {}), {"dtype": torch.float64, "device": "cpu"}, "init(B, K, D, hp, *, dtype, device)"),
            ("step", (None,) * 5, {}, "step(G, L, state, hp, ctx)")):
        fn = getattr(m, fname)
        if not callable(fn):
            raise _Broken(rule, f"{fname} is not callable")
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            continue            # a builtin without a signature: the calls below will tell
        try:
            sig.bind(*args, **kwargs)
        except TypeError as e:
            raise _Broken(rule, f"{fname}{sig} cannot be called as {text} ({e})") from None


# -- batches -------------------------------------------------------------------------------------

def _call(m: Method, G, L, state, hp, ctx, rule: str):
    """One step, every way it can go wrong turned into a broken rule."""
    try:
        with torch.no_grad():
            out = m.step(G, L, state, hp, ctx)
    except Exception as e:   # noqa: BLE001 - a plugin may raise anything; it becomes a message
        raise _Broken(rule, f"step raised {type(e).__name__}: {_first_line(e)} ({ctx.pipeline} pipeline, "
                            f"K = {G.shape[1]}, B = {G.shape[0]})") from None
    if not (isinstance(out, tuple) and len(out) == 3):
        raise _Broken("signature", f"step must return (d, state, aux), got {type(out).__name__}"
                                   + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    return out


def _init(m: Method, B, K, D, hp, dtype):
    try:
        state = m.init(B, K, D, hp, dtype=dtype, device="cpu")
    except Exception as e:   # noqa: BLE001
        raise _Broken("signature", f"init raised {type(e).__name__}: {_first_line(e)}") from None
    _check_state(state, B, "init", None)
    return state


def _check_state(state, B, where, before) -> None:
    rule = "state and aux [B, ...]"
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise _Broken(rule, f"{where} must return the state as a dict of named tensors, got {type(state).__name__}")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor) or v.dim() < 1 or v.shape[0] != B:
            raise _Broken(rule, f"state {k!r} from {where} must be a tensor with a leading batch axis of size {B}, "
                                f"got {_describe(v)}")
    if before is not None:
        if set(state) != set(before):
            raise _Broken(rule, f"step changes the state's names from {sorted(before)} to {sorted(state)}")
        for k, v in state.items():
            if v.shape != before[k].shape or v.dtype != before[k].dtype:
                raise _Broken(rule, f"step changes state {k!r} from {_describe(before[k])} to {_describe(v)}")


def _describe(v) -> str:
    if isinstance(v, torch.Tensor):
        return f"{str(v.dtype).removeprefix('torch.')}{list(v.shape)}"
    return type(v).__name__


def _check_outputs(m: Method, out, G, state_before) -> None:
    d, state, aux = out
    B, K, D = G.shape
    if not isinstance(d, torch.Tensor) or tuple(d.shape) != (B, D) or d.dtype != G.dtype:
        raise _Broken("d of shape [B, D]", f"step must return d as a {_describe(G[:, 0])} tensor (G's batch and "
                                           f"parameter sizes and dtype), got {_describe(d)} for G of "
                                           f"{_describe(G)}")
    _check_state(state, B, "step", state_before)
    rule = "state and aux [B, ...]"
    if not isinstance(aux, dict):
        raise _Broken(rule, f"aux must be a dict, got {type(aux).__name__}")
    missing = [a for a in m.aux if a not in aux]
    if missing:
        raise _Broken(rule, f"aux lacks the declared key(s) {', '.join(missing)}")
    for k in m.aux:
        v = aux[k]
        if not isinstance(v, torch.Tensor) or v.dim() < 1 or v.shape[0] != B:
            raise _Broken(rule, f"aux {k!r} must be a tensor with a leading batch axis of size {B}, "
                                f"got {_describe(v)}")
        if k == "weights" and tuple(v.shape) != (B, K):          # the pages plot one weight per task
            raise _Broken(rule, f"aux 'weights' must be [B, K] = [{B}, {K}], got {_describe(v)}")


def _ctx(pipeline, B, K, t, keys, floor, dtype):
    return Context(pipeline, torch.full((B,), float(t), dtype=dtype), keys, floor)


def _check_shapes(m: Method, pipeline: str, K: int) -> None:
    """Two steps of a small float32 and float64 batch: d [B, D], state and aux [B, ...] with stable shapes."""
    for dtype in (torch.float32, torch.float64):
        B, D = 5, 2
        gen = torch.Generator().manual_seed(1)
        hp = hp_tensors(m, B, dtype)
        state = _init(m, B, K, D, hp, dtype)
        floor = torch.full((B, K), -21.0, dtype=dtype)
        keys = torch.arange(B, dtype=torch.int64) + 11
        for t in (1, 2):
            G = torch.randn(B, K, D, generator=gen, dtype=torch.float64).to(dtype)
            L = (torch.rand(B, K, generator=gen, dtype=torch.float64) * 10 + 1).to(dtype)
            out = _call(m, G, L, state, hp, _ctx(pipeline, B, K, t, keys, floor, dtype), "signature")
            _check_outputs(m, out, G, state)
            state = out[1]


def _row_batch(K: int, D: int, steps: int, seed: int):
    """Per step, G[B, K, D] and L[B, K] for runs of these kinds (the same kind in the same row every step)."""
    kinds = ["ordinary", "zero task", "equal", "opposite", "tiny and huge", "nan", "inf", "ordinary"]
    rs = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        G = rs.normal(size=(len(kinds), K, D)) * rs.uniform(0.2, 5.0, size=(len(kinds), K, 1))
        G[1, 0] = 0.0
        G[2, 1:] = G[2, 0]
        G[3, 1] = -G[3, 0]
        G[4, 0] *= 1e-8
        G[4, 1] *= 1e8
        G[5, 0, 0] = np.nan
        G[6, 1, 1] = np.inf
        L = rs.uniform(1.0, 40.0, size=(len(kinds), K))
        out.append((torch.tensor(G), torch.tensor(L)))
    return kinds, out


def _row_hparams(m: Method, B: int) -> dict:
    """Per-run hyperparameters: each run a different value between the default and the range's ends."""
    vals = {}
    for h in m.hparams:
        if h.static:
            continue
        row = []
        for i in range(B):
            end = h.high if i % 2 else h.low
            f = 0.15 * (i // 2 + 1) if i else 0.0
            v = h.default + f * (end - h.default)
            row.append(float(round(v)) if h.integer else v)
        vals[h.name] = row
    return hp_tensors(m, B, torch.float64, vals)


def _run(m: Method, rows: list, data, hp_all: dict, pipeline: str, K: int, keys, floor):
    """The outputs (d, state, aux) of each step for the runs ``rows`` of the batch."""
    B = len(rows)
    idx = torch.tensor(rows)
    hp = {k: (v[idx] if torch.is_tensor(v) else v) for k, v in hp_all.items()}
    state = _init(m, B, K, data[0][0].shape[2], hp, torch.float64)
    outs = []
    for t, (G, L) in enumerate(data, start=1):
        ctx = _ctx(pipeline, B, K, t, keys[idx], floor[idx], torch.float64)
        out = _call(m, G[idx], L[idx], state, hp, ctx, "rows independent")
        _check_outputs(m, out, G[idx], state)
        outs.append(out)
        state = out[1]
    return outs


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.isclose(a, b, rtol=RTOL, atol=0.0, equal_nan=True).all())


def _differences(m, outs, alone, i: int, j: int) -> str | None:
    """Where run ``i`` of ``outs`` differs from run ``j`` of ``alone`` (None: nowhere)."""
    for t, ((d, s, a), (d1, s1, a1)) in enumerate(zip(outs, alone), start=1):
        pairs = [("d", d[i], d1[j])] + [(f"state {k!r}", s[k][i], s1[k][j]) for k in sorted(s)] \
            + [(f"aux {k!r}", a[k][i], a1[k][j]) for k in m.aux]
        for what, x, y in pairs:
            if not _same(x, y):
                return f"step {t}, {what}: {_numbers(x)} in the batch, {_numbers(y)} alone"
    return None


def _numbers(x: torch.Tensor) -> str:
    return "[" + ", ".join(f"{v:.6g}" for v in x.flatten()[:4].tolist()) + ("..." if x.numel() > 4 else "") + "]"


def _check_rows(m: Method, pipeline: str, K: int) -> None:
    rule = "rows independent"
    kinds, data = _row_batch(K, 2, steps=3, seed=K)
    B = len(kinds)
    hp = _row_hparams(m, B)
    keys = torch.arange(B, dtype=torch.int64) * 104729 + 17
    floor = torch.linspace(-25.0, -20.0, B, dtype=torch.float64)[:, None].expand(B, K).contiguous()
    everyone = list(range(B))
    outs = _run(m, everyone, data, hp, pipeline, K, keys, floor)
    finite_rows = [i for i, k in enumerate(kinds) if k not in ("nan", "inf")]
    clean = None
    for i in everyone:
        alone = _run(m, [i], data, hp, pipeline, K, keys, floor)
        diff = _differences(m, outs, alone, i, 0)
        if diff is None:
            continue
        where = f"({pipeline} pipeline, K = {K})"
        if i in finite_rows:
            if clean is None:
                clean = _run(m, finite_rows, data, hp, pipeline, K, keys, floor)
            if _differences(m, clean, alone, finite_rows.index(i), 0) is None:
                raise _Broken(rule, f"a run with NaN or inf gradients changes run {i} ({kinds[i]}) of its batch "
                                    f"{where}: {diff}")
        raise _Broken(rule, f"run {i} ({kinds[i]} gradients) computed in a batch of {B} differs from the same run "
                            f"computed alone {where}: {diff}")


def _check_finite(m: Method, pipeline: str, K: int) -> None:
    rule = "finite on ordinary input"
    rs = np.random.default_rng(100 + K)
    B, D = 16, 2
    hp = hp_tensors(m, B, torch.float64)
    state = _init(m, B, K, D, hp, torch.float64)
    keys = torch.arange(B, dtype=torch.int64) * 31 + 5
    floor = torch.full((B, K), -20.0, dtype=torch.float64)
    for t in (1, 2, 3):
        norms = 10.0 ** rs.uniform(-3, 3, size=(B, K))
        angles = rs.uniform(0, 2 * np.pi, size=(B, K))
        G = torch.tensor(np.stack([norms * np.cos(angles), norms * np.sin(angles)], -1))
        L = torch.tensor(rs.uniform(1.0, 50.0, size=(B, K)))
        d, state, _ = _call(m, G, L, state, hp, _ctx(pipeline, B, K, t, keys, floor, torch.float64), rule)
        bad = (~torch.isfinite(d)).any(-1).nonzero().flatten().tolist()
        if bad:
            i = bad[0]
            raise _Broken(rule, f"step {t} gives d = {_numbers(d[i])} for run {i} with gradient norms "
                                f"{_numbers(G[i].norm(dim=-1))} and losses {_numbers(L[i])} ({pipeline} pipeline, "
                                f"K = {K})")


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__
