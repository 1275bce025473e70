"""`hold` through the whole engine (train, measure, controls) on a tiny copy-task GPT-2.

The copy task (``y = a``): the value of ``a`` reaches the last token, where the answer is read,
only through attention. An interchange at the ``{a}`` token's residual before layer 0 moves the
answer exactly (IIA 1.0); with every attention output held at base it cannot reach the last
token at all, so every intervened prediction is the unmodified network's -- IIA equals what doing
nothing scores, exactly, for the trained alignment and the controls alike.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from lm_kit import COPY_MODEL, tiny_lm, train_copy, word_tokenizer  # noqa: E402

from abstract.engine.align import align_hypothesis  # noqa: E402
from abstract.language import compile_text  # noqa: E402
from abstract.language.errors import SpecError  # noqa: E402

NET = '{ prompt "{a} {b} =", answer " {y}" }'
STEPS = 30  # partly trained is enough: the claims below hold exactly for any weights
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def copy_lm_dir(tmp_path_factory):
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: threads only contend
    tok = word_tokenizer()
    model = tiny_lm("gpt2")
    assert train_copy(model, tok, steps=STEPS) >= 0.5
    out = tmp_path_factory.mktemp("lm") / "copy-gpt2"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    yield out
    torch.set_num_threads(threads)


def _text(lm_dir, body: str) -> str:
    return COPY_MODEL + f'network lm = hf "{lm_dir}" {NET}\n' + body


def _spec(tmp_path, lm_dir, body: str):
    return compile_text(_text(lm_dir, body), str(tmp_path / "copy.causal"))


BODY = """
hypothesis free : Copy ~ lm {
    align a to layer 0 component resid_pre position a via full()
    train samples 40, epochs 1, batch 16, seeds 1
    data test 200, dev 40, min_accuracy 0
}
hypothesis cut : Copy ~ lm {
    align a to layer 0 component resid_pre position a via full()
    hold component attn_out, layer 0..1
    train samples 40, epochs 1, batch 16, seeds 1
    data test 200, dev 40, min_accuracy 0
    control random_network
}
hypothesis cut_das : Copy ~ lm {
    align a to layer 0 component resid_pre position a via das(dim=4)
    hold component attn_out, layer 0
    hold component attn_out, layer 1, position last
    train samples 64, epochs 1, batch 32, seeds 1
    data test 100, dev 40, min_accuracy 0
    control random_rotation, random_network
}
"""


def test_holding_every_attention_leaves_exactly_do_nothing(tmp_path, copy_lm_dir):
    spec = _spec(tmp_path, copy_lm_dir, BODY)
    free = align_hypothesis(spec, "free", progress=False, device="cpu")
    moved = free["variables"]["a"]["iia"]
    assert moved["correct"] > moved["do_nothing"]["correct"] + 40 and "holds" not in free  # the site matters
    for name in ("cut", "cut_das"):
        res = align_hypothesis(spec, name, progress=False, device="cpu")
        v = res["variables"]["a"]
        nothing = v["iia"]["do_nothing"]
        assert v["iia"]["correct"] == nothing["correct"], name  # every prediction is the base network's
        assert v["iia"]["n"] == nothing["n"]
        assert v["iia"]["correct"] < 0.5 * v["iia"]["n"]
        if "random_rotation" in v["controls"]:  # the controls run with the same holds
            assert v["controls"]["random_rotation"]["correct"] == nothing["correct"]
    cut = align_hypothesis(spec, "cut", progress=False, device="cpu")
    assert cut["holds"] == [{"components": ["attn_out"], "layers": [0, 1], "positions": None,
                             "text": "hold component attn_out, layer 0..1",
                             "location": f"{tmp_path / 'copy.causal'}:{_line(BODY, 'layer 0..1')}:5"}]


def _line(body: str, needle: str) -> int:
    """The 1-based line of ``needle`` in the spec built from ``body``."""
    return next(i for i, line in enumerate(_text("x", body).split("\n"), 1) if needle in line)


def test_hold_layer_past_the_network_is_a_located_error(tmp_path, copy_lm_dir):
    body = """
hypothesis deep : Copy ~ lm {
    align a to layer 0 component resid_pre position a via full()
    hold component mlp_out, layer 1..5
    train samples 40, epochs 1, batch 16, seeds 1
    data test 40, dev 40, min_accuracy 0
}
"""
    spec = _spec(tmp_path, copy_lm_dir, body)
    with pytest.raises(SpecError) as e:
        align_hypothesis(spec, "deep", progress=False, device="cpu")
    assert "hold layer 2 is out of range: the network has 2 layers" in e.value.message
    column = 1 + body.index("layer 1..5") - body.index("    hold")
    assert (e.value.pos.line, e.value.pos.column) == (_line(body, "layer 1..5"), column)


@pytest.mark.slow  # a fresh interpreter loading torch and transformers
def test_cli_verify_exits_2_with_the_location(tmp_path, copy_lm_dir):
    path = tmp_path / "deep.causal"
    body = """
hypothesis deep : Copy ~ lm {
    align a to layer 0 component resid_pre position a via full()
    hold component attn_out, layer 7
    train samples 40, epochs 1, batch 16, seeds 1
    data test 40, dev 40, min_accuracy 0
}
"""
    path.write_text(_text(copy_lm_dir, body))
    out = subprocess.run([sys.executable, "-m", "abstract.cli", "verify", str(path), "--device", "cpu"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2, out.stdout + out.stderr
    text = out.stdout + out.stderr
    assert f"{path}:{_line(body, 'layer 7')}:30: error: hold layer 7 is out of range" in text
    assert "Traceback" not in text
