"""`render_only [names]` on a network: variables only rendered into the prompt are not held
to the `effective` check (every other check still runs); a name the prompt does not render is
a located error."""
from __future__ import annotations

from pathlib import Path

import pytest

from abstract.cli import main
from abstract.language import SpecError, compile_text
from abstract.solver import check_spec

MODEL = """model M {
    domain Place = {park, store}
    input a : 0..3
    input order : {ABBA, BABA}
    place : Place = if order == ABBA then park else store
    output o = a
}
"""


def _effective(text: str) -> dict[str, str]:
    spec = compile_text(text, "t.causal")
    return {c.name: c.verdict for c in check_spec(spec) if c.kind == "effective"}


def test_a_render_only_variable_is_not_held_to_the_effective_check() -> None:
    net = 'network lm = hf "gpt2" { prompt "At the {place}, {a} =", answer " {o}"%s }\n'
    assert _effective(MODEL + net % "") == {"place is causally effective on an output": "counterexample"}
    assert _effective(MODEL + net % ", render_only [place]") == {}
    spec = compile_text(MODEL + net % ", render_only place", "t.causal")
    assert spec.network_plans["lm"].render_only == ("place",)
    assert {c.kind for c in check_spec(spec)} == {"acyclic", "total", "in_domain"}  # the rest still run


def test_other_variables_stay_checked() -> None:
    text = MODEL.replace("    output o = a\n", "    idle = a + 1\n    output o = a\n")
    text += 'network lm = hf "gpt2" { prompt "At the {place}, {a} =", answer " {o}", render_only [place] }\n'
    assert _effective(text) == {"idle is causally effective on an output": "counterexample"}


@pytest.mark.parametrize("net, why", [
    ('hf "gpt2" { prompt "{a} =", answer " {o}", render_only [place] }', "the prompt does not render `place`"),
    ('torch "m.py:build" { render_only [place] }', "the prompt does not render `place`"),
    ('hf "gpt2" { prompt "{place} {a} =", answer " {o}", render_only [1] }', "needs variable names"),
])
def test_a_name_the_prompt_does_not_render_is_a_located_error(net: str, why: str, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SpecError, match=why):
        compile_text(MODEL + f"network lm = {net}\n", "t.causal")
    path = tmp_path / "t.causal"
    path.write_text(MODEL + f"network lm = {net}\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:8:" in err and why in err and "^" in err
