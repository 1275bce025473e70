"""`hold` with a head group (`heads [L.H, ...]`, which names no `layer`): every member is a site,
so a hold must come after the group's *last* block, at check time and in the runner."""
from __future__ import annotations

import pytest

from abstract.language import SpecError, compile_text
from abstract.neural.hold import downstream
from abstract.neural.sites import Site

SPEC = """model M {
    domain D = 0..3
    input x, y : D
    output out : D = if x > y then x else y
}
network lm = hf "gpt2" { prompt "{x} {y} =", answer " {out}" }
hypothesis h : M ~ lm {
    align out to heads [0.1, 2.3] position last via das(dim=4)
    HOLD
}
"""


def test_a_hold_after_every_member_of_a_head_group_compiles():
    spec = compile_text(SPEC.replace("HOLD", "hold component mlp_out, layer 2"), "t.causal")
    assert [x.to_json()["text"] for x in spec.plans["h"].holds] == ["hold component mlp_out, layer 2"]


def test_a_hold_before_the_groups_last_member_is_a_located_error():
    with pytest.raises(SpecError) as info:
        compile_text(SPEC.replace("HOLD", "hold component mlp_out, layer 1"), "t.causal")
    text = info.value.render()
    assert "t.causal:9:" in text and "upstream of the site head_out of layer 2" in text


def test_the_runner_check_uses_every_member():
    group = Site(component="head_out", heads=((0, 1), (2, 3)), position="last")
    assert downstream(Site(layer=2, component="mlp_out", position=None), group)
    assert not downstream(Site(layer=1, component="mlp_out", position=None), group)


def test_holding_the_attention_output_of_a_patched_heads_layer_is_a_located_error():
    """attn_out of layer L is computed from layer L's head outputs alone: held at base, it would erase
    the intervention on a head of that layer (and so would head_out for a q/k/v site)."""
    with pytest.raises(SpecError) as info:
        compile_text(SPEC.replace("HOLD", "hold component attn_out, layer 2"), "t.causal")
    assert "t.causal:9:" in info.value.render() and "would erase the intervention" in info.value.render()
    single = SPEC.replace("heads [0.1, 2.3]", "layer 1 component q head 0")
    with pytest.raises(SpecError, match="would erase the intervention"):
        compile_text(single.replace("HOLD", "hold component attn_out, layer 1"), "t.causal")
    spec = compile_text(single.replace("HOLD", "hold component attn_out, layer 2"), "t.causal")
    assert len(spec.plans["h"].holds) == 1


def test_swallows_is_the_attention_chain_of_one_layer():
    from abstract.hypothesis.holds import swallows
    assert swallows((3, "attn_out"), (3, "head_out"))
    assert swallows((3, "head_out"), (3, "v"))
    assert not swallows((3, "k"), (3, "q"))  # q, k and v are computed side by side
    assert not swallows((4, "attn_out"), (3, "head_out"))
    assert not swallows((3, "mlp_out"), (3, "head_out"))
    assert not swallows((3, "attn_out"), (3, "resid_pre"))
