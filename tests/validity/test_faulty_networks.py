"""A faulty network never passes: each fault errors its own hypothesis, before any scoring, and
the other hypotheses of the spec still run and are judged."""
from __future__ import annotations

from pathlib import Path

import pytest

from abstract.verify.pipeline import verify_spec

from builders import with_builders  # tests/validity, on sys.path (pytest's rootdir-less import mode)

HERE = Path(__file__).parent

FAULTS = {
    "nan_logits": "not finite",
    "inf_logits": "not finite",
    "nan_weight": "not finite",
    "shifted_rows": "solves the task on only",
    "merged_inputs": "cannot tell these input values apart",
}

HEAD = """
model Pair {
    input a, b : 0..2
    output y = 3 * a + b
}
network good = torch "faulty_nets.py:good"
"""


def _spec(tmp_path: Path) -> Path:
    text = HEAD + "".join(f'network {f} = torch "faulty_nets.py:{f}"\n' for f in FAULTS)
    for name in ["good", *FAULTS]:
        # two claims per network that cannot both be right: a faulty network must pass neither
        text += f"""
hypothesis {name}_high : Pair ~ {name} {{
    align a to layer 0 via neurons(0, 1, 2)
    train samples 20, seeds 1
    data test 60, dev 20
    expect iia(a) >= 0.4
}}
hypothesis {name}_low : Pair ~ {name} {{
    align a to layer 0 via neurons(0, 1, 2)
    train samples 20, seeds 1
    data test 60, dev 20
    expect iia(a) <= 0.6
}}
"""
    path = tmp_path / "faults.causal"
    path.write_text(with_builders(text))
    return path


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    return verify_spec(_spec(tmp_path_factory.mktemp("faults")), progress=False, device="cpu", cache=None)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_each_fault_errors_its_hypotheses_before_scoring(doc, fault):
    errors = {e["hypothesis"]: e for e in doc["errors"]}
    for claim in ("high", "low"):
        name = f"{fault}_{claim}"
        assert name in errors, f"{name} was scored: {[h['name'] for h in doc['hypotheses']]}"
        assert FAULTS[fault] in errors[name]["message"]
        assert errors[name]["location"].split(":")[-2] == str(_line_of(doc, name))
    judged = {h["name"] for h in doc["hypotheses"] if h.get("expectations")}
    assert not {f"{fault}_high", f"{fault}_low"} & judged


def test_the_good_network_still_runs_and_is_judged(doc):
    by_name = {h["name"]: h for h in doc["hypotheses"]}
    high, low = by_name["good_high"], by_name["good_low"]
    assert high["expectations"][0]["passed"] is True  # a's neurons of the input layer move a exactly
    assert low["expectations"][0]["passed"] is False
    assert high["preflight"]["task_accuracy"] == 1.0
    assert high["variables"]["a"]["site"]["trivial"] is True  # the input encoding realises a: flagged
    assert doc["passed"] is False


def _line_of(doc, name: str) -> int:
    return next(i for i, line in enumerate(doc["spec"]["text"].splitlines(), 1) if f"hypothesis {name} " in line)


def test_a_tokenizer_that_maps_input_values_to_unk_is_refused(tmp_path):
    """b's values are not in the word-level vocabulary: every prompt reads `[UNK]` for b, so no
    site can tell b's values apart -- refused before scoring, located at the hypothesis."""
    import sys
    sys.path.insert(0, str(HERE.parent / "engine"))
    from lm_kit import tiny_lm, word_tokenizer

    from abstract.engine.align import align_hypothesis
    from abstract.engine.errors import AlignmentError
    from abstract.engine.networks import LoadedNetwork
    from abstract.language import compile_text
    text = """
model Pet {
    domain Word = {red, green, blue}
    domain Animal = {dog, cat, owl}
    input a : Word
    input b : Animal
    output y : Word = a
}
network lm = hf "unused" { prompt "{a} {b} =", answer " {y}" }
hypothesis h : Pet ~ lm {
    align a to layer 0 position a via das(dim=2)
    train samples 16, seeds 1
}
"""
    net = LoadedNetwork("lm", "lm", tiny_lm("gpt2", seed=0).requires_grad_(False),
                        {"prompt": "{a} {b} =", "answer": " {y}"}, tokenizer=word_tokenizer())
    spec = compile_text(text, str(tmp_path / "pet.causal"))
    with pytest.raises(AlignmentError, match="cannot tell these input values apart") as err:
        align_hypothesis(spec, "h", progress=False, device="cpu", network=net)
    assert err.value.pos.line == 10  # the hypothesis line (the text starts with a newline)
