"""pca and mask at a token position of a tiny language model (the copy task, ``y = a``).

Known by construction: at ``resid_pre`` of layer 0, the token of slot ``{a}`` holds a's word
embedding plus a constant position embedding, so the base activations there vary only inside
the span of the six centred word embeddings (rank <= 5). ``pca(dim=5)`` then spans every
difference ``s - b`` and is exactly the full interchange (IIA 1.0, as ``full()``), while
``pca(dim=1)`` keeps one direction of five and cannot tell all six words apart. The mask
reaches the same IIA by opening some of the 32 units.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from lm_kit import COPY_MODEL, tiny_lm, train_copy, word_tokenizer  # noqa: E402

from abstract.engine.align import align_hypothesis  # noqa: E402
from abstract.language import compile_text  # noqa: E402

NET = '{ prompt "{a} {b} =", answer " {y}" }'


@pytest.fixture(scope="module")
def copy_lm_dir(tmp_path_factory):
    tok = word_tokenizer()
    model = tiny_lm("gpt2")
    assert train_copy(model, tok, steps=200) == 1.0
    out = tmp_path_factory.mktemp("lm") / "copy-gpt2"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.mark.slow  # trains a tiny GPT-2 first (a few seconds alone, minutes on a loaded machine)
def test_pca_and_mask_at_a_token_position(tmp_path, copy_lm_dir):
    torch.set_num_threads(1)
    text = COPY_MODEL + f'network lm = hf "{copy_lm_dir}" {NET}\n' + """
hypothesis pca5 : Copy ~ lm {
    align a to layer 0 component resid_pre position a via pca(dim=5)
    train samples 64, epochs 1, batch 32, seeds 1
    data test 120, dev 40, informative true
}
hypothesis pca1 : Copy ~ lm {
    align a to layer 0 component resid_pre position a via pca(dim=1)
    train samples 64, epochs 1, batch 32, seeds 1
    data test 120, dev 40, informative true
}
hypothesis masked : Copy ~ lm {
    align a to layer 0 component resid_pre position a via mask
    train samples 128, epochs 2, batch 32, lr 0.05, seeds 1
    data test 120, dev 40, informative true
}
"""
    spec = compile_text(text, str(tmp_path / "copy.causal"))
    five = align_hypothesis(spec, "pca5", progress=False, device="cpu")["variables"]["a"]
    one = align_hypothesis(spec, "pca1", progress=False, device="cpu")["variables"]["a"]
    assert five["iia"]["correct"] == five["iia"]["n"] == 120
    assert five["intervention"]["explained_variance"] == pytest.approx(1.0, abs=1e-3)
    assert one["iia"]["max"] < 0.9 and one["intervention"]["explained_variance"] < 0.9
    masked = align_hypothesis(spec, "masked", progress=False, device="cpu")["variables"]["a"]
    itv = masked["intervention"]
    assert masked["iia"]["max"] >= 0.9 and 0 < itv["effective_dim"] == len(itv["open_units"]) <= 32
