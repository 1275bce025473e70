"""README.md stays true: its language example compiles and its checks hold."""
from __future__ import annotations

import re
from pathlib import Path

from abstract.language import compile_text
from abstract.solver import check_spec

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_language_example_compiles_and_its_checks_are_proved():
    example = next(b for b in _blocks() if b.startswith("model Sum"))
    spec = compile_text(example, "README.md")
    assert set(spec.models) == {"Sum", "SumFlat"} and [h.name for h in spec.hypotheses] == ["h"]
    results = check_spec(spec)
    assert results and all(r.verdict == "proved" for r in results), [r for r in results if not r.ok]


def test_intro_example_compiles():
    intro = next(b for b in _blocks() if b.startswith("model HierarchicalEquality"))
    spec = compile_text(intro, "README.md")
    assert [h.name for h in spec.hypotheses] == ["both_equalities"]
