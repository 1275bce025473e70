"""Property tests: on random small models, z3 and plain evaluation agree input by input.

Models are generated as spec *text* and compiled, so the whole pipeline (parser, compiler,
IR, encoding) is exercised. Domains are tiny, so every claim is checked by enumeration.
"""
from __future__ import annotations

from functools import lru_cache

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abstract.causal.expr import MechanismUndefined, compile_expr
from abstract.language import compile_text
from abstract.solver import COUNTEREXAMPLE, PROVED, UNKNOWN, ModelEncoding, check_model

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))


@lru_cache(maxsize=None)
def _int_expr(names: tuple[str, ...], depth: int) -> st.SearchStrategy[str]:
    leaf = st.one_of(st.sampled_from(names), st.integers(-3, 3).map(lambda n: f"({n})"))
    if depth == 0:
        return leaf
    sub = _int_expr(names, depth - 1)
    return st.one_of(
        leaf,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "//", "%"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["min", "max"]), sub, sub).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        sub.map(lambda a: f"abs({a})"),
        sub.map(lambda a: f"(-{a})"),
        st.tuples(_bool_expr(names, depth - 1), sub, sub).map(lambda t: f"(if {t[0]} then {t[1]} else {t[2]})"),
        sub.map(lambda a: f"Tab({a})"),
        _color_expr(depth - 1).map(lambda a: f"Heat({a})"),
    )


@lru_cache(maxsize=None)
def _color_expr(depth: int) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(["c", "red", "green", "blue"])
    if depth == 0:
        return leaf
    return st.one_of(leaf, st.tuples(_bool_expr(("x", "y"), depth - 1), leaf, leaf)
                     .map(lambda t: f"(if {t[0]} then {t[1]} else {t[2]})"))


@lru_cache(maxsize=None)
def _bool_expr(names: tuple[str, ...], depth: int) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(["p", "true", "false"])
    if depth == 0:
        return leaf
    ints = _int_expr(names, depth - 1)
    sub = _bool_expr(names, depth - 1)
    return st.one_of(
        leaf,
        st.tuples(ints, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), ints)
        .map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda a: f"(not {a})"),
        st.tuples(_color_expr(depth - 1), _color_expr(depth - 1)).map(lambda t: f"({t[0]} == {t[1]})"),
    )


@st.composite
def models(draw) -> str:
    """A model with int, bool and enum inputs, two tables, an intermediate, an output and an assert."""
    lo_x, lo_y = draw(st.integers(-3, 0)), draw(st.integers(-3, 0))
    hi_x, hi_y = lo_x + draw(st.integers(0, 4)), lo_y + draw(st.integers(0, 4))
    keys = draw(st.lists(st.integers(-3, 3), unique=True, max_size=5))
    table = ", ".join(f"{k}: {draw(st.integers(-3, 3))}" for k in keys)
    if draw(st.booleans()) or not keys:
        table += (", " if table else "") + f"_: {draw(st.integers(-3, 3))}"
    colors = draw(st.sets(st.sampled_from(["red", "green", "blue"])))
    heat = ", ".join(f"{m}: {draw(st.integers(0, 2))}" for m in colors)
    declared = draw(st.sampled_from(["", " : -4..4", " : 0..9"]))
    m1 = draw(_int_expr(("x", "y"), 2))
    if draw(st.booleans()):
        out = draw(_int_expr(("m", "x", "m", "y", "m"), 2))  # m often, so effectiveness is tested
        claim = draw(_bool_expr(("x", "y", "m", "o"), 2))
    else:
        out = draw(_bool_expr(("m", "x", "m", "y", "m"), 2))
        claim = f"({draw(_bool_expr(('x', 'y', 'm'), 2))} {draw(st.sampled_from(['and', 'or', '==', '!=']))} o)"
    return f"""model R {{
    domain Color = {{red, green, blue}}
    input x : {lo_x}..{hi_x}
    input y : {lo_y}..{hi_y}
    input p : bool
    input c : Color
    table Tab : -3..3 -> -3..3 {{ {table} }}
    table Heat : Color -> 0..2 {{ {heat} }}
    m{declared} = {m1}
    output o = {out}
    assert {claim}
}}"""


def _plain(model, inputs):
    """Each variable's value by plain evaluation, None where it or something upstream is undefined."""
    values, out = dict(inputs), dict(inputs)
    for name, var in model.variables.items():
        if var.mechanism is None:
            continue
        if any(out[p] is None for p in model.graph.predecessors(name)):
            out[name] = None
            continue
        try:
            out[name] = values[name] = compile_expr(var.mechanism)(values)
        except MechanismUndefined:
            out[name] = None
    return out


def _compile(text):
    try:
        return compile_text(text).models["R"]
    except Exception as err:  # the generator only writes well-typed models with small domains
        raise AssertionError(f"{err}\n{text}") from err


@SETTINGS
@given(models())
def test_encoding_agrees_with_plain_evaluation(text):
    model = _compile(text)
    enc = ModelEncoding(model)
    for inputs in model.enumerate_inputs():
        assert enc.evaluate(inputs) == _plain(model, inputs), (inputs, text)


@SETTINGS
@given(models())
def test_check_verdicts_agree_with_enumeration(text):
    model = _compile(text)
    results = {(r.kind, r.name): r for r in check_model(model)}
    table = [(inputs, _plain(model, inputs)) for inputs in model.enumerate_inputs()]
    for (kind, name), r in results.items():
        assert r.verdict != UNKNOWN, (r, text)
        if kind == "total":
            var = name.split()[2]
            parents = list(model.graph.predecessors(var))
            bad = [i for i, v in table if v[var] is None and all(v[p] is not None for p in parents)]
            assert (r.verdict == PROVED) == (not bad), (r, text)
            if r.verdict == COUNTEREXAMPLE:
                assert {k: r.counterexample[k] for k in model.inputs} in bad
        elif kind == "in_domain":
            dom = model.variables["m"].domain
            bad = [i for i, v in table if v["m"] is not None and v["m"] not in dom]
            assert (r.verdict == PROVED) == (not bad), (r, text)
            if r.verdict == COUNTEREXAMPLE:
                assert {k: r.counterexample[k] for k in model.inputs} in bad
        elif kind == "assert":
            prop = compile_expr(model.properties[0].expr)
            defined = [v for _, v in table if None not in v.values()]
            if r.verdict == PROVED:
                for v in defined:
                    assert prop(v) is True, (v, text)
            else:
                v = model.evaluate({k: r.counterexample[k] for k in model.inputs})
                try:
                    assert prop(v) is False, (v, text)
                except MechanismUndefined:
                    assert "undefined" in r.message
        elif kind == "effective" and len(model.variables["m"].domain) <= 40:
            assert (r.verdict == PROVED) == _effective_by_enumeration(model), (r, text)


def _effective_by_enumeration(model) -> bool:
    for inputs in model.enumerate_inputs():
        seen = set()
        for v in model.variables["m"].domain:
            try:
                seen.add(model.run(inputs, do={"m": v})["o"])
            except MechanismUndefined:
                continue
            if len(seen) > 1:
                return True
    return False
