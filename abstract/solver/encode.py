"""z3 encoding of domains and typed mechanism expressions.

Every expression becomes a pair (value term, defined condition): the checks need to know
both what a mechanism computes and where it computes anything at all (division by zero and
missing table keys are undefined, as in plain evaluation). Ints are z3 Ints, bools z3 Bools,
enum values Int indices into the enum's member tuple. Variables are substituted along the
DAG, so a variable's value is a term over the input symbols (z3 shares common subterms);
an intervention `do(X=t)` simply replaces X's term by `t`.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import z3
from z3.z3 import _to_expr_ref  # the low-level way back from a Z3_substitute result

from ..causal.domains import Domain, Type, Value
from ..causal.expr import Const, Lookup, Op, TExpr, Var
from ..causal.model import CausalModel


class Encoded(NamedTuple):
    """An expression's z3 value and the condition under which it is defined."""

    value: z3.ExprRef
    defined: z3.BoolRef


TRUE = z3.BoolVal(True)


def fresh(name: str, type_: Type) -> z3.ExprRef:
    """A z3 constant that holds one value of `type_`."""
    return z3.Bool(name) if type_.kind == "bool" else z3.Int(name)


def const(value: Value, type_: Type) -> z3.ExprRef:
    """The z3 literal for a user value (enum members become their index)."""
    if type_.kind == "bool":
        return z3.BoolVal(bool(value))
    if type_.kind == "enum":
        return z3.IntVal(type_.members.index(value))
    return z3.IntVal(int(value))


def in_domain(term: z3.ExprRef, domain: Domain) -> z3.BoolRef:
    """The constraint that `term` lies in `domain`."""
    if domain.kind == "bool":
        return TRUE
    if domain.kind == "enum":
        return z3.And(term >= 0, term < len(domain.members))
    return z3.And(term >= domain.low, term <= domain.high)


def decode(model: z3.ModelRef, term: z3.ExprRef, type_: Type) -> Value:
    """Read `term`'s value in a z3 model back as the user's value (int, bool, member name)."""
    v = model.eval(term, model_completion=True)
    if type_.kind == "bool":
        return bool(z3.is_true(v))
    n = v.as_long()
    if type_.kind == "enum":
        return type_.members[n] if 0 <= n < len(type_.members) else n
    return n


def all_of(*conds: z3.BoolRef) -> z3.BoolRef:
    """Conjunction that drops literal `True`s (keeps terms small for the common total case)."""
    kept, seen = [], set()
    for c in conds:
        if not z3.is_true(c) and c.get_id() not in seen:
            seen.add(c.get_id())
            kept.append(c)
    if not kept:
        return TRUE
    return kept[0] if len(kept) == 1 else z3.And(*kept)


def _int_const(t: z3.ExprRef) -> int | None:
    return t.as_long() if z3.is_int_value(t) else None


def floordiv(a: z3.ArithRef, b: z3.ArithRef) -> z3.ArithRef:
    """Python's `a // b` (floor). z3's `/` is Euclidean: it differs when b < 0 and b does not divide a."""
    q = a / b
    c = _int_const(b)
    if c is not None and c > 0:
        return q
    fix = z3.If(a % b == 0, q, q - 1)
    return fix if c is not None else z3.If(b > 0, q, fix)


def pymod(a: z3.ArithRef, b: z3.ArithRef) -> z3.ArithRef:
    """Python's `a % b` (sign of the divisor). z3's `%` is always non-negative."""
    r = a % b
    c = _int_const(b)
    if c is not None and c > 0:
        return r
    fix = z3.If(r == 0, r, r + b)
    return fix if c is not None else z3.If(b > 0, r, fix)


def _nonzero(b: z3.ArithRef) -> z3.BoolRef:
    c = _int_const(b)
    return z3.BoolVal(c != 0) if c is not None else b != 0


def encode_expr(e: TExpr, env: Mapping[str, z3.ExprRef]) -> Encoded:
    """Encode `e` with each variable name bound to a z3 term in `env`."""
    if isinstance(e, Const):
        return Encoded(const(e.value, e.type), TRUE)
    if isinstance(e, Var):
        return Encoded(env[e.name], TRUE)
    if isinstance(e, Lookup):
        return _lookup(e, env)
    assert isinstance(e, Op), e
    args = [encode_expr(a, env) for a in e.args]
    vals = [a.value for a in args]
    defs = [a.defined for a in args]
    op = e.op
    if op == "and":  # short-circuits like Python: the right side matters only if the left holds
        right = TRUE if z3.is_true(defs[1]) else z3.Or(z3.Not(vals[0]), defs[1])
        return Encoded(z3.And(*vals), all_of(defs[0], right))
    if op == "or":
        right = TRUE if z3.is_true(defs[1]) else z3.Or(vals[0], defs[1])
        return Encoded(z3.Or(*vals), all_of(defs[0], right))
    if op == "ite":  # only the taken branch needs to be defined
        c, t, o = vals
        branch = TRUE if z3.is_true(defs[1]) and z3.is_true(defs[2]) else z3.If(c, defs[1], defs[2])
        return Encoded(z3.If(c, t, o), all_of(defs[0], branch))
    d = all_of(*defs)
    if op == "neg":
        return Encoded(-vals[0], d)
    if op == "not":
        return Encoded(z3.Not(vals[0]), d)
    if op == "abs":
        a = vals[0]
        return Encoded(z3.If(a >= 0, a, -a), d)
    if op in ("min", "max"):
        acc = vals[0]
        for v in vals[1:]:
            acc = z3.If(v < acc, v, acc) if op == "min" else z3.If(v > acc, v, acc)
        return Encoded(acc, d)
    a, b = vals
    if op == "//":
        return Encoded(floordiv(a, b), all_of(d, _nonzero(b)))
    if op == "%":
        return Encoded(pymod(a, b), all_of(d, _nonzero(b)))
    table = {"+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "==": lambda: a == b,
             "!=": lambda: a != b, "<": lambda: a < b, "<=": lambda: a <= b, ">": lambda: a > b,
             ">=": lambda: a >= b}
    if op not in table:
        raise ValueError(f"unknown operator {op!r}")
    return Encoded(table[op](), d)


