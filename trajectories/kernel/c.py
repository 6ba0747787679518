"""The C printer: a scalar program inside ``for block of WIDTH x ilp runs: for step: #pragma omp simd for run``.

The state of each block of runs lives in block-local arrays for all the steps of a call; records are written
every ``rec_every`` steps (a second copy of the body, so the common step carries no record stores). Vector
maths comes from glibc's libmvec (``__SIMD_DECLS__`` is replaced by the declarations at build time; without
libmvec the same text builds with scalar libm). Compiled with ``-ffp-contract=off`` and without
``-ffast-math``: every operation rounds as the scalar program says.

``ilp`` > 1 writes the body once per group of WIDTH runs in the same SIMD loop, statement by statement
interleaved (``v3_0 = ...; v3_1 = ...;``). One step of one vector of runs is a long chain of dependent
operations, so a single chain leaves the core waiting on latencies; independent chains side by side fill those
waits (README "Performance" has the measurements). The arithmetic of each run is untouched, so every ``ilp``
computes the same bits. gcc takes 2-3 times as long on it (2.3x on Nash-MTL's kernel) and a block is ``ilp``
times wider, so the engine asks for it on large batches only (``trajectories.engine.c_ilp``).

``uniform`` names the inputs that are the same in every run of a call (the engine checks:
``trajectories.engine.uniform_leaves``). What is computed from them alone is printed as scalar code before the
SIMD loop, once per step and block: Adam's bias corrections, the step counter. Same operations, same bits.
"""
from __future__ import annotations

import math
import re

import torch

from .ir import FLOATS, Const, ScalarProgram

WIDTH = 8               # runs per SIMD block

CTYPE = {torch.float32: "float", torch.float64: "double", torch.int64: "int64_t", torch.int32: "int32_t",
         torch.bool: "int", torch.uint8: "int"}
PTR = {torch.float32: "float", torch.float64: "double", torch.int64: "int64_t", torch.int32: "int32_t",
       torch.bool: "unsigned char", torch.uint8: "unsigned char"}
VEC_MATH = ("tanh", "log", "exp", "sin", "cos", "log1p", "expm1", "atan", "atan2", "pow")


def literal(v, dtype) -> str:
    if dtype in FLOATS:
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


def simd_decls() -> str:
    out = []
    for name in VEC_MATH:
        for T, suf in (("float", "f"), ("double", "")):
            args = f"{T}, {T}" if name in ("pow", "atan2") else T
            out.append(f'__attribute__((simd("notinbranch"))) {T} {name}{suf}({args});')
    return "\n".join(out)


def _fn(name, dtype):
    return name + "f" if dtype == torch.float32 else name


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "mod": "%", "and": "&", "or": "|", "xor": "^",
          "shl": "<<", "shr": ">>", "eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}
_LIBM = {"sqrt": "sqrt", "fabs": "fabs", "floor": "floor", "ceil": "ceil", "trunc": "trunc", "rint": "nearbyint",
         "exp": "exp", "log": "log", "tanh": "tanh", "sin": "sin", "cos": "cos", "log1p": "log1p",
         "expm1": "expm1", "atan": "atan", "atan2": "atan2", "pow": "pow"}


def expression(ins, args: list[str]) -> str:
    op, dt = ins.op, ins.dtype
    if op in _INFIX:
        return f"({args[0]} {_INFIX[op]} {args[1]})"
    if op == "neg":
        return f"(-{args[0]})"
    if op == "not":
        # not "!x" on a bool: gcc turns it into a 1-bit _Bool and then leaves the whole step loop scalar (8x
        # slower, seen on CAGrad); a bool is 0 or 1 here, so 1 - x is the same value and vectorises
        return f"(1 - ({args[0]}))" if dt == torch.bool else f"(~({args[0]}))"
    if op == "where":
        return f"({args[0]} ? {args[1]} : {args[2]})"
    if op == "cast":
        return f"(({args[0]}) != 0)" if dt == torch.bool else f"(({CTYPE[dt]})({args[0]}))"
    if op in _LIBM:
        return f"{_fn(_LIBM[op], dt)}({', '.join(args)})"
    raise ValueError(f"no C for {op}")


