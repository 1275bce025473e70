"""Typed mechanism expressions (the compiler's output) and their evaluation.

Names are resolved and every node has a type, so evaluation and the z3 encoding never
have to guess. Semantics follow Python: `//` floors, `%` takes the divisor's sign.
Division by zero and a key missing from a table without default are *undefined*: plain
evaluation raises `MechanismUndefined`, and the solver's totality check finds such inputs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Union, cast

from ..positions import NOWHERE, Pos
from .domains import Domain, Type, Value


class MechanismUndefined(ArithmeticError):
    """A mechanism has no value for this input (division by zero, missing table key)."""


@dataclass(frozen=True)
class Const:
    value: Value
    type: Type
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Var:
    name: str
    type: Type
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Op:
    """An operator application. `op` is one of: neg not + - * // % and or == != < <= > >= ite min max abs."""

    op: str
    args: tuple["TExpr", ...]
    type: Type
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Table:
    """A finite lookup table: keys are tuples of values, one per key domain."""

    name: str
    key_domains: tuple[Domain, ...]
    value_domain: Domain
    entries: Mapping[tuple[Value, ...], Value]
    default: Value | None = None
    pos: Pos = field(default=NOWHERE, compare=False)

    def lookup(self, key: tuple[Value, ...]) -> Value:
        if key in self.entries:
            return self.entries[key]
        if self.default is not None:
            return self.default
        shown = key[0] if len(key) == 1 else key
        raise MechanismUndefined(f"table {self.name} has no entry for {shown!r}")

    def __hash__(self) -> int:
        return hash(self.name)


@dataclass(frozen=True)
class Lookup:
    table: Table
    args: tuple["TExpr", ...]
    type: Type
    pos: Pos = field(default=NOWHERE, compare=False)


TExpr = Union[Const, Var, Op, Lookup]


def free_vars(e: TExpr) -> set[str]:
    """Names of the variables an expression reads."""
    if isinstance(e, Var):
        return {e.name}
    if isinstance(e, (Op, Lookup)):
        out: set[str] = set()
        for a in e.args:
            out |= free_vars(a)
        return out
    return set()


def _floordiv(a: int, b: int) -> int:
    if b == 0:
        raise MechanismUndefined("division by zero")
    return a // b


def _mod(a: int, b: int) -> int:
    if b == 0:
        raise MechanismUndefined("modulo by zero")
    return a % b


# The compiler's type check makes arithmetic and ordering operate on ints only; == and != on any two
# values of one type. compile_expr narrows the operand closures once, at compile time.
_ARITHMETIC: dict[str, Callable[[int, int], int]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "//": _floordiv, "%": _mod,
}
_ORDER: dict[str, Callable[[int, int], bool]] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}
_EQUALITY: dict[str, Callable[[Value, Value], bool]] = {"==": lambda a, b: a == b, "!=": lambda a, b: a != b}

Env = Mapping[str, Value]


def compile_expr(e: TExpr) -> Callable[[Env], Value]:
    """Turn an expression into a Python closure over an environment (fast repeated evaluation)."""
    if isinstance(e, Const):
        v = e.value
        return lambda env: v
    if isinstance(e, Var):
        name = e.name
        return lambda env: env[name]
    if isinstance(e, Lookup):
        table, fns = e.table, [compile_expr(a) for a in e.args]
        return lambda env: table.lookup(tuple(f(env) for f in fns))
    assert isinstance(e, Op)
    fns = [compile_expr(a) for a in e.args]
    op = e.op
    # int-typed operands (see _ARITHMETIC): narrowed once here, not on every evaluation
    ints = cast("list[Callable[[Env], int]]", fns)
    if op == "neg":
        (i,) = ints
        return lambda env: -i(env)
    if op == "not":
        (f,) = fns
        return lambda env: not f(env)
    if op == "abs":
        (i,) = ints
        return lambda env: abs(i(env))
    if op == "and":
        f, g = fns
        return lambda env: bool(f(env)) and bool(g(env))
    if op == "or":
        f, g = fns
        return lambda env: bool(f(env)) or bool(g(env))
    if op == "ite":
        c, t, o = fns
        return lambda env: t(env) if c(env) else o(env)
    if op == "min":
        return lambda env: min(i(env) for i in ints)
    if op == "max":
        return lambda env: max(i(env) for i in ints)
    if op in _EQUALITY:
        eq = _EQUALITY[op]
        f, g = fns
        return lambda env: eq(f(env), g(env))
    arith = _ARITHMETIC.get(op) or _ORDER[op]
    i, j = ints
    return lambda env: arith(i(env), j(env))

_SHOW_PREC = {"or": 1, "and": 2, "not": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
              "+": 5, "-": 5, "*": 6, "//": 6, "%": 6, "neg": 7}


def show(e: TExpr, parent: int = 0) -> str:
    """Source-like text of an expression, for reports and messages."""
    if isinstance(e, Const):
        return str(e.value).lower() if isinstance(e.value, bool) else str(e.value)
    if isinstance(e, Var):
        return e.name
    if isinstance(e, Lookup):
        return f"{e.table.name}(" + ", ".join(show(a) for a in e.args) + ")"
    if e.op in ("min", "max", "abs"):
        return f"{e.op}(" + ", ".join(show(a) for a in e.args) + ")"
    if e.op == "ite":
        text = f"if {show(e.args[0])} then {show(e.args[1])} else {show(e.args[2])}"
        return f"({text})" if parent else text
    prec = _SHOW_PREC[e.op]
    if e.op == "neg":
        text = "-" + show(e.args[0], prec)
    elif e.op == "not":
        text = "not " + show(e.args[0], prec)
    else:
        text = f"{show(e.args[0], prec)} {e.op} {show(e.args[1], prec + 1)}"
    return f"({text})" if prec < parent or (prec == 4 and parent == 4) else text