def _lookup(e: Lookup, env: Mapping[str, z3.ExprRef]) -> Encoded:
    """A table as an If chain over its entries; without default, a missing key is undefined."""
    args = [encode_expr(a, env) for a in e.args]
    t = e.table
    vtype = t.value_domain.type
    hits: list[tuple[z3.BoolRef, z3.ExprRef]] = []
    for key, value in t.entries.items():
        cond = all_of(*[a.value == const(k, dom.type) for a, k, dom in zip(args, key, t.key_domains)])
        hits.append((cond, const(value, vtype)))
    if t.default is not None:
        acc, present = const(t.default, vtype), TRUE
    else:  # the fallback value is arbitrary: it only matters where the lookup is undefined
        acc = hits[-1][1] if hits else const(t.value_domain.value_at(0), vtype)
        present = z3.Or(*[c for c, _ in hits]) if hits else z3.BoolVal(False)
    for cond, value in reversed(hits):
        acc = z3.If(cond, value, acc)
    return Encoded(acc, all_of(*[a.defined for a in args], present))


class ModelEncoding:
    """All variables of a model as terms over input symbols, optionally under interventions.

    `inputs` lets two encodings share input symbols (equivalence, effectiveness);
    `do` maps variable names to the z3 terms they are held at."""

    def __init__(self, model: CausalModel, inputs: Mapping[str, z3.ExprRef] | None = None,
                 do: Mapping[str, z3.ExprRef] | None = None, prefix: str = "") -> None:
        self.model = model
        do = dict(do or {})
        if inputs is None:
            inputs = {n: fresh(prefix + n, model.domain(n).type) for n in model.inputs}
        self.inputs: dict[str, z3.ExprRef] = dict(inputs)
        self.values: dict[str, z3.ExprRef] = {}
        self.own_defined: dict[str, z3.BoolRef] = {}  # the mechanism itself, given its parents
        self.defined: dict[str, z3.BoolRef] = {}  # it and everything upstream of it
        for name, var in model.variables.items():  # topological order
            if name in do or var.mechanism is None:
                self.values[name] = do[name] if name in do else self.inputs[name]
                self.own_defined[name] = self.defined[name] = TRUE
                continue
            enc = encode_expr(var.mechanism, self.values)
            self.values[name] = enc.value
            self.own_defined[name] = enc.defined
            parents = model.graph.predecessors(name)
            self.defined[name] = all_of(enc.defined, *[self.defined[p] for p in parents])

    def input_constraints(self) -> z3.BoolRef:
        """Every input within its domain."""
        return all_of(*[in_domain(self.inputs[n], self.model.domain(n)) for n in self.model.inputs])

    def all_defined(self) -> z3.BoolRef:
        """Plain evaluation of the whole model succeeds."""
        return all_of(*self.defined.values())

    def decode_inputs(self, m: z3.ModelRef) -> dict[str, Value]:
        return {n: decode(m, self.inputs[n], self.model.domain(n).type) for n in self.model.inputs}

    def decode_values(self, m: z3.ModelRef, names) -> dict[str, Value]:
        return {n: decode(m, self.values[n], self.model.domain(n).type) for n in names}

    def evaluate(self, inputs: Mapping[str, Value]) -> dict[str, Value | None]:
        """Every variable's value with the inputs fixed, by z3 simplification; None = undefined.

        Lets tests compare the encoding with plain evaluation input by input."""
        names = self.model.inputs
        frm, to = (z3.Ast * len(names))(), (z3.Ast * len(names))()
        keep = [const(inputs[n], self.model.domain(n).type) for n in names]  # alive while `to` points at them
        for i, n in enumerate(names):  # z3.substitute re-checks sorts per call: too slow for enumeration
            frm[i], to[i] = self.inputs[n].as_ast(), keep[i].as_ast()
        ctx = z3.main_ctx()

        def fix(term: z3.ExprRef) -> z3.ExprRef:
            sub = z3.Z3_substitute(ctx.ref(), term.as_ast(), len(names), frm, to)
            return z3.simplify(_to_expr_ref(sub, ctx))

        out: dict[str, Value | None] = {}
        for name in self.model.variables:
            if not z3.is_true(fix(self.defined[name])):
                out[name] = None
                continue
            v = fix(self.values[name])
            t = self.model.domain(name).type
            out[name] = bool(z3.is_true(v)) if t.kind == "bool" else (
                t.members[v.as_long()] if t.kind == "enum" else v.as_long())
        return out
