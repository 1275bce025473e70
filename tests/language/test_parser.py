"""Parsing: the shipped specs, operator precedence, and a printer round trip
(typed expression -> `show` -> parse -> the same typed expression)."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from abstract.causal.domains import Domain
from abstract.causal.expr import Lookup, MechanismUndefined, compile_expr, show
from abstract.language import SpecError, compile_text, load_spec, parse_file, parse_text
from abstract.language import ast
from abstract.language.ast import Binary, BoolLit, Call, IfThenElse, Name, Num, Unary

ROOT = Path(__file__).resolve().parents[2]
SPECS = sorted((ROOT / "specs").glob("*.causal"))


# ----------------------------------------------------------------- shipped specs
@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_shipped_spec_parses_with_positions(path):
    tree = parse_file(path)
    assert tree.models, "every example has a model"
    lines = path.read_text().splitlines()
    for m in tree.models:
        assert m.pos.file == str(path)
        assert f"model {m.name}" in lines[m.pos.line - 1]
        for v in m.variables:
            assert lines[v.pos.line - 1][v.pos.column - 1:].startswith(v.name)
    for h in tree.hypotheses:
        assert lines[h.pos.line - 1].lstrip().startswith(f"hypothesis {h.name}")


def _domain_text(d: Domain) -> str:
    return str(d)  # 0..3 / bool / {a, b}: valid source for an inline domain


def _literal(v) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _tables(e, out: dict) -> dict:
    if isinstance(e, Lookup):
        out[e.table.name] = e.table
    for a in getattr(e, "args", ()):
        _tables(a, out)
    return out


def print_model(model) -> str:
    """Source text for a compiled model, written only from the IR (inline domains, shown mechanisms)."""
    lines = [f"model {model.name} {{"]
    tables: dict = {}
    for v in model.variables.values():
        if v.mechanism is not None:
            _tables(v.mechanism, tables)
    for p in model.properties:
        _tables(p.expr, tables)
    for t in tables.values():
        rows = []
        for key, value in t.entries.items():
            k = _literal(key[0]) if len(key) == 1 else "(" + ", ".join(map(_literal, key)) + ")"
            rows.append(f"{k}: {_literal(value)}")
        if t.default is not None:
            rows.append(f"_: {_literal(t.default)}")
        keys = ", ".join(_domain_text(d) for d in t.key_domains)
        lines.append(f"  table {t.name} : {keys} -> {_domain_text(t.value_domain)} {{ {', '.join(rows)} }}")
    for v in model.variables.values():
        if v.kind == "input":
            lines.append(f"  input {v.name} : {_domain_text(v.domain)}")
        else:
            out = "output " if v.kind == "output" else ""
            lines.append(f"  {out}{v.name} : {_domain_text(v.domain)} = {show(v.mechanism)}")
    for p in model.properties:
        lines.append(f"  assert {show(p.expr)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("path", SPECS, ids=[p.name for p in SPECS])
def test_shipped_models_round_trip_through_the_printer(path):
    spec = load_spec(path)
    for model in spec.models.values():
        text = print_model(model)
        again = compile_text(text, "printed.causal").models[model.name]
        assert list(again.variables) == list(model.variables)
        for name, v in model.variables.items():
            w = again.variables[name]
            assert str(w.domain) == str(v.domain) and w.kind == v.kind
            if v.mechanism is not None:
                assert show(w.mechanism) == show(v.mechanism)
        assert [show(p.expr) for p in again.properties] == [show(p.expr) for p in model.properties]
        inputs = list(model.enumerate_inputs())
        for x in random.Random(0).sample(inputs, min(len(inputs), 300)):
            assert again.evaluate(x) == model.evaluate(x)


# ----------------------------------------------------------------- precedence
def _mech(src: str) -> ast.Expr:
    """The AST of `src` used as a mechanism."""
    tree = parse_text(f"model M {{\n  x = {src}\n}}\n")
    return tree.models[0].variables[0].expr


def N(x):
    return Num(x) if isinstance(x, int) else Name(x)


def B(op, left, right):
    return Binary(op, N(left) if isinstance(left, (str, int)) else left,
                  N(right) if isinstance(right, (str, int)) else right)


@pytest.mark.parametrize("src, tree", [
    ("a + b * c", B("+", "a", B("*", "b", "c"))),
    ("a * b + c", B("+", B("*", "a", "b"), "c")),
    ("a - b - c", B("-", B("-", "a", "b"), "c")),          # left associative
    ("a // b % c", B("%", B("//", "a", "b"), "c")),
    ("-a * b", B("*", Unary("-", Name("a")), "b")),        # unary minus binds tightest
    ("-(a * b)", Unary("-", B("*", "a", "b"))),
    ("a - -3", B("-", "a", -3)),                           # a negative literal is a number
    ("not a == b", Unary("not", B("==", "a", "b"))),       # comparisons bind tighter than not
    ("not a and b", B("and", Unary("not", Name("a")), "b")),
    ("a or b and c", B("or", "a", B("and", "b", "c"))),
    ("a and b or c", B("or", B("and", "a", "b"), "c")),
    ("a < b + 1", B("<", "a", B("+", "b", 1))),
    ("a == b and c != d", B("and", B("==", "a", "b"), B("!=", "c", "d"))),
    ("(a == b) == (c == d)", B("==", B("==", "a", "b"), B("==", "c", "d"))),
    ("if c then x else y + 1", IfThenElse(Name("c"), Name("x"), B("+", "y", 1))),  # else extends right
    ("if c then 1 else if d then 2 else 3",
     IfThenElse(Name("c"), Num(1), IfThenElse(Name("d"), Num(2), Num(3)))),
    ("if a or b then c else d", IfThenElse(B("or", "a", "b"), Name("c"), Name("d"))),
    ("(if c then 1 else 2) + 3", B("+", IfThenElse(Name("c"), Num(1), Num(2)), 3)),
    ("max(a, b + 1, 3)", Call("max", (Name("a"), B("+", "b", 1), Num(3)))),
    ("T(a, b) * 2", B("*", Call("T", (Name("a"), Name("b"))), 2)),
    ("true or false", Binary("or", BoolLit(True), BoolLit(False))),
])
def test_precedence(src, tree):
    assert _mech(src) == tree


@pytest.mark.parametrize("src", [
    "a == b == c",            # comparisons do not chain
    "a < b < c",
    "1 + if c then 1 else 2",  # if-then-else as an operand needs parentheses
    "not",
    "a +",
])
def test_rejected_expressions(src):
    with pytest.raises(SpecError):
        parse_text(f"model M {{\n  x = {src}\n}}\n")


def test_positions_point_at_operators_and_operands():
    e = _mech("a + b * c")
    assert (e.pos.line, e.pos.column) == (2, 7)
    assert (e.right.pos.line, e.right.pos.column) == (2, 11)
    assert (e.right.right.pos.column, e.right.right.pos.end_column) == (15, 16)


# ----------------------------------------------------------------- printer round trip
INT_VARS, BOOL_VARS, ENUM_VARS = ("a", "b"), ("p", "q"), ("c",)
COLORS = ("red", "green", "blue")
HEADER = ("model R {\n  input a, b : -2..3\n  input p, q : bool\n  input c : {red, green, blue}\n"
          "  table T : -2..3 -> 0..2 { 0: 1, 1: 2, _: 0 }\n")


def _gen(rng: random.Random, ty: str, depth: int) -> tuple[str, str]:
    """A random expression of type `ty` as (spec source, equivalent Python source), fully parenthesized."""
    leaf = depth <= 0 or rng.random() < 0.25
    if ty == "int":
        if leaf:
            return (rng.choice(INT_VARS),) * 2 if rng.random() < 0.6 else (str(rng.randint(-3, 3)),) * 2
        k = rng.randrange(7)
        if k <= 2:
            op = rng.choice(["+", "-", "*", "//", "%"])
            (left, lp), (r, rp) = _gen(rng, "int", depth - 1), _gen(rng, "int", depth - 1)
            return f"({left} {op} {r})", f"({lp} {op} {rp})"
        if k == 3:
            s, p = _gen(rng, "int", depth - 1)
            return f"(-{s})", f"(-{p})"
        if k == 4:
            f = rng.choice(["min", "max", "abs"])
            args = [_gen(rng, "int", depth - 1) for _ in range(1 if f == "abs" else rng.randint(2, 3))]
            return f"{f}({', '.join(a for a, _ in args)})", f"{f}({', '.join(p for _, p in args)})"
        if k == 5:
            s, p = _gen(rng, "int", depth - 1)
            return f"T({s})", f"T({p})"
        return _ite(rng, "int", depth)
    if ty == "bool":
        if leaf:
            return (rng.choice(BOOL_VARS),) * 2 if rng.random() < 0.7 else ("true", "True")
        k = rng.randrange(6)
        if k == 0:
            op = rng.choice(["and", "or"])
            (left, lp), (r, rp) = _gen(rng, "bool", depth - 1), _gen(rng, "bool", depth - 1)
            return f"({left} {op} {r})", f"({lp} {op} {rp})"
        if k == 1:
            s, p = _gen(rng, "bool", depth - 1)
            return f"(not {s})", f"(not {p})"
        if k in (2, 3):
            sub = rng.choice(["int", "int", "bool", "enum"])
            op = rng.choice(["==", "!=", "<", "<=", ">", ">="] if sub == "int" else ["==", "!="])
            (left, lp), (r, rp) = _gen(rng, sub, depth - 1), _gen(rng, sub, depth - 1)
            return f"({left} {op} {r})", f"({lp} {op} {rp})"
        if k == 4:
            return _ite(rng, "bool", depth)
        return (rng.choice(BOOL_VARS),) * 2
    if leaf or rng.random() < 0.5:
        if rng.random() < 0.5:
            return "c", "c"
        m = rng.choice(COLORS)
        return m, repr(m)
    return _ite(rng, "enum", depth)


def _ite(rng, ty, depth):
    (c, cp), (t, tp), (o, op) = _gen(rng, "bool", depth - 1), _gen(rng, ty, depth - 1), _gen(rng, ty, depth - 1)
    return f"(if {c} then {t} else {o})", f"(({tp}) if ({cp}) else ({op}))"


_TABLE = {0: 1, 1: 2}
_PY_GLOBALS = {"T": lambda k: _TABLE.get(k, 0), "min": min, "max": max, "abs": abs}


def _python_eval(code, env: dict):
    try:
        return eval(code, _PY_GLOBALS, dict(env))
    except ZeroDivisionError:
        return "undefined"


DECLARED = {"int": "-400000..400000", "bool": "bool", "enum": "{red, green, blue}"}


def _compile_one(src: str, ty: str):
    model = compile_text(HEADER + f"  output x : {DECLARED[ty]} = {src}\n}}\n").models["R"]
    return model.variables["x"].mechanism, model


@pytest.mark.parametrize("seed", range(6))
def test_show_round_trips_and_evaluation_matches_python(seed):
    rng = random.Random(seed)
    model = None
    for _ in range(40):
        ty = rng.choice(["int", "int", "bool", "enum"])
        src, py = _gen(rng, ty, rng.randint(1, 4))
        mech, model = _compile_one(src, ty)
        printed = show(mech)
        mech2, _ = _compile_one(printed, ty)
        assert mech2 == mech, (src, printed)          # same typed IR (positions aside)
        assert show(mech2) == printed                 # the printer is a fixed point
        assert len(printed) <= len(src)               # it drops redundant parentheses
        fn, code = compile_expr(mech), compile(py, "<py>", "eval")
        for env in model.enumerate_inputs():
            try:
                got = fn(env)
            except MechanismUndefined:
                got = "undefined"
            assert got == _python_eval(code, env), (src, env)


def test_show_minimal_parentheses():
    cases = {
        "a + (b * 2)": "a + b * 2",
        "(a + b) * 2": "(a + b) * 2",
        "a - (b - 1)": "a - (b - 1)",
        "(a - b) - 1": "a - b - 1",
        "not (a == b)": "not a == b",
        "(not p) and q": "not p and q",
        "not (p and q)": "not (p and q)",
        "(a == b) == (p == q)": "(a == b) == (p == q)",
        "-(a + 1)": "-(a + 1)",
        "(if p then a else b) + 1": "(if p then a else b) + 1",
        "if p then a else (b + 1)": "if p then a else b + 1",
    }
    for src, want in cases.items():
        ty = "bool" if any(op in src for op in ("==", "not", "and")) else "int"
        mech, _ = _compile_one(src, ty)
        assert show(mech) == want
