"""`via pca(...)`, `via sae(...)`, `via mask(...)` read through the options table at check time."""
from __future__ import annotations

import pytest

from abstract.hypothesis.plan import InterventionPlan, build_plan
from abstract.language import parse_text
from abstract.language.errors import SpecError


def plan_of(via: str) -> InterventionPlan:
    h = parse_text(f"hypothesis h : M ~ n {{\n  align x to layer 1 via {via}\n}}\n", "s.causal").hypotheses[0]
    return build_plan(h).variables[0].intervention


def error_of(via: str) -> SpecError:
    with pytest.raises(SpecError) as e:
        plan_of(via)
    return e.value


def test_pca_takes_a_dim_like_das():
    assert (plan_of("pca(dim=3)").kind, plan_of("pca(dim=3)").dim) == ("pca", 3)
    assert plan_of("pca(2)").dim == 2 and plan_of("pca").dim == 1
    assert "needs an integer >= 1" in str(error_of("pca(dim=0)"))


def test_sae_takes_a_path_and_features_by_name_or_position():
    for via in ('sae("x.safetensors", features=[3, 1, 3])', 'sae("x.safetensors", [3, 1])',
                'sae(path="x.safetensors", features=[1, 3])'):
        ip = plan_of(via)
        assert ip.kind == "sae" and ip.option("path") == "x.safetensors" and ip.option("features") == (1, 3)
        assert ip.dim == 2  # the random-rotation control's size
    assert plan_of('sae("x.safetensors", features=[])').option("features") == ()
    assert plan_of('sae("x.safetensors", features=[4])').to_json() == {
        "kind": "sae", "dim": 1, "features": [4], "path": "x.safetensors"}


def test_sae_errors_point_at_the_via_clause_or_the_argument():
    e = error_of('sae("x.safetensors")')
    assert "sae(...) needs features" in str(e) and (e.pos.line, e.pos.column) == (2, 26)
    e = error_of('sae("x.safetensors", features=[-1])')
    assert "non-negative feature indices" in str(e) and e.pos.column > 26
    assert "`features` is not an option of pca()" in str(error_of("pca(features=[1])"))


def test_mask_defaults_and_options():
    ip = plan_of("mask")
    assert ip.kind == "mask" and ip.dim is None  # its size is learned
    assert dict(ip.options) == {"gate": "sigmoid", "l0": 0.01}
    assert dict(plan_of("mask(l0=0.5, gate=hard_concrete)").options) == {"gate": "hard_concrete", "l0": 0.5}
    assert plan_of("mask()") == plan_of("mask")
    assert "`gate` must be one of sigmoid, hard_concrete" in str(error_of("mask(gate=relu)"))
    assert "`l0` needs a number >= 0" in str(error_of("mask(l0=-1)"))
    assert "`dim` is not an option of mask()" in str(error_of("mask(dim=3)"))