def body(prog: ScalarProgram) -> list[str]:
    def val(v):
        return literal(v.value, v.dtype) if isinstance(v, Const) else v
    lines = []
    for ins in prog.instrs:
        lines.append(f"{CTYPE[ins.dtype]} {ins.out} = {expression(ins, [val(a) for a in ins.args])};")
    return lines


_LOCAL = re.compile(r"\b(v\d+|in\d+_\d+)\b")      # the names body() and the loads give a run's values


def uniform_closure(prog: ScalarProgram, candidates) -> tuple[set, set]:
    """The input leaves of ``candidates`` (indices into state + params) that stay the same across runs at every
    step, and the values computed from them alone.

    A state leaf stays uniform only if its new value is computed from uniform values alone: the step counter
    and Adam's powers of beta do, a run's position does not. Iterated until no state leaf drops out.
    """
    leaves = set(candidates)
    while True:
        names = {name for k in leaves for name in prog.inputs[k]}
        for ins in prog.instrs:
            if all(isinstance(a, Const) or a in names for a in ins.args):
                names.add(ins.out)
        drop = {k for k in leaves if k < prog.n_state
                and not all(isinstance(x, Const) or x in names for x in prog.outputs[k])}
        if not drop:
            return leaves, names
        leaves -= drop


def source(prog: ScalarProgram, ilp: int = 1, uniform=()) -> str:
    """The translation unit: ``void run(b0, b1, t0, nsteps, rec_every, n_rec, S, P, R)``, blocks of
    ``WIDTH * ilp`` runs (see the module's docstring for ``ilp``).

    ``uniform``: input leaves (indices into state + params) whose value is the same for every run of a call,
    as the caller has checked. What is computed from them alone (:func:`uniform_closure`) is computed once a
    step for the block, as scalars before the SIMD loop, instead of once per run: the same operations on the
    same values, so the same bits.
    """
    W = WIDTH * ilp
    copies = [(f"_{c}" if ilp > 1 else "", c * WIDTH) for c in range(ilp)]
    uni_leaves, uni_names = uniform_closure(prog, uniform) if uniform else (set(), set())

    def val(v, suf=""):
        if isinstance(v, Const):
            return literal(v.value, v.dtype)
        return v if v in uni_names else v + suf

    def renamed(line, suf):
        if not suf:
            return line
        return _LOCAL.sub(lambda m: m.group(1) if m.group(1) in uni_names else m.group(1) + suf, line)
    lines_uni, lines_body = [], []
    for ins, line in zip(prog.instrs, body(prog)):
        (lines_uni if ins.out in uni_names else lines_body).append(line)
    L = ["#include <math.h>", "#include <stdint.h>", "#include <string.h>", "__SIMD_DECLS__", ""]
    L.append("void run(int64_t b0, int64_t b1, int64_t t0, int64_t nsteps, int64_t rec_every, "
             "int64_t n_rec, void** S, void** P, void** R) {")
    L.append(f"  for (int64_t bb = b0; bb < b1; bb += {W}) {{")
    L.append(f"    const int64_t n = (b1 - bb) < {W} ? (b1 - bb) : {W};")
    stores = []
    inputs = [("S", i) for i in range(prog.n_state)] + [("P", i) for i in range(prog.n_params)]
    for k, (src, i) in enumerate(inputs):
        dt, ne = prog.in_dtypes[k], len(prog.inputs[k])
        ct, pt = CTYPE[dt], PTR[dt]
        if k in uni_leaves:
            # the same for every run: the block's first run holds it
            if src == "P":
                for e, name in enumerate(prog.inputs[k]):
                    L.append(f"    const {ct} {name} = (({pt}*)P[{i}])[bb * {ne} + {e}];")
            else:
                L.append(f"    {ct} uni{k}[{ne}];")
                L.append(f"    for (int e = 0; e < {ne}; e++) uni{k}[e] = (({pt}*)S[{i}])[bb * {ne} + e];")
                stores.append(f"    for (int64_t j = 0; j < n; j++) for (int e = 0; e < {ne}; e++) "
                              f"(({pt}*)S[{i}])[(bb + j) * {ne} + e] = uni{k}[e];")
            continue
        # the block's runs, then padding lanes copied from its first run. Not one loop with the index
        # "j < n ? j : 0": gcc 12 at -O3 turned that into memcpy calls that, for blocks of 24 runs, loaded wrong
        # values into lanes 4-7 on the second call (tests/test_engine.py splits runs into chunks to catch it)
        L.append(f"    {ct} blk{k}[{ne}][{W}];")
        L.append(f"    for (int64_t j = 0; j < n; j++) for (int e = 0; e < {ne}; e++) "
                 f"blk{k}[e][j] = (({pt}*){src}[{i}])[(bb + j) * {ne} + e];")
        L.append(f"    for (int64_t j = n; j < {W}; j++) for (int e = 0; e < {ne}; e++) blk{k}[e][j] = blk{k}[e][0];")
        if src == "S":
            stores.append(f"    for (int64_t j = 0; j < n; j++) for (int e = 0; e < {ne}; e++) "
                          f"(({pt}*)S[{i}])[(bb + j) * {ne} + e] = blk{k}[e][j];")
    rec_specs = []
    for r in range(prog.n_records):
        dt, ne = prog.out_dtypes[prog.n_state + r], len(prog.outputs[prog.n_state + r])
        rec_specs.append((dt, ne))
        L.append(f"    {CTYPE[dt]} rb{r}[{ne}][{W}];")

    def step(record: bool):
        out = []
        for k in sorted(uni_leaves):
            if k < prog.n_state:
                out += [f"      const {CTYPE[prog.in_dtypes[k]]} {name} = uni{k}[{e}];"
                        for e, name in enumerate(prog.inputs[k])]
        out += ["      " + line for line in lines_uni]
        out += ["      #pragma omp simd", f"      for (int64_t j = 0; j < {WIDTH}; j++) {{"]
        for suf, off in copies:
            at = f"j + {off}" if off else "j"
            for k in range(len(inputs)):
                if k in uni_leaves:
                    continue
                for e, name in enumerate(prog.inputs[k]):
                    out.append(f"        const {CTYPE[prog.in_dtypes[k]]} {name}{suf} = blk{k}[{e}][{at}];")
        for line in lines_body:
            out += ["        " + renamed(line, suf) for suf, _ in copies]
        for suf, off in copies:
            at = f"j + {off}" if off else "j"
            for i in range(prog.n_state):
                if i in uni_leaves:
                    continue
                for e, x in enumerate(prog.outputs[i]):
                    out.append(f"        blk{i}[{e}][{at}] = {val(x, suf)};")
            if record:
                for r in range(prog.n_records):
                    for e, x in enumerate(prog.outputs[prog.n_state + r]):
                        out.append(f"        rb{r}[{e}][{at}] = {val(x, suf)};")
        out.append("      }")
        for i in sorted(uni_leaves):
            if i < prog.n_state:
                out += [f"      uni{i}[{e}] = {val(x)};" for e, x in enumerate(prog.outputs[i])]
        return out

    L.append("    for (int64_t s = 0; s < nsteps; s++) {")
    L.append("      const int64_t gs = t0 + s;")
    L.append("      if (rec_every > 0 && gs % rec_every == 0 && gs / rec_every < n_rec) {")
    L += ["  " + x for x in step(True)]
    L.append("        const int64_t row = gs / rec_every;")
    for r, (dt, ne) in enumerate(rec_specs):
        L.append(f"        for (int64_t j = 0; j < n; j++) for (int e = 0; e < {ne}; e++) "
                 f"(({PTR[dt]}*)R[{r}])[((bb + j) * n_rec + row) * {ne} + e] = rb{r}[e][j];")
    L.append("      } else {")
    L += ["  " + x for x in step(False)]
    L.append("      }")
    L.append("    }")
    L += stores
    L.append("  }")
    L.append("}")
    return "\n".join(L) + "\n"
