"""Compiling a spec: domains (declared and inferred), enums, tables, asserts, equivalences,
networks and hypotheses, and the causal graph."""
from __future__ import annotations

import random

import pytest

from abstract.causal.domains import BOOL, Domain
from abstract.causal.expr import Const, Lookup, MechanismUndefined, Op, Var
from abstract.language import compile_text
from abstract.language.ast import AllValues, CallValue, Range

SPEC = '''
# comments run to the end of the line
model Colors {
    domain Color = {red, green, blue}
    domain Small = 0..2
    input  c : Color
    input  n : Small; input flag : bool     # ';' is an optional separator
    table  Next : Color -> Color { red: green, green: blue, blue: red }
    table  Pair : Small, bool -> 0..9 { (0, true): 1, (2, false): 9, _: 5 }
    shifted = Next(c)
    score : 0..9 = Pair(n, flag)
    big = n * 3 - 1
    output same : bool = shifted == c
    output out = if flag and not same then score else max(big, 0)
    assert not same
}
assert Colors: out >= 0
assert out <= 9

model Copy {
    input c : {red, green, blue}
    input n : 0..2
    input flag : bool
    output same = false
    output out = if flag then Pair2(n) else max(n * 3 - 1, 0)
    table Pair2 : 0..2 -> 0..9 { 0: 1, 2: 9, _: 5 }
}
equivalent Colors, Copy

network mlp = torch "models/m.py:build" { width 16, depth 3, lr 1e-3, name "x", act relu, layers [1, 2], all *, r 0..2 }
network lm = hf "gpt2" {
    prompt "{n} and {c}"
    answer " {out}"
}

hypothesis h : Colors ~ lm {
    align shifted to layer 1 via das(dim=8)
    align score to layer 2 position last via neurons(0, 1, 2)
    align big
    search layer 0..2, position *
    train samples 100, lr 0.001, seeds 2
    data balance out
    expect iia(shifted) >= 0.9, cause(score) > 0.5
    expect isolate(shifted, score) >= 0.8
    control random_network, random_rotation
}
'''


@pytest.fixture(scope="module")
def spec():
    return compile_text(SPEC, "colors.causal")


def test_models_and_their_variables(spec):
    assert list(spec.models) == ["Colors", "Copy"]
    m = spec.models["Colors"]
    assert set(m.inputs) == {"c", "n", "flag"}
    assert set(m.outputs) == {"same", "out"}
    assert set(m.intermediates) == {"shifted", "score", "big"}
    assert [v.kind for v in m.variables.values()].count("input") == 3


def test_declared_and_inferred_domains(spec):
    m = spec.models["Colors"]
    assert m.domain("c") == Domain.enum(("red", "green", "blue"), "Color")
    assert m.domain("n").values() == (0, 1, 2)
    assert m.domain("flag").values() == (False, True)
    assert str(m.domain("shifted")) == "{red, green, blue}"       # inferred from the table's value type
    assert not m.variables["shifted"].declared_domain
    assert str(m.domain("score")) == "0..9" and m.variables["score"].declared_domain
    assert str(m.domain("big")) == "-1..5"                         # interval of n * 3 - 1
    assert str(m.domain("same")) == "bool"
    assert str(m.domain("out")) == "0..9"                          # hull of score and max(big, 0)


def test_causal_graph(spec):
    g = spec.models["Colors"].graph
    assert set(g.edges) == {("c", "shifted"), ("n", "score"), ("flag", "score"), ("n", "big"),
                            ("shifted", "same"), ("c", "same"), ("flag", "out"), ("same", "out"),
                            ("score", "out"), ("big", "out")}
    assert g.nodes["c"]["kind"] == "input" and g.nodes["out"]["kind"] == "output"
    order = list(spec.models["Colors"].variables)
    assert all(order.index(u) < order.index(v) for u, v in g.edges)   # topological


def test_typed_mechanisms(spec):
    m = spec.models["Colors"]
    shifted = m.variables["shifted"].mechanism
    assert isinstance(shifted, Lookup) and shifted.table.name == "Next"
    assert shifted.args == (Var("c", m.domain("c").type),)
    same = m.variables["same"].mechanism
    assert isinstance(same, Op) and same.op == "==" and same.type == BOOL
    assert m.mechanism_text("out") == "if flag and not same then score else max(big, 0)"
    assert m.mechanism_text("big") == "n * 3 - 1"


def test_enum_member_is_a_constant():
    m = compile_text("model M {\n input c : {red, green}\n output y = c == green\n}").models["M"]
    e = m.variables["y"].mechanism
    assert e.args[1] == Const("green", m.domain("c").type)


def test_tables_single_tuple_and_default(spec):
    m = spec.models["Colors"]
    assert [m.evaluate({"c": c, "n": 0, "flag": True})["shifted"] for c in ("red", "green", "blue")] == \
        ["green", "blue", "red"]
    assert m.evaluate({"c": "red", "n": 0, "flag": True})["score"] == 1
    assert m.evaluate({"c": "red", "n": 2, "flag": False})["score"] == 9
    assert m.evaluate({"c": "red", "n": 1, "flag": True})["score"] == 5   # the default `_`


def test_missing_table_key_is_undefined():
    m = compile_text("model M {\n input a : 0..2\n table T : 0..2 -> 0..2 { 0: 1 }\n output y = T(a)\n}").models["M"]
    assert m.evaluate({"a": 0})["y"] == 1
    with pytest.raises(MechanismUndefined):
        m.evaluate({"a": 1})


