"""Each check and each verdict, on small hand-written models."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from abstract.causal.expr import MechanismUndefined, compile_expr
from abstract.language import compile_text, load_spec
from abstract.solver import COUNTEREXAMPLE, PROVED, UNKNOWN, check_equivalence, check_model, check_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"

HIER = """
model Hier {
    domain Shape = 0..3
    input  a, b, c, d : Shape
    left   = a == b
    right  = c == d
    output label = left == right
    assert label == ((a == b) == (c == d))
}
model HierIte {
    input  a, b, c, d : 0..3
    output label = if a == b then c == d else not (c == d)
}
model Wrong {
    input  a, b, c, d : 0..3
    output label = a == b and c == d
}
model OtherInputs {
    input  a, b, c : 0..3
    output label = a == b
}
"""


def _one(results, kind, name_part=""):
    [r] = [r for r in results if r.kind == kind and name_part in r.name]
    return r


def _model(text):
    spec = compile_text(text)
    return spec.models[next(iter(spec.models))]


def test_hierarchical_equality_is_proved_everywhere_and_fast():
    model = compile_text(HIER).models["Hier"]
    start = time.perf_counter()
    results = check_model(model)
    elapsed = time.perf_counter() - start
    assert [r.kind for r in results] == ["acyclic", "total", "total", "total", "effective", "effective", "assert"]
    assert all(r.verdict == PROVED for r in results), [r for r in results if not r.ok]
    assert elapsed < 2.0
    assert "do(left=" in _one(results, "effective", "left").message


def test_shipped_specs_check_clean():
    for path in sorted(SPECS.glob("*.causal")):
        for r in check_spec(load_spec(path)):
            assert r.verdict == PROVED, (path.name, r)


def test_failing_assert_gives_a_real_counterexample():
    model = _model("""
    model M {
        input  a, b : 0..3
        s = a + b
        output o = s * 2
        assert s < 6 or a != b
    }""")
    r = _one(check_model(model), "assert")
    assert r.verdict == COUNTEREXAMPLE
    assert r.counterexample == {"a": 3, "b": 3, "s": 6}
    values = model.evaluate({k: r.counterexample[k] for k in model.inputs})
    assert compile_expr(model.properties[0].expr)(values) is False
    assert "false" in r.message and r.pos is not None and r.pos.line == 6


def test_assert_that_is_itself_undefined_is_a_counterexample():
    model = _model("model M { input a : 0..3\n output o = a\n assert 6 // a >= 1 }")
    r = _one(check_model(model), "assert")
    assert r.verdict == COUNTEREXAMPLE and r.counterexample == {"a": 0} and "undefined" in r.message


def test_reachable_division_by_zero():
    model = _model("model M { input a, b : 0..5\n q = 10 // (a - b)\n output o = q + 1 }")
    r = _one(check_model(model), "total", " q ")
    assert r.verdict == COUNTEREXAMPLE
    cex = r.counterexample
    assert cex["a"] == cex["b"]
    with pytest.raises(MechanismUndefined):
        model.evaluate(cex)
    assert "division by zero" in r.message
    assert _one(check_model(model), "total", " o ").verdict == PROVED  # blamed on q, not on o


def test_guarded_division_is_total():
    model = _model("model M { input a, b : 0..5\n output o = if a == b then 0 else 10 // (a - b) }")
    assert _one(check_model(model), "total").verdict == PROVED


def test_table_missing_a_key_and_enum_values_in_counterexamples():
    model = _model("""
    model M {
        domain Color = {red, green, blue}
        input c : Color
        table Warm : Color -> bool { red: true, green: false }
        output w = Warm(c)
    }""")
    r = _one(check_model(model), "total")
    assert r.verdict == COUNTEREXAMPLE and r.counterexample == {"c": "blue"}
    assert "no entry" in r.message


def test_value_escaping_its_declared_domain():
    model = _model("model M { input a, b : 0..9\n x : 0..9 = a + b\n output o = x }")
    r = _one(check_model(model), "in_domain")
    assert r.verdict == COUNTEREXAMPLE
    cex = r.counterexample
    assert cex["x"] == cex["a"] + cex["b"] and cex["x"] > 9
    assert "outside" in r.message
    ok = _model("model M { input a, b : 0..9\n x : 0..18 = a + b\n output o = x }")
    assert _one(check_model(ok), "in_domain").verdict == PROVED


@pytest.mark.parametrize("mechanisms", [
    "t = a + 1\n output o = if true then b else t",
    "u = a * 0\n output o = u + b",
    "u : 0..5 = a\n output o = b + u * 0",
    "u = a\n output o = b",
])
def test_inert_variable(mechanisms):
    model = _model(f"model M {{ input a, b : 0..3\n {mechanisms} }}")
    r = _one(check_model(model), "effective")
    assert r.verdict == COUNTEREXAMPLE
    assert "no intervention on" in r.message and "vacuous" in r.message


def test_effective_witness_is_real():
    model = _model("model M { input a, b : 0..3\n t = a + b\n output o = t >= 4 }")
    r = _one(check_model(model), "effective")
    assert r.verdict == PROVED and "do(t=" in r.message


def test_unknown_when_the_bound_is_tiny():
    model = _model("""
    model Cubes {
        input x, y, z : -1000..1000
        output o = x * x * x + y * y * y == z * z * z + 42
        assert not o
    }""")
    r = _one(check_model(model, rlimit=2_000), "assert")
    assert r.verdict == UNKNOWN
    assert "rlimit=2,000" in r.message and "bound" in r.message


def test_equivalence_proved_refuted_and_mismatched():
    spec = compile_text(HIER)
    m = spec.models
    assert check_equivalence(m["Hier"], m["HierIte"]).verdict == PROVED
    bad = check_equivalence(m["Hier"], m["Wrong"])
    assert bad.verdict == COUNTEREXAMPLE
    cex = bad.counterexample
    inputs = {k: cex[k] for k in "abcd"}
    assert m["Hier"].run(inputs)["label"] == cex["Hier.label"] != cex["Wrong.label"] == m["Wrong"].run(inputs)["label"]
    mismatch = check_equivalence(m["Hier"], m["OtherInputs"])
    assert mismatch.verdict == COUNTEREXAMPLE and "different inputs" in mismatch.message
    other_outputs = _model("model X { input a, b, c, d : 0..3\n output y = a == b }")
    res = check_equivalence(m["Hier"], other_outputs)
    assert res.verdict == COUNTEREXAMPLE and "different outputs" in res.message


def test_equivalence_where_one_model_is_undefined():
    spec = compile_text("""
    model A { input a : 0..3\n output o = 6 // a }
    model B { input a : 0..3\n output o = if a == 0 then 0 else 6 // a }
    equivalent A, B
    """)
    r = check_spec(spec)[-1]
    assert r.kind == "equivalent" and r.verdict == COUNTEREXAMPLE
    assert r.counterexample["a"] == 0 and r.counterexample["A.o"] == "undefined"


def test_check_spec_order_and_json():
    spec = compile_text(HIER + "\nequivalent Hier, HierIte\nequivalent Hier, Wrong\n")
    results = check_spec(spec)
    models = [r.model for r in results]
    assert models.index("Hier") < models.index("HierIte") < models.index("Wrong")
    assert [r.verdict for r in results[-2:]] == [PROVED, COUNTEREXAMPLE]
    assert results[-1].pos is not None
    for r in results:
        assert set(r.to_json()) >= {"model", "name", "kind", "verdict", "message", "counterexample"}
