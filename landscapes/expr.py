"""A small whitelist parser for loss expressions in two parameters, and their symbolic derivatives.

Nothing a user types reaches Python's evaluator: the text is tokenised and parsed by hand (recursive
descent) into a tree of :class:`Node` objects drawn from a fixed set of operations, and that tree is
evaluated with element-wise torch operations only (so the engine's C kernel can trace it). There is no
``eval``, ``exec``, ``compile``, ``sympify`` or ``ast.literal_eval`` of user text anywhere here.

Grammar (``^`` and ``**`` are the same operator; ``−``, ``×``, ``·`` and ``÷`` are read as ``-``, ``*``,
``*`` and ``/``)::

    expr   := term (("+" | "-") term)*
    term   := unary (("*" | "/") unary)*
    unary  := ("-" | "+") unary | power
    power  := atom (("^" | "**") unary)?          # right-associative: 2^3^2 = 2^9; -x^2 = -(x^2)
    atom   := NUMBER | CONSTANT | VARIABLE | FUNCTION "(" expr ("," expr)* ")" | "(" expr ")"

* variables: ``x1``, ``x2`` (aliases ``θ1``, ``θ2``, ``theta1``, ``theta2``);
* constants: ``pi`` (``π``), ``e``;
* numbers: ``3``, ``0.5``, ``.5``, ``1e-3`` (decimal only);
* functions (see :data:`FUNCTIONS`): exp, log, log1p, sqrt, abs, tanh, sin, cos, atan, sigmoid,
  softplus, relu (one argument), min and max (two or more), clamp(x, lo, hi) with constant bounds.

Limits (each refusal is a ``ValueError`` naming the problem and its 1-based position): at most
:data:`MAX_CHARS` characters, :data:`MAX_DEPTH` levels of nesting (parentheses, calls, unary signs and
powers), :data:`MAX_NODES` operations, literals of magnitude at most :data:`MAX_LITERAL`, constant
exponents of magnitude at most :data:`MAX_EXPONENT`, constant sub-expressions finite and of magnitude at
most :data:`MAX_CONSTANT`. A power whose exponent is not constant is *guarded*: ``a ^ b`` means
``pow(a, clamp(b, -64, 64))``, so a varying exponent can never exceed the constant limit either.

Constant sub-expressions are folded (in float64, with the same torch operations as the evaluation).

Derivatives
-----------
:func:`derivative` builds d(expr)/d(x1 or x2) as another tree over the same operations plus a few internal
ones (comparisons, ``where``, masks), so the engine's kernel sees plain element-wise operations for the
gradient as well. Structurally zero terms are dropped (a task that does not use x2 has dF/dx2 = 0 exactly).
At kinks the derivatives follow torch.autograd's conventions (``tests/test_expr.py`` checks every
function against autograd on random points and on the kinks):

* ``abs'(a) = sign(a)`` (0 at 0 and at NaN); ``relu'(a) = 0 where a <= 0, else 1`` (1 at NaN);
* ``clamp(a, lo, hi)`` passes the gradient where ``lo <= a <= hi`` (inclusive), 0 elsewhere and at NaN;
* ``max(a, b)``: all to the larger, half each on a tie, all to both when one is NaN (torch.maximum);
  ``min`` likewise; ``max(a, b, c) = max(max(a, b), c)``;
* ``sqrt'(a) = 1 / (2 sqrt(a))`` (inf at 0), ``log'(a) = 1 / a``;
* ``softplus(a) = a`` where ``a > 20``, else ``log1p(exp(a))``; its derivative is 1 there, else
  ``exp(a) / (exp(a) + 1)`` (torch's threshold 20);
* ``a ^ p`` (constant p): ``p a^(p-1)``, and exactly 0 for p = 0; ``a ^ b`` (varying b):
  ``b a^(b-1) da`` (0 where b = 0) ``+ a^b log(a) db`` (0 where a = 0 and b >= 0), as torch.pow.

Derivatives multiply the chain like autograd does, so ``0 * inf`` gives NaN where autograd's would.
"""
from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

