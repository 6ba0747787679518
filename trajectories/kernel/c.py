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
computes the same bits. It costs gcc about twice the time and makes a block ``ilp`` times wider, so the engine
asks for it on large batches only (``trajectories.engine.c_ilp``).
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


def source(prog: ScalarProgram, ilp: int = 1) -> str:
    """The translation unit: ``void run(b0, b1, t0, nsteps, rec_every, n_rec, S, P, R)``, blocks of
    ``WIDTH * ilp`` runs (see the module's docstring for ``ilp``)."""
    W = WIDTH * ilp
    copies = [(f"_{c}" if ilp > 1 else "", c * WIDTH) for c in range(ilp)]

    def val(v, suf=""):
        return literal(v.value, v.dtype) if isinstance(v, Const) else v + suf

    def renamed(line, suf):
        return _LOCAL.sub(lambda m: m.group(1) + suf, line) if suf else line
    lines_body = body(prog)
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

    def simd_loop(record: bool):
        out = ["      #pragma omp simd", f"      for (int64_t j = 0; j < {WIDTH}; j++) {{"]
        for suf, off in copies:
            at = f"j + {off}" if off else "j"
            for k in range(len(inputs)):
                for e, name in enumerate(prog.inputs[k]):
                    out.append(f"        const {CTYPE[prog.in_dtypes[k]]} {name}{suf} = blk{k}[{e}][{at}];")
        for line in lines_body:
            out += ["        " + renamed(line, suf) for suf, _ in copies]
        for suf, off in copies:
            at = f"j + {off}" if off else "j"
            for i in range(prog.n_state):
                for e, x in enumerate(prog.outputs[i]):
                    out.append(f"        blk{i}[{e}][{at}] = {val(x, suf)};")
            if record:
                for r in range(prog.n_records):
                    for e, x in enumerate(prog.outputs[prog.n_state + r]):
                        out.append(f"        rb{r}[{e}][{at}] = {val(x, suf)};")
        out.append("      }")
        return out

    L.append("    for (int64_t s = 0; s < nsteps; s++) {")
    L.append("      const int64_t gs = t0 + s;")
    L.append("      if (rec_every > 0 && gs % rec_every == 0 && gs / rec_every < n_rec) {")
    L += ["  " + x for x in simd_loop(True)]
    L.append("        const int64_t row = gs / rec_every;")
    for r, (dt, ne) in enumerate(rec_specs):
        L.append(f"        for (int64_t j = 0; j < n; j++) for (int e = 0; e < {ne}; e++) "
                 f"(({PTR[dt]}*)R[{r}])[((bb + j) * n_rec + row) * {ne} + e] = rb{r}[e][j];")
    L.append("      } else {")
    L += ["  " + x for x in simd_loop(False)]
    L.append("      }")
    L.append("    }")
    L += stores
    L.append("  }")
    L.append("}")
    return "\n".join(L) + "\n"
