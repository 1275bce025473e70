"""Head sites through the engine, on tiny code-built language models (no downloads).

The copy task (``y = a``, prompt ``"{a} {b} ="``) makes one head-level result exact: the
``=`` token reads ``a`` only through attention, so the group of *every* head of both layers
at the last token, interchanged whole (``full()``), carries everything the last token knows
about ``a``: IIA equals the network's task accuracy, 1.0. A single head grid then checks the
wiring (a head axis in the grid, the chosen site naming its head), and the located errors of
the sites phase (a head past the layer's heads, resid_mid on a parallel-residual block).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from lm_kit import COPY_MODEL, tiny_lm, train_copy, word_tokenizer  # noqa: E402

from abstract.engine.align import align_hypothesis  # noqa: E402
from abstract.engine.networks import LoadedNetwork  # noqa: E402
from abstract.engine.run import HypothesisRun  # noqa: E402
from abstract.language import compile_text  # noqa: E402
from abstract.language.errors import SpecError  # noqa: E402

NET = '{ prompt "{a} {b} =", answer " {y}" }'
PROMPT = {"prompt": "{a} {b} =", "answer": " {y}"}


@pytest.fixture(scope="module")
def copy_net():
    tok = word_tokenizer()
    model = tiny_lm("gpt2")
    assert train_copy(model, tok, steps=200) == 1.0
    return LoadedNetwork("lm", "lm", model.requires_grad_(False), PROMPT, tokenizer=tok)


def _spec(tmp_path, body: str):
    return compile_text(COPY_MODEL + f'network lm = hf "unused" {NET}\n' + body, str(tmp_path / "copy.causal"))


def test_all_heads_at_the_last_token_carry_the_copied_word(tmp_path, copy_net):
    spec = _spec(tmp_path, """
hypothesis every_head : Copy ~ lm {
    align a to heads [0.0, 0.1, 0.2, 0.3, 1.0, 1.1, 1.2, 1.3] position last via full()
    train samples 16, epochs 1, batch 16, seeds 1
    data test 200, dev 40
}
hypothesis layer0_heads_at_b : Copy ~ lm {
    align a to heads [0.0, 0.1, 0.2, 0.3] position b via full()
    train samples 16, epochs 1, batch 16, seeds 1
    data test 200, dev 40
}
""")
    v = align_hypothesis(spec, "every_head", progress=False, device="cpu", network=copy_net)["variables"]["a"]
    assert v["iia"]["correct"] == v["iia"]["n"] == 200
    assert v["site"]["component"] == "head_out" and v["site"]["heads"][0] == [0, 0] and len(v["site"]["heads"]) == 8
    assert v["intervention"]["hidden"] == 8 * 8  # 8 heads of width 32 / 4
    w = align_hypothesis(spec, "layer0_heads_at_b", progress=False, device="cpu", network=copy_net)["variables"]["a"]
    assert w["iia"]["mean"] < 0.5, "the b token's heads do not carry a: this must not score like the real site"


def test_a_head_grid_has_a_head_axis(tmp_path, copy_net):
    spec = _spec(tmp_path, """
hypothesis grid : Copy ~ lm {
    align a via full()
    search layer *, component head_out, head [0, 2], position [b, last]
    train samples 16, epochs 1, batch 16, seeds 1
    data test 60, dev 40
}
""")
    v = align_hypothesis(spec, "grid", progress=False, device="cpu", network=copy_net)["variables"]["a"]
    g = v["grid"]
    assert g["layers"] == [0, 1] and g["heads"] == [0, 0, 2, 2] and g["positions"] == ["b", "last", "b", "last"]
    assert g["position_tokens"] == ["b", "=", "b", "="] or g["position_tokens"][1] == "="
    assert all(len(row) == 4 and all(x is not None for x in row) for row in g["iia_mean"])
    assert v["site"]["component"] == "head_out" and v["site"]["head"] in (0, 2)
    assert g["chosen_site"]["head"] == v["site"]["head"]


@pytest.mark.parametrize("family, line, needle, fragment", [
    ("gpt2", "align a to layer 1 head 4 position last", "head 4", "head 4 out of range: layer 1 has 4 heads"),
    ("llama", "align a to layer 1 component v head 2 position last", "head 2", "2 key-value heads"),
    ("gpt2", "align a to heads [0.1, 1.7] position last", "heads [0.1, 1.7]", "head 7 out of range"),
    ("gpt2", "align a to heads [0.1, 5.0] position last", "heads [0.1, 5.0]", "layer 5 is out of range"),
    ("gpt2", "align a\n    search layer *, component q, head [1, 9]", "head [1, 9]", "search head 9 is out of range"),
    ("gpt_neox", "align a to layer 0 component resid_mid", "component resid_mid", "use_parallel_residual"),
])
def test_head_site_problems_are_located_before_any_training(tmp_path, family, line, needle, fragment):
    lm = tiny_lm(family, seed=1).requires_grad_(False)
    net = LoadedNetwork("lm", "lm", lm, PROMPT, tokenizer=word_tokenizer())
    head = COPY_MODEL + f'network lm = hf "unused" {NET}\n'
    text = head + f"hypothesis h : Copy ~ lm {{\n    {line}\n    train samples 16, seeds 1\n}}\n"
    run = HypothesisRun(compile_text(text, str(tmp_path / "copy.causal")), "h", progress=False, device="cpu",
                        network=net)
    run.load()
    with pytest.raises(SpecError) as err:
        run.resolve_sites()
    assert fragment in err.value.message, err.value.message
    before = text[:text.index(needle)]
    assert (err.value.pos.line, err.value.pos.column) == (before.count("\n") + 1, len(before) - before.rfind("\n"))