import torch

MAX_CHARS = 500
MAX_DEPTH = 32
MAX_NODES = 256
MAX_LITERAL = 1e9
MAX_NUMBER_CHARS = 40
MAX_EXPONENT = 64.0
MAX_CONSTANT = 1e30
MAX_ARGS = 8

VARIABLES = {"x1": "x1", "x2": "x2", "θ1": "x1", "θ2": "x2", "theta1": "x1", "theta2": "x2"}
CONSTANTS = {"pi": math.pi, "π": math.pi, "e": math.e}


@dataclass(frozen=True)
class Function:
    name: str
    min_args: int
    max_args: int
    help: str


FUNCTIONS = {f.name: f for f in (
    Function("exp", 1, 1, "e to the power a"),
    Function("log", 1, 1, "natural logarithm (-inf at 0, NaN below)"),
    Function("log1p", 1, 1, "log(1 + a), accurate near 0"),
    Function("sqrt", 1, 1, "square root (NaN below 0)"),
    Function("abs", 1, 1, "absolute value"),
    Function("tanh", 1, 1, "hyperbolic tangent"),
    Function("sin", 1, 1, "sine (radians)"),
    Function("cos", 1, 1, "cosine (radians)"),
    Function("atan", 1, 1, "arc tangent"),
    Function("sigmoid", 1, 1, "1 / (1 + exp(-a))"),
    Function("softplus", 1, 1, "log(1 + exp(a)) (a itself above 20)"),
    Function("relu", 1, 1, "max(a, 0)"),
    Function("min", 2, MAX_ARGS, "the smallest argument"),
    Function("max", 2, MAX_ARGS, "the largest argument"),
    Function("clamp", 3, 3, "clamp(a, lo, hi): a limited to [lo, hi]; lo and hi constant"),
)}

_UNICODE_OPS = {"−": "-", "×": "*", "·": "*", "⋅": "*", "÷": "/"}
_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BINARY = ("+", "-", "*", "/", "^")
_UNARY_FUNCS = tuple(n for n, f in FUNCTIONS.items() if f.max_args == 1)
_INTERNAL = ("sign", "lt", "le", "gt", "ge", "eq", "and", "not", "where", "mask")


def _fail(msg: str, pos: int | None = None, hint: str = ""):
    raise ValueError(msg + (f" at position {pos + 1}" if pos is not None else "") + hint)


# ---------------------------------------------------------------------------------------------
# Nodes and the builder (hash-consing, constant folding)


class Node:
    """One operation. ``op`` is "num", "x1", "x2", a binary operator, "neg", a function name or an internal
    operation; ``args`` are child nodes; ``value`` is the number of a "num". Nodes are interned by their
    :class:`Builder`, so equal sub-trees are the same object and are evaluated once."""

    __slots__ = ("op", "args", "value", "__weakref__")

    def __init__(self, op: str, args: tuple = (), value: float | None = None):
        self.op, self.args, self.value = op, args, value

    @property
    def is_const(self) -> bool:
        return self.op == "num"

    def __repr__(self):
        return f"Node({to_text(self)})"


class Builder:
    """Creates nodes: equal nodes are shared, all-constant user operations are folded to numbers."""

    def __init__(self):
        self._table: dict = {}

    def __len__(self):
        return len(self._table)

    def num(self, v: float) -> Node:
        v = float(v)
        key = ("num", repr(v))     # repr keeps -0.0 and 0.0 apart
        node = self._table.get(key)
        if node is None:
            node = self._table[key] = Node("num", (), v)
        return node

    def var(self, name: str) -> Node:
        key = (name,)
        node = self._table.get(key)
        if node is None:
            node = self._table[key] = Node(name)
        return node

    def make(self, op: str, *args: Node, pos: int | None = None) -> Node:
        if op not in _INTERNAL and args and all(a.is_const for a in args):
            v = fold(op, [a.value for a in args])
            if not math.isfinite(v):
                _fail(f"the constant part {to_text(Node(op, args))} is not finite ({v})", pos)
            if abs(v) > MAX_CONSTANT:
                _fail(f"the constant part {to_text(Node(op, args))} is too large ({v:.3g}; limit {MAX_CONSTANT:g})",
                      pos)
            return self.num(v)
        key = (op,) + tuple(id(a) for a in args)
        node = self._table.get(key)
        if node is None:
            node = self._table[key] = Node(op, tuple(args))
        return node


