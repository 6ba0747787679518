"""The scalar program: one run's step as a flat list of typed scalar operations (SSA).

The rules every printer relies on:

* a *value* is an input element name (``in{leaf}_{element}``), an instruction's output name (``v{n}``) or a
  :class:`Const` (a Python number with its torch dtype);
* every instruction has one dtype, and its operands already have the dtype the operation computes in
  (the lowering inserts ``cast`` instructions; only ``where``'s condition, comparisons' results and
  ``cast``'s operand differ), so a printer never promotes types;
* the operations, and what they mean, are those of C on that dtype with IEEE float32/float64 arithmetic:

  ==============================  =============================================================
  ``add sub mul div neg``         arithmetic (``div`` on integers truncates, as C's ``/``)
  ``mod``                         integer remainder with the sign of the dividend (C's ``%``)
  ``eq ne lt le gt ge``           comparisons; the result is ``bool``
  ``and or xor not shl shr``      bitwise on integers, logical on ``bool``; ``shr`` is arithmetic
  ``where(c, a, b)``              ``c ? a : b``
  ``cast(x)``                     to the instruction's dtype (to ``bool``: ``x != 0``; float to int truncates)
  ``sqrt fabs floor ceil trunc``  exactly rounded everywhere
  ``rint``                        round half to even
  ``exp log tanh sin cos log1p``  transcendental: each backend's maths library, within its ulp bound
  ``expm1 atan atan2 pow``
  ==============================  =============================================================

Nothing here knows about C or Triton; ``c.py`` and ``triton_src.py`` print it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

FLOATS = (torch.float32, torch.float64)
COMPARISONS = ("eq", "ne", "lt", "le", "gt", "ge")
EXACT_MATH = ("sqrt", "fabs", "floor", "ceil", "trunc", "rint")
TRANSCENDENTAL = ("exp", "log", "tanh", "sin", "cos", "log1p", "expm1", "atan", "atan2", "pow")
OPS = {"add": 2, "sub": 2, "mul": 2, "div": 2, "mod": 2, "neg": 1, "and": 2, "or": 2, "xor": 2, "not": 1,
       "shl": 2, "shr": 2, "where": 3, "cast": 1, "atan2": 2, "pow": 2,
       **{c: 2 for c in COMPARISONS}, **{m: 1 for m in EXACT_MATH + TRANSCENDENTAL if m not in ("atan2", "pow")}}


@dataclass(frozen=True)
class Const:
    """A literal: ``value`` is a Python bool, int or float already converted to ``dtype``."""
    value: object
    dtype: torch.dtype

    @staticmethod
    def of(v, dtype) -> "Const":
        if dtype in FLOATS:
            return Const(float(v), dtype)
        if dtype == torch.bool:
            return Const(bool(v), dtype)
        v = float(v) if isinstance(v, float) else v
        if isinstance(v, float):
            v = math.trunc(v) if math.isfinite(v) else 0
        return Const(int(v), dtype)


@dataclass(frozen=True)
class Instr:
    out: str
    op: str
    args: tuple
    dtype: torch.dtype


class Builder:
    """Appends instructions; knows every value's dtype."""

    def __init__(self):
        self.instrs: list[Instr] = []
        self.dtypes: dict[str, torch.dtype] = {}

    def input(self, name: str, dtype) -> str:
        self.dtypes[name] = dtype
        return name

    def dtype(self, v):
        return v.dtype if isinstance(v, Const) else self.dtypes[v]

    def emit(self, op: str, args, dtype) -> str:
        args = tuple(args)
        if OPS.get(op) != len(args):
            raise ValueError(f"{op}: {len(args)} operands")
        name = f"v{len(self.instrs)}"
        self.instrs.append(Instr(name, op, args, dtype))
        self.dtypes[name] = dtype
        return name

    def cast(self, v, dtype):
        if self.dtype(v) == dtype:
            return v
        if isinstance(v, Const):
            return Const.of(v.value, dtype)
        return self.emit("cast", (v,), dtype)

    def truthy(self, v):
        """``v != 0`` as a bool (no instruction when ``v`` is a bool already)."""
        return v if self.dtype(v) == torch.bool else self.emit("ne", (v, Const.of(0, self.dtype(v))), torch.bool)


@dataclass
class ScalarProgram:
    """A traced step as scalar code for one run.

    ``inputs[k]``: the element names of input leaf k (state leaves first, then parameters), row-major over
    its per-run shape; ``outputs[k]``: the values of output leaf k (the new state, then the records), each
    already of that leaf's dtype.
    """
    instrs: list
    dtypes: dict
    inputs: list
    outputs: list
    in_dtypes: list
    in_shapes: list
    out_dtypes: list
    out_shapes: list
    n_state: int
    n_params: int

    @property
    def n_records(self) -> int:
        return len(self.outputs) - self.n_state

    def uses(self, ops) -> bool:
        return any(i.op in ops for i in self.instrs)