def test_python_division_semantics():
    m = compile_text("model M {\n input a, b : -3..3\n q = a // b\n output r = a % b\n"
                     " output s = q * b + r == a\n}").models["M"]
    for x in m.enumerate_inputs():
        if x["b"] == 0:
            with pytest.raises(MechanismUndefined):
                m.evaluate(x)
            continue
        v = m.evaluate(x)
        assert v["q"] == x["a"] // x["b"] and v["r"] == x["a"] % x["b"] and v["s"] is True


def test_asserts_attach_to_their_models(spec):
    texts = [p.text for p in spec.models["Colors"].properties]
    assert texts == ["not same", "out >= 0", "out <= 9"]      # inside, `assert Colors:`, bare after it
    assert spec.models["Copy"].properties == ()
    assert all(p.expr.type == BOOL for p in spec.models["Colors"].properties)


def test_bare_assert_goes_to_the_most_recent_model():
    s = compile_text("model A {\n input a : 0..1\n output y = a\n}\nmodel B {\n input b : 0..1\n output z = b\n}\n"
                     "assert z == b\n")
    assert [p.text for p in s.models["B"].properties] == ["z == b"]
    assert s.models["A"].properties == ()


def test_equivalences(spec):
    assert [(e.left, e.right) for e in spec.equivalences] == [("Colors", "Copy")]


def test_networks_and_option_values(spec):
    mlp, lm = spec.networks["mlp"], spec.networks["lm"]
    assert (mlp.kind, mlp.source, lm.kind, lm.source) == ("torch", "models/m.py:build", "hf", "gpt2")
    opts = {o.key: o.value for o in mlp.options}
    assert opts == {"width": 16, "depth": 3, "lr": 1e-3, "name": "x", "act": "relu", "layers": [1, 2],
                    "all": AllValues(), "r": Range(0, 2)}
    assert {o.key: o.value for o in lm.options} == {"prompt": "{n} and {c}", "answer": " {out}"}


def test_hypothesis(spec):
    (h,) = spec.hypotheses
    assert (h.name, h.model, h.network) == ("h", "Colors", "lm")
    a1, a2, a3 = h.aligns
    assert a1.variable == "shifted" and [(o.key, o.value) for o in a1.site] == [("layer", 1)]
    assert a1.intervention == CallValue("das", (("dim", 8),)) and a1.intervention.kwargs() == {"dim": 8}
    assert [(o.key, o.value) for o in a2.site] == [("layer", 2), ("position", "last")]
    assert a2.intervention == CallValue("neurons", (("0", 0), ("1", 1), ("2", 2)))
    assert a3.site == () and a3.intervention is None
    assert [(o.key, o.value) for o in h.search] == [("layer", Range(0, 2)), ("position", AllValues())]
    assert [(o.key, o.value) for o in h.train] == [("samples", 100), ("lr", 0.001), ("seeds", 2)]
    assert [(o.key, o.value) for o in h.data] == [("balance", "out")]
    assert [(e.metric, e.args, e.op, e.threshold) for e in h.expects] == [
        ("iia", ("shifted",), ">=", 0.9), ("cause", ("score",), ">", 0.5), ("isolate", ("shifted", "score"), ">=", 0.8)]
    assert h.expects[0].text == "iia(shifted) >= 0.9"
    assert h.controls == ("random_network", "random_rotation")


def test_spec_hash_is_of_the_text(spec):
    assert len(spec.sha256) == 64
    assert compile_text(SPEC + "\n", "colors.causal").sha256 != spec.sha256


def test_inferred_int_domains_are_sound():
    """Every value a mechanism takes lies in its inferred domain (random arithmetic over small ranges)."""
    rng = random.Random(1)
    ops = ["+", "-", "*", "//", "%"]
    for _ in range(60):
        def gen(d):
            if d == 0 or rng.random() < 0.3:
                return rng.choice(["a", "b", str(rng.randint(-3, 3))])
            k = rng.randrange(5)
            if k == 0:
                return f"-({gen(d - 1)})"
            if k == 1:
                return f"{rng.choice(['min', 'max'])}({gen(d - 1)}, {gen(d - 1)})"
            if k == 2:
                return f"abs({gen(d - 1)})"
            if k == 3:
                return f"(if a < b then {gen(d - 1)} else {gen(d - 1)})"
            return f"({gen(d - 1)} {rng.choice(ops)} {gen(d - 1)})"
        src = gen(3)
        m = compile_text(f"model M {{\n input a : -2..3\n input b : 1..4\n output y = {src}\n}}").models["M"]
        dom = m.domain("y")
        for x in m.enumerate_inputs():
            try:
                v = m.evaluate(x)["y"]
            except MechanismUndefined:
                continue
            assert v in dom, (src, x, v, dom)


def test_interval_examples():
    def dom(src):
        return str(compile_text(f"model M {{\n input a : -2..3\n input b : 1..4\n output y = {src}\n}}")
                   .models["M"].domain("y"))
    assert dom("a + b") == "-1..7"
    assert dom("a - b") == "-6..2"
    assert dom("a * b") == "-8..12"
    assert dom("-a") == "-3..2"
    assert dom("abs(a)") == "0..3"
    assert dom("a % b") == "0..3"
    assert dom("a // b") == "-2..3"
    assert dom("min(a, b)") == "-2..3"
    assert dom("max(a, b)") == "1..4"
    assert dom("if a < 0 then b else 7") == "1..7"


def test_an_empty_file_compiles_to_nothing():
    s = compile_text("# nothing here\n")
    assert s.models == {} and s.hypotheses == ()