def fold(op: str, values: list[float]) -> float:
    """The value of ``op`` on constants, in float64 with the same torch operations as :func:`evaluate`."""
    ts = [torch.tensor(v, dtype=torch.float64) for v in values]
    return float(_apply(op, ts, ts[0]))


# ---------------------------------------------------------------------------------------------
# Evaluation


def _t(v, ref: torch.Tensor) -> torch.Tensor:
    return v if isinstance(v, torch.Tensor) else torch.full_like(ref, float(v))


def _apply(op: str, a: list, ref: torch.Tensor):  # noqa: C901 - one table
    """One operation on evaluated arguments (tensors, or floats for constants); ``ref`` gives shape and dtype."""
    if op == "+":
        return a[0] + a[1]            # at least one is a tensor (all-constant operations are folded)
    if op == "-":
        return a[0] - a[1]
    if op == "*":
        return a[0] * a[1]
    if op == "/":
        return a[0] / a[1] if isinstance(a[0], torch.Tensor) else _t(a[0], ref) / a[1]
    if op == "^":
        return torch.pow(a[0], a[1]) if isinstance(a[0], torch.Tensor) else torch.pow(float(a[0]), a[1])
    if op == "neg":
        return -a[0]
    x = a[0] if isinstance(a[0], torch.Tensor) else _t(a[0], ref)
    simple = {"exp": torch.exp, "log": torch.log, "log1p": torch.log1p, "sqrt": torch.sqrt, "abs": torch.abs,
              "tanh": torch.tanh, "sin": torch.sin, "cos": torch.cos, "atan": torch.atan, "sigmoid": torch.sigmoid,
              "sign": torch.sign}
    if op in simple:
        return simple[op](x)
    if op == "softplus":
        return torch.where(x > 20.0, x, torch.log1p(torch.exp(x)))
    if op == "relu":
        return torch.clamp_min(x, 0.0)
    if op == "max":
        return torch.maximum(x, _t(a[1], ref))
    if op == "min":
        return torch.minimum(x, _t(a[1], ref))
    if op == "clamp":
        return torch.clamp(x, float(a[1]), float(a[2]))
    cmp = {"lt": torch.lt, "le": torch.le, "gt": torch.gt, "ge": torch.ge, "eq": torch.eq}
    if op in cmp:
        return cmp[op](x, a[1])
    if op == "and":
        return torch.logical_and(a[0], a[1])
    if op == "not":
        return torch.logical_not(a[0])
    if op == "where":
        c, u, v = a
        if not isinstance(u, torch.Tensor) and not isinstance(v, torch.Tensor):
            u = _t(u, ref)
        return torch.where(c, u, v)
    if op == "mask":
        return a[0].to(ref.dtype)
    raise AssertionError(f"unknown operation {op}")      # unreachable: the parser only builds known ops


def _topological(roots) -> list[Node]:
    """Every node under ``roots``, children before parents (iterative: no recursion limit)."""
    seen: set = set()
    order: list[Node] = []
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in seen:
            continue
        if expanded:
            seen.add(id(node))
            order.append(node)
            continue
        stack.append((node, True))
        for c in reversed(node.args):
            if id(c) not in seen:
                stack.append((c, False))
    return order


