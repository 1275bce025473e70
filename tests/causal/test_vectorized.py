"""Array evaluation (abstract.causal.vectorized) must be exactly the plain model's evaluation:
every input of every shipped model, interventions, interchanges, errors, and the fallbacks."""
from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from abstract.causal.expr import MechanismUndefined
from abstract.causal.vectorized import array_model, to_python
from abstract.language import compile_text, load_spec

SPECS = Path(__file__).resolve().parents[2] / "specs"
SHIPPED = [(path.name, name, model) for path in sorted(SPECS.glob("*.causal"))
           for name, model in load_spec(path).models.items()]


def all_rows(am):
    ranges = [range(s) for s in am.sizes.tolist()]
    return np.array(list(itertools.product(*ranges)), dtype=np.int64).reshape(-1, len(am.inputs))


def py_row(am, values, i):
    """Row ``i`` of array values as plain Python values (types included)."""
    return {k: to_python(am.type_of(k), np.asarray(v)[i:i + 1])[0] for k, v in values.items()}


def same(a, b):
    """Equal values of the same Python types (True is not 1 here)."""
    return a == b and all(type(a[k]) is type(b[k]) for k in a)


@pytest.mark.parametrize("spec, name, model", SHIPPED, ids=[f"{s}:{n}" for s, n, _ in SHIPPED])
def test_inputs_evaluate_as_the_plain_model(spec, name, model):
    """Every input (every 7th of Addition's 10,000, to keep the suite fast)."""
    am = array_model(model)
    X = all_rows(am)
    rows = am.python_rows(X)
    assert len(rows) == model.input_space_size()
    step = 7 if len(rows) > 2000 else 1
    X, rows = X[::step], rows[::step]
    values = am.evaluate(X)
    for i, inputs in enumerate(rows):
        assert same(py_row(am, values, i), model.evaluate(inputs))


@pytest.mark.parametrize("spec, name, model", SHIPPED, ids=[f"{s}:{n}" for s, n, _ in SHIPPED])
def test_interchanges_are_the_plain_models(spec, name, model):
    """Single- and multi-source interchanges of every non-input variable, on random pairs."""
    am = array_model(model)
    rng = np.random.default_rng(0)
    internal = [v for v in model.variables if model.variables[v].kind != "input"]
    groups = [[v] for v in internal] + [internal[:2]] + [[model.inputs[0]]]
    for variables in groups:
        base = am.uniform(200, rng)
        sources = {v: am.uniform(200, rng) for v in variables}
        got = am.interchange(base, sources)
        bases, srcs = am.python_rows(base), {v: am.python_rows(s) for v, s in sources.items()}
        for i in range(200):
            want = model.interchange(bases[i], {v: srcs[v][i] for v in variables})
            assert same(py_row(am, got, i), want)


TRICKY = """
model T {
    domain Color = {red, green, blue}
    input a : -3..3
    input b : 0..2
    input c : Color
    input p : bool
    table Next : Color -> Color { red: green, green: blue }
    table Pair : Color, bool -> 0..9 { (red, true): 1, (blue, false): 7, _: 4 }
    q = a // (b + 1) + a % (b - 3)                     # floor division and a negative divisor
    r = if b == 0 then 0 else a // b                    # guarded: never undefined
    s = min(a, b, -a) * max(a, 2) + abs(a - b)
    t = p and not (a > b) or c == green
    u = if c == red then Next(c) else blue              # guarded table lookup
    w = Pair(c, p) + (if t then 1 else 0)
    big : 0..0 = 0
    output y : 0..99 = abs(q + r + s + w) % 100
}
"""


def test_operators_tables_and_guards_match_the_plain_model():
    model = compile_text(TRICKY).models["T"]
    am = array_model(model)
    X = all_rows(am)
    values = am.evaluate(X)
    for i, inputs in enumerate(am.python_rows(X)):
        assert same(py_row(am, values, i), model.evaluate(inputs))


def test_undefined_mechanisms_raise_the_plain_models_error():
    model = compile_text("model D {\n input a, b : 0..3\n output y : 0..3 = a // b\n}").models["D"]
    am = array_model(model)
    with pytest.raises(MechanismUndefined, match="division by zero"):
        am.evaluate(np.array([[1, 2], [3, 0]]))
    assert am.evaluate(np.array([[3, 1], [2, 2]]))["y"].tolist() == [3, 1]
    table = compile_text("model L {\n domain C = {x, y}\n input c : C\n table F : C -> 0..1 { x: 1 }\n"
                         " output o : 0..1 = F(c)\n}").models["L"]
    with pytest.raises(MechanismUndefined, match="no entry"):
        array_model(table).evaluate(np.array([[0], [1]]))


def test_out_of_domain_interventions_are_refused_like_the_plain_model():
    model = compile_text("model O {\n input a : 0..9\n m : 0..3 = a\n output y : 0..9 = m\n}").models["O"]
    am = array_model(model)
    with pytest.raises(ValueError, match="outside its domain"):
        am.interchange(np.array([[1]]), {"m": np.array([[7]])})


def test_integers_beyond_int64_fall_back_to_exact_python_ints():
    model = compile_text("model B {\n input a : 0..999999\n"
                         " output y : 0..1 = (a * a * a * a * 1000) % 2\n}").models["B"]
    am = array_model(model)
    X = np.array([[999_999], [123_457], [2]])
    got = am.evaluate(X)["y"]
    assert [to_python(am.type_of("y"), got[i:i + 1])[0] for i in range(3)] == \
        [model.evaluate({"a": int(a)})["y"] for a in X[:, 0]]
