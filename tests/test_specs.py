"""The shipped example specs compile, and their claims hold (checked here by brute force over
every input, independently of the z3 solver)."""
from __future__ import annotations

from pathlib import Path

import pytest

from abstract.causal.expr import compile_expr
from abstract.language import load_spec

SPECS = sorted((Path(__file__).resolve().parents[1] / "specs").glob("*.causal"))
NAMES = [p.name for p in SPECS]


def test_the_examples_are_shipped():
    assert {"hierarchical_equality.causal", "addition.causal", "ioi.causal", "ravel.causal"} <= set(NAMES)


@pytest.fixture(scope="module", params=SPECS, ids=NAMES)
def spec(request):
    return load_spec(request.param)


def test_every_model_is_total_in_domain_and_satisfies_its_asserts(spec):
    for model in spec.models.values():
        assert model.input_space_size() <= 20_000, "keep the example domains small"
        props = [(p.text, compile_expr(p.expr)) for p in model.properties]
        for inputs in model.enumerate_inputs():
            values = model.evaluate(inputs)  # raises on division by zero / missing table keys
            for name, var in model.variables.items():
                assert values[name] in var.domain, (model.name, name, inputs, values[name])
            for text, holds in props:
                assert holds(values) is True, f"{model.name}: assert {text} fails on {inputs}"


def test_every_variable_is_effective(spec):
    """Each non-output variable changes some output under some intervention."""
    for model in spec.models.values():
        inputs = list(model.enumerate_inputs())[:2000]
        for name, var in model.variables.items():
            if var.kind == "output":
                continue
            effective = False
            for x in inputs:
                base = model.run(x)
                for v in var.domain.values():
                    if model.run(x, do={name: v}) != base:
                        effective = True
                        break
                if effective:
                    break
            assert effective, f"{model.name}.{name} never affects an output"


def test_equivalences_hold(spec):
    for eq in spec.equivalences:
        left, right = spec.models[eq.left], spec.models[eq.right]
        assert left.inputs == right.inputs or set(left.inputs) == set(right.inputs)
        assert set(left.outputs) == set(right.outputs)
        for x in left.enumerate_inputs():
            assert left.run(x) == right.run(x), (eq.left, eq.right, x)


def test_hypotheses_name_a_network_and_expectations(spec):
    assert spec.hypotheses, "every example shows a network binding"
    for h in spec.hypotheses:
        assert h.network in spec.networks
        assert h.aligns and h.expects
        model = spec.models[h.model]
        for a in h.aligns:
            assert model.variables[a.variable].kind != "input"


DOC = Path(__file__).resolve().parents[1] / "docs" / "language.md"


def test_the_documented_example_compiles_and_holds():
    text = DOC.read_text()
    start = text.index("## A complete small example")
    block = text[text.index("```\n", start) + 4:]
    block = block[:block.index("```")]
    from abstract.language import compile_text
    spec = compile_text(block, "example.causal")
    heq, flat = spec.models["HierarchicalEquality"], spec.models["Flat"]
    assert [h.name for h in spec.hypotheses] == ["both_equalities"]
    for x in heq.enumerate_inputs():
        assert heq.run(x) == flat.run(x)