def evaluate(roots, x1: torch.Tensor, x2: torch.Tensor) -> list[torch.Tensor]:
    """The values of ``roots`` (nodes, or None for a structural zero) at x1[B], x2[B]: a list of tensors [B].

    Shared sub-trees are computed once. Only element-wise torch operations are used.
    """
    roots = list(roots)
    memo: dict = {}
    for node in _topological([r for r in roots if r is not None]):
        if node.op == "num":
            memo[id(node)] = node.value
        elif node.op == "x1":
            memo[id(node)] = x1
        elif node.op == "x2":
            memo[id(node)] = x2
        else:
            memo[id(node)] = _apply(node.op, [memo[id(c)] for c in node.args], x1)
    return [torch.zeros_like(x1) if r is None else _t(memo[id(r)], x1) for r in roots]


# ---------------------------------------------------------------------------------------------
# Text


_PREC = {"+": 1, "-": 1, "*": 2, "/": 2, "neg": 3, "^": 4}


def to_text(node: Node | None) -> str:
    """Readable text of a node (re-parsable for user operations; internal ones print as calls)."""
    if node is None:
        return "0"
    out: dict = {}
    for n in _topological([node]):
        if n.op == "num":
            v = n.value
            s = str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
            out[id(n)] = (s if v >= 0 else f"({s})", 5)
        elif n.op in ("x1", "x2"):
            out[id(n)] = (n.op, 5)
        elif n.op in _BINARY:
            p = _PREC[n.op]
            (ls, lp), (rs, rp) = out[id(n.args[0])], out[id(n.args[1])]
            if n.op == "^":
                ls = ls if lp > p else f"({ls})"
                rs = rs if rp >= p else f"({rs})"
            else:
                ls = ls if lp >= p else f"({ls})"
                rs = rs if rp > p else f"({rs})"
            out[id(n)] = (f"{ls} {n.op} {rs}" if p < 4 else f"{ls}^{rs}", p)
        elif n.op == "neg":
            s, sp = out[id(n.args[0])]
            out[id(n)] = (f"-{s}" if sp > 3 else f"-({s})", 3)
        else:
            out[id(n)] = (f"{n.op}(" + ", ".join(out[id(c)][0] for c in n.args) + ")", 5)
    return out[id(node)][0]


# ---------------------------------------------------------------------------------------------
# Tokens and the parser


