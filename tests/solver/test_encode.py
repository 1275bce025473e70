"""The z3 encoding matches Python's semantics: floor division, modulo, short-circuits, tables, enums."""
from __future__ import annotations

import itertools

import z3

from abstract.causal.domains import BOOL, INT, Domain
from abstract.causal.expr import Const, Lookup, MechanismUndefined, Op, Table, Var
from abstract.language import compile_text
from abstract.solver.encode import ModelEncoding, const, decode, encode_expr, floordiv, in_domain, pymod


def _num(term: z3.ExprRef) -> int:
    return z3.simplify(term).as_long()


def test_floordiv_and_mod_match_python_on_constants():
    for a, b in itertools.product(range(-9, 10), range(-4, 5)):
        if b:
            assert _num(floordiv(z3.IntVal(a), z3.IntVal(b))) == a // b, (a, b)
            assert _num(pymod(z3.IntVal(a), z3.IntVal(b))) == a % b, (a, b)


def test_floordiv_and_mod_match_python_on_symbols():
    """Symbolic divisor: the encoding must pick the right branch at solve time."""
    a, b = z3.Ints("a b")
    for x, y in [(7, -2), (-7, 2), (-7, -2), (6, -3), (-1, 5), (0, -3)]:
        s = z3.Solver()
        s.add(a == x, b == y)
        assert s.check() == z3.sat
        m = s.model()
        assert m.eval(floordiv(a, b)).as_long() == x // y
        assert m.eval(pymod(a, b)).as_long() == x % y
    s = z3.Solver()  # no counterexample to a = b * (a // b) + a % b anywhere
    s.add(b != 0, a != b * floordiv(a, b) + pymod(a, b))
    assert s.check() == z3.unsat


def test_enum_constants_and_decoding():
    color = Domain.enum(("red", "green", "blue"), "Color")
    c = z3.Int("c")
    s = z3.Solver()
    s.add(in_domain(c, color), c == const("blue", color.type))
    assert s.check() == z3.sat
    assert decode(s.model(), c, color.type) == "blue"
    assert decode(s.model(), z3.BoolVal(True), BOOL) is True


def test_short_circuit_and_ite_definedness():
    """`y != 0 and x // y > 1` is defined everywhere, as in Python; so is a guarded if-then-else."""
    x, y = Var("x", INT), Var("y", INT)
    div = Op("//", (x, y), INT)
    guarded = Op("and", (Op("!=", (y, Const(0, INT)), BOOL), Op(">", (div, Const(1, INT)), BOOL)), BOOL)
    ite = Op("ite", (Op("==", (y, Const(0, INT)), BOOL), Const(0, INT), div), INT)
    env = {"x": z3.Int("x"), "y": z3.Int("y")}
    for e in (guarded, ite):
        s = z3.Solver()
        s.add(z3.Not(encode_expr(e, env).defined))
        assert s.check() == z3.unsat
    s = z3.Solver()
    s.add(z3.Not(encode_expr(div, env).defined))
    assert s.check() == z3.sat and s.model().eval(env["y"]).as_long() == 0


def test_table_with_and_without_default():
    dom = Domain.int_range(0, 3)
    entries = {(0,): 5, (2,): 7}
    x = Var("x", INT)
    env = {"x": z3.Int("x")}
    partial = encode_expr(Lookup(Table("T", (dom,), Domain.int_range(0, 9), entries), (x,), INT), env)
    total = encode_expr(Lookup(Table("U", (dom,), Domain.int_range(0, 9), entries, default=1), (x,), INT), env)
    for k in range(4):
        sub = (env["x"], z3.IntVal(k))
        defined = z3.is_true(z3.simplify(z3.substitute(partial.defined, sub)))
        assert defined == ((k,) in entries)
        if defined:
            assert _num(z3.substitute(partial.value, sub)) == entries[(k,)]
        assert _num(z3.substitute(total.value, sub)) == entries.get((k,), 1)
        assert z3.is_true(z3.simplify(z3.substitute(total.defined, sub)))


SPEC = """
model M {
    domain Color = {red, green, blue}
    input  x, y : -3..3
    input  c : Color
    table  Warm : Color -> bool { red: true, green: false }
    q = x // y
    r = x % y
    w = Warm(c)
    k = if w then min(x, y) else max(abs(x), -y)
    output o = q + r + k
    output back : Color = if x < 0 then c else green
}
"""


def test_model_encoding_agrees_with_evaluation_on_every_input():
    model = compile_text(SPEC).models["M"]
    enc = ModelEncoding(model)
    for inputs in model.enumerate_inputs():
        got = enc.evaluate(inputs)
        try:
            want = model.evaluate(inputs)
        except MechanismUndefined:
            assert None in got.values()
            continue
        assert got == want, inputs


def test_intervened_encoding_holds_the_variable():
    model = compile_text(SPEC).models["M"]
    enc = ModelEncoding(model, do={"k": z3.IntVal(2)})
    inputs = {"x": 3, "y": 2, "c": "red"}
    assert enc.evaluate(inputs) == model.evaluate(inputs, do={"k": 2})
