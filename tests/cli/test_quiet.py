"""`--quiet` silences every progress bar of a run, the network's weight loading included.

Loading a Hugging Face network prints transformers' "Loading weights" bar; without `--quiet`
it is there (so the test can fail), with `--quiet` stderr holds no bar at all, and the
library's own setting is restored afterwards (a notebook or test in the same process keeps it).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from lm_kit import COPY_MODEL, tiny_lm, train_copy, word_tokenizer  # noqa: E402

from abstract.cli import main  # noqa: E402

BODY = """
hypothesis at_a : Copy ~ lm {
    align a to layer 0 component resid_pre position a via full()
    train samples 40, epochs 1, batch 16, seeds 1
    data test 60, dev 20
    expect iia(a) >= 0.5
}
"""


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tok = word_tokenizer()
    model = tiny_lm("gpt2")
    assert train_copy(model, tok, steps=40) == 1.0
    root = tmp_path_factory.mktemp("quiet")
    model.save_pretrained(root / "lm")
    tok.save_pretrained(root / "lm")
    spec = root / "copy.causal"
    spec.write_text(COPY_MODEL + f'network lm = hf "{root / "lm"}" {{ prompt "{{a}} {{b}} =", answer " {{y}}" }}\n'
                    + BODY)
    return spec


def _bars(text: str) -> bool:
    return "Loading weights" in text or "%|" in text or "it/s]" in text


def test_quiet_silences_weight_loading_bars(spec_file: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from transformers.utils import logging as hf_logging
    assert hf_logging.is_progress_bar_enabled()
    args = ["verify", str(spec_file), "--device", "cpu", "--no-cache", "--cache-dir", str(tmp_path)]
    assert main(args) == 0
    loud = capfd.readouterr().err
    assert "Loading weights" in loud  # the bar this option exists to silence
    assert main(args + ["--quiet"]) == 0
    out, err = capfd.readouterr()
    assert not _bars(err), err
    assert "PASS" in out
    assert hf_logging.is_progress_bar_enabled()  # restored after the run