@dataclass(frozen=True)
class Token:
    kind: str       # "num", "name", "op", "end"
    text: str       # normalised: "**" -> "^", "−" -> "-", "×" -> "*", ...
    pos: int
    value: float | None = None
    raw: str = ""   # as typed


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, refusing anything outside the grammar with a message and position."""
    toks: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        c = _UNICODE_OPS.get(c, c)
        if c == "*" and text[i + 1:i + 2] == "*":
            toks.append(Token("op", "^", i, raw="**"))
            i += 2
            continue
        if c in "+-*/^(),":
            toks.append(Token("op", c, i, raw=text[i]))
            i += 1
            continue
        m = _NUMBER.match(text, i)
        if m and (c.isdigit() or c == "."):
            s = m.group()
            if len(s) > MAX_NUMBER_CHARS:
                _fail(f"the number starting {s[:12]}… is too long ({len(s)} characters; limit {MAX_NUMBER_CHARS})", i)
            end = m.end()
            if end < n and (text[end] == "." or text[end] in "eE" and text[end + 1:end + 2].isdigit()):
                j = end
                while j < n and j - i < 20 and (text[j].isdigit() or text[j] in ".eE"):
                    j += 1
                _fail(f"malformed number {text[i:j]!r}", i)
            v = float(s)
            if not math.isfinite(v) or abs(v) > MAX_LITERAL:
                _fail(f"the number {s} is too large (limit {MAX_LITERAL:g})", i)
            toks.append(Token("num", s, i, v, raw=s))
            i = end
            continue
        if c.isalpha() or c == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            name = text[i:j]
            if "__" in name:
                _fail(f"names with '__' are not allowed ({name!r})", i)
            if len(name) > 40:
                _fail(f"the name {name[:12]}… is too long", i)
            toks.append(Token("name", name, i, raw=name))
            i = j
            continue
        if c == ".":
            prev = toks[-1] if toks else None
            if prev is not None and (prev.kind in ("name", "num") or prev.text == ")"):
                _fail("'.' (attribute access) is not allowed", i)
            _fail("unexpected '.'", i)
        if c in "[]{}":
            _fail(f"brackets {c!r} are not allowed (use parentheses)", i)
        if c in "'\"`":
            _fail("strings (quotes) are not allowed", i)
        if c == "=":
            _fail("'=' is not allowed: write an expression, not an assignment or a comparison", i)
        if c in "<>!&|~":
            _fail(f"{c!r} is not allowed: comparisons and logic operators are not part of the grammar", i)
        if c == ";":
            _fail("';' is not allowed: write one expression per task", i)
        if c == "@" or c == "%":
            _fail(f"the operator {c!r} is not allowed (use + - * / ^)", i)
        if c.isdigit():
            _fail(f"the digit {c!r} is not a plain 0-9 digit", i)
        _fail(f"unexpected character {c!r}", i)
    toks.append(Token("end", "", n))
    return toks


class _Parser:
    def __init__(self, text: str, builder: Builder):
        self.text = text
        self.b = builder
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0
        self.nodes = 0

    # -- helpers -----------------------------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def take(self) -> Token:
        t = self.toks[self.i]
        self.i += 1
        return t

    def make(self, op, *args, pos=None) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            _fail(f"the expression is too large (more than {MAX_NODES} operations)", pos)
        return self.b.make(op, *args, pos=pos)

    def enter(self, pos):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            _fail(f"the expression nests too deeply (more than {MAX_DEPTH} levels)", pos)

    def leave(self):
        self.depth -= 1

    def unexpected(self, expecting: str):
        t = self.tok
        if t.kind == "end":
            _fail(f"the expression ends early: expected {expecting}", t.pos)
        if t.text == ",":
            _fail("',' is only allowed between the arguments of a function", t.pos)
        if t.text == ")":
            _fail(f"unexpected ')': expected {expecting}", t.pos)
        _fail(f"unexpected {t.raw!r}: expected {expecting}", t.pos)

    def missing(self, t: Token, alt: str = "") -> str:
        prev = self.toks[self.i - 1]
        msg = f"missing operator {alt + ' ' if alt else ''}between {prev.raw!r} and {t.raw!r}"
        if prev.kind in ("num", "name") and t.kind in ("num", "name"):
            msg += f" (write {prev.raw}*{t.raw}?)"
        return msg

    # -- grammar -----------------------------------------------------------------------------------
    def parse(self) -> Node:
        if self.tok.kind == "end":
            _fail("the expression is empty")
        node = self.expr()
        t = self.tok
        if t.kind != "end":
            if t.text == ")":
                _fail("unmatched ')'", t.pos)
            if t.text == ",":
                _fail("',' is only allowed between the arguments of a function", t.pos)
            _fail(self.missing(t), t.pos)
        return node

    def expr(self) -> Node:
        node = self.term()
        while self.tok.text in ("+", "-") and self.tok.kind == "op":
            op = self.take()
            node = self.make(op.text, node, self.term(), pos=op.pos)
        return node

    def term(self) -> Node:
        node = self.unary()
        while self.tok.text in ("*", "/") and self.tok.kind == "op":
            op = self.take()
            node = self.make(op.text, node, self.unary(), pos=op.pos)
        return node

    def unary(self) -> Node:
        t = self.tok
        if t.kind == "op" and t.text in ("+", "-"):
            self.take()
            self.enter(t.pos)
            inner = self.unary()
            self.leave()
            return inner if t.text == "+" else self.make("neg", inner, pos=t.pos)
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        t = self.tok
        if not (t.kind == "op" and t.text == "^"):
            return base
        self.take()
        self.enter(t.pos)
        exponent = self.unary()
        self.leave()
        if exponent.is_const:
            p = exponent.value
            if abs(p) > MAX_EXPONENT:
                _fail(f"the exponent {p:g} is too large (|exponent| <= {MAX_EXPONENT:g})", t.pos)
            return self.make("^", base, exponent, pos=t.pos)
        if base.is_const and base.value <= 0:
            _fail(f"a constant base ({base.value:g}) under a varying exponent must be positive", t.pos)
        guarded = self.make("clamp", exponent, self.b.num(-MAX_EXPONENT), self.b.num(MAX_EXPONENT), pos=t.pos)
        return self.make("^", base, guarded, pos=t.pos)

    def atom(self) -> Node:
        t = self.tok
        if t.kind == "num":
            self.take()
            self.nodes += 1
            return self.b.num(t.value)
        if t.kind == "op" and t.text == "(":
            self.take()
            self.enter(t.pos)
            if self.tok.text == ")" and self.tok.kind == "op":
                _fail("empty parentheses '()'", t.pos)
            node = self.expr()
            self.leave()
            if not (self.tok.kind == "op" and self.tok.text == ")"):
                if self.tok.kind == "end":
                    _fail("unmatched '('", t.pos)
                if self.tok.text == ",":
                    _fail("',' is only allowed between the arguments of a function", self.tok.pos)
                _fail(self.missing(self.tok), self.tok.pos)
            self.take()
            return node
        if t.kind == "name":
            return self.name()
        self.unexpected("a number, a name or '('")

    def name(self) -> Node:
        t = self.take()
        name = t.text
        call = self.tok.kind == "op" and self.tok.text == "("
        if name in FUNCTIONS:
            if not call:
                _fail(f"{name} is a function: write {name}(...)", t.pos)
            return self.call(FUNCTIONS[name], t)
        if name in VARIABLES or name in CONSTANTS:
            if call:
                _fail(f"{name} is not a function (write {name}*(...) to multiply)", self.tok.pos)
            self.nodes += 1
            return self.b.var(VARIABLES[name]) if name in VARIABLES else self.b.num(CONSTANTS[name])
        known = list(VARIABLES) + list(CONSTANTS) + list(FUNCTIONS)
        close = [k for k in known if k.lower() == name.lower()] or difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        what = "function" if call else "name"
        _fail(f"unknown {what} {name!r}", t.pos, f"{hint} (variables: x1, x2 or θ1, θ2; constants: pi, e; "
              f"functions: {', '.join(FUNCTIONS)})")

    def call(self, fn: Function, t: Token) -> Node:
        open_ = self.take()
        self.enter(open_.pos)
        args: list[Node] = []
        if self.tok.kind == "op" and self.tok.text == ")":
            _fail(f"{fn.name}() needs {fn.min_args} argument{'s' if fn.min_args > 1 else ''}", open_.pos)
        while True:
            args.append(self.expr())
            if self.tok.kind == "op" and self.tok.text == ",":
                self.take()
                continue
            break
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            if self.tok.kind == "end":
                _fail(f"unmatched '(' of {fn.name}(", open_.pos)
            _fail(self.missing(self.tok, "or ','"), self.tok.pos)
        self.take()
        self.leave()
        if not fn.min_args <= len(args) <= fn.max_args:
            _fail(f"{fn.name} takes {_arity(fn)}, got {len(args)}", t.pos)
        if fn.name in ("min", "max"):
            node = args[0]
            for a in args[1:]:
                node = self.make(fn.name, node, a, pos=t.pos)
            return node
        if fn.name == "clamp":
            lo, hi = args[1], args[2]
            if not (lo.is_const and hi.is_const):
                _fail("clamp(a, lo, hi) needs constant bounds lo and hi (use min and max for varying bounds)", t.pos)
            if lo.value > hi.value:
                _fail(f"clamp: the lower bound {lo.value:g} is above the upper bound {hi.value:g}", t.pos)
        return self.make(fn.name, *args, pos=t.pos)


def _arity(fn: Function) -> str:
    if fn.min_args == fn.max_args:
        return f"{fn.min_args} argument{'s' if fn.min_args > 1 else ''}"
    return f"{fn.min_args} to {fn.max_args} arguments"


# ---------------------------------------------------------------------------------------------
# Derivatives


def _d_add(b: Builder, u, v):
    if u is None:
        return v
    if v is None:
        return u
    return b.make("+", u, v)


def _d_scale(b: Builder, factor: Node, d):
    """factor * d, dropping structural zeros and unit factors."""
    if d is None:
        return None
    if factor.is_const and factor.value == 1.0:
        return d
    if d.is_const and d.value == 1.0:
        return factor
    if d.is_const and d.value == -1.0:
        return b.make("neg", factor)
    return b.make("*", factor, d)


def _mask(b: Builder, cond: Node) -> Node:
    return b.make("mask", cond)


def _pick_weight(b: Builder, a: Node, c: Node, larger: bool) -> Node:
    """torch.maximum's (larger) / torch.minimum's gradient weight for ``a`` against ``c``:
    0 where ``a`` loses, 1/2 on a tie, 1 where it wins or either is NaN."""
    loses = b.make("lt" if larger else "gt", a, c)
    tie = b.make("eq", a, c)
    return b.make("where", loses, b.num(0.0), b.make("where", tie, b.num(0.5), b.num(1.0)))


def _local(b: Builder, n: Node, d: list):  # noqa: C901 - one rule per operation
    """d(n) from the derivatives ``d`` of its arguments (None = structurally zero)."""
    op, a = n.op, n.args
    if op == "+":
        return _d_add(b, d[0], d[1])
    if op == "-":
        if d[1] is None:
            return d[0]
        return b.make("neg", d[1]) if d[0] is None else b.make("-", d[0], d[1])
    if op == "neg":
        return None if d[0] is None else b.make("neg", d[0])
    if op == "*":
        return _d_add(b, _d_scale(b, a[1], d[0]), _d_scale(b, a[0], d[1]))
    if op == "/":
        # torch: grad / other, and -grad * self / (other * other)
        first = None if d[0] is None else b.make("/", d[0], a[1])
        second = None if d[1] is None else \
            b.make("neg", _d_scale(b, b.make("/", a[0], b.make("*", a[1], a[1])), d[1]))
        return _d_add(b, first, second)
    if op == "^":
        base, ex = a
        if ex.is_const:
            p = ex.value
            if p == 0.0 or d[0] is None:
                return None
            coef = b.num(1.0) if p == 1.0 else b.make("*", ex, base if p == 2.0 else b.make("^", base, b.num(p - 1.0)))
            return _d_scale(b, coef, d[0])
        zero = b.num(0.0)
        wa = b.make("where", b.make("eq", ex, zero), zero,
                    b.make("*", ex, b.make("^", base, b.make("-", ex, b.num(1.0)))))
        if base.is_const:      # positive (the parser refuses others): log(base) is a number
            wb = b.make("*", n, b.make("log", base))
        else:
            wb = b.make("where", b.make("and", b.make("eq", base, zero), b.make("ge", ex, zero)), zero,
                        b.make("*", n, b.make("log", base)))
        return _d_add(b, _d_scale(b, wa, d[0]), _d_scale(b, wb, d[1]))
    if op in ("max", "min"):
        big = op == "max"
        return _d_add(b, _d_scale(b, _pick_weight(b, a[0], a[1], big), d[0]),
                      _d_scale(b, _pick_weight(b, a[1], a[0], big), d[1]))
    if d[0] is None:
        return None
    x = a[0]
    if op == "exp":
        f = n
    elif op == "log":
        return b.make("/", d[0], x)
    elif op == "log1p":
        return b.make("/", d[0], b.make("+", x, b.num(1.0)))
    elif op == "sqrt":
        return b.make("/", d[0], b.make("*", b.num(2.0), n))
    elif op == "abs":
        f = b.make("sign", x)
    elif op == "tanh":
        f = b.make("-", b.num(1.0), b.make("*", n, n))
    elif op == "sin":
        f = b.make("cos", x)
    elif op == "cos":
        f = b.make("neg", b.make("sin", x))
    elif op == "atan":
        return b.make("/", d[0], b.make("+", b.make("*", x, x), b.num(1.0)))
    elif op == "sigmoid":
        f = b.make("*", b.make("-", b.num(1.0), n), n)
    elif op == "softplus":
        z = b.make("exp", x)
        f = b.make("where", b.make("gt", x, b.num(20.0)), b.num(1.0), b.make("/", z, b.make("+", z, b.num(1.0))))
    elif op == "relu":
        f = _mask(b, b.make("not", b.make("le", x, b.num(0.0))))
    elif op == "clamp":
        f = _mask(b, b.make("and", b.make("ge", x, a[1]), b.make("le", x, a[2])))
    else:
        raise AssertionError(f"no derivative for {op}")
    return _d_scale(b, f, d[0])


def derivative(node: Node, var: str, builder: Builder) -> Node | None:
    """d(node)/d(var) as a node (None when it is structurally zero); ``var`` is "x1" or "x2"."""
    if var not in ("x1", "x2"):
        raise ValueError(f"derivative: unknown variable {var!r}")
    d: dict = {}
    for n in _topological([node]):
        if n.op == "num":
            d[id(n)] = None
        elif n.op in ("x1", "x2"):
            d[id(n)] = builder.num(1.0) if n.op == var else None
        else:
            d[id(n)] = _local(builder, n, [d[id(c)] for c in n.args])
    return d[id(node)]


# ---------------------------------------------------------------------------------------------
# Public entry points


@dataclass(frozen=True, eq=False)
class Expression:
    """A parsed expression: its text, tree, the variables it uses, and its two partial derivatives."""

    text: str
    root: Node
    d_x1: Node | None
    d_x2: Node | None
    variables: tuple

    def values(self, x1: torch.Tensor, x2: torch.Tensor) -> torch.Tensor:
        return evaluate([self.root], x1, x2)[0]

    def values_and_grads(self, x1, x2):
        """(f[B], df/dx1[B], df/dx2[B])."""
        f, g1, g2 = evaluate([self.root, self.d_x1, self.d_x2], x1, x2)
        return f, g1, g2


def parse(text, builder: Builder | None = None) -> Expression:
    """Parse ``text`` (raises ValueError naming the problem and its position) and differentiate it."""
    if not isinstance(text, str):
        raise ValueError(f"expected an expression as text, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        raise ValueError(f"the expression is {len(text)} characters long (limit {MAX_CHARS})")
    b = builder or Builder()
    root = _Parser(text, b).parse()
    used = tuple(v for v in ("x1", "x2") if any(n.op == v for n in _topological([root])))
    return Expression(text, root, derivative(root, "x1", b), derivative(root, "x2", b), used)


def check(text) -> str | None:
    """None if ``text`` parses, else the error message (for live validation in a form)."""
    try:
        parse(text)
    except ValueError as e:
        return str(e)
    return None


def grammar_help() -> str:
    """A short, user-facing description of what may be typed (Markdown)."""
    fns = ", ".join(f"`{f.name}`" for f in FUNCTIONS.values())
    return (f"Variables `x1`, `x2` (or `θ1`, `θ2`); constants `pi`, `e`; numbers like `3`, `0.5`, `1e-3`; "
            f"operators `+ - * /` and `^` or `**` for powers; parentheses; functions {fns}. "
            f"`clamp(a, lo, hi)` needs constant bounds; `min`/`max` take 2 to {MAX_ARGS} arguments. "
            f"Limits: {MAX_CHARS} characters, {MAX_DEPTH} levels of nesting, {MAX_NODES} operations, numbers up to "
            f"{MAX_LITERAL:g}, constant exponents up to ±{MAX_EXPONENT:g} (a varying exponent is clamped to that range).")
