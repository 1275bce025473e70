"""The `device_map` network option: passed to from_pretrained, bad ones refused at the option."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lm_kit import COPY_MODEL, tiny_lm, word_tokenizer  # noqa: E402

from abstract.cli import main  # noqa: E402
from abstract.engine.networks import load_network  # noqa: E402
from abstract.hypothesis.device_map import block_devices, parse_device_map  # noqa: E402
from abstract.language import compile_text  # noqa: E402
from abstract.language.errors import SpecError  # noqa: E402
from abstract.neural.runner import make_runner  # noqa: E402
from abstract.neural.sites import Site  # noqa: E402

import importlib.util  # noqa: E402

needs_accelerate = pytest.mark.skipif(importlib.util.find_spec("accelerate") is None,
                                      reason="device_map loading needs accelerate (the multi-device extra)")

HYP = """hypothesis h : Copy ~ lm {
    align a to layer 0 position a via das(dim=2)
    train samples 16, epochs 1, batch 8, seeds 1
    data test 8, dev 8, min_accuracy 0
}
"""


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("lm") / "gpt2-3"
    tiny_lm("gpt2", layers=3).save_pretrained(out)
    word_tokenizer().save_pretrained(out)
    return out


def _spec(tmp_path, lm_dir, device_map: str, compile: bool = True):
    text = COPY_MODEL + f'network lm = hf "{lm_dir}" {{ prompt "{{a}} {{b}} =", answer " {{y}}", ' \
        f'device_map {device_map} }}\n' + HYP
    path = tmp_path / "dm.causal"
    path.write_text(text)
    return (compile_text(text, str(path)) if compile else None), path


def test_parse_forms():
    assert parse_device_map("auto") == "auto" and parse_device_map("cuda:1") == "cuda:1"
    assert parse_device_map([["cuda:0", 2], "cpu"]) == (("cuda:0", 2), ("cpu", 1))
    assert block_devices((("cuda:0", 2), ("cpu", 1))) == ["cuda:0", "cuda:0", "cpu"]
    for bad in ("gpu0", [["cuda:0", 0]], [], 3):
        with pytest.raises(ValueError):
            parse_device_map(bad)


@needs_accelerate
def test_explicit_map_reaches_from_pretrained_and_runs(tmp_path, lm_dir, monkeypatch):
    import transformers
    seen = {}
    real = transformers.AutoModelForCausalLM.from_pretrained

    def spy(*a, **k):
        seen.update(k)
        return real(*a, **k)

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", spy)
    spec, _ = _spec(tmp_path, lm_dir, '[["cpu", 2], "cpu"]')
    net = load_network(spec.networks["lm"], spec.path)
    assert seen["device_map"] == {"": "cpu", "transformer.h.0": "cpu", "transformer.h.1": "cpu",
                                  "transformer.h.2": "cpu", "transformer.ln_f": "cpu"}
    plain = tiny_lm("gpt2", layers=3).eval()
    runner = make_runner(net.module)
    ids = {"input_ids": torch.tensor([[4, 5, 3], [6, 7, 3]]), "attention_mask": torch.ones(2, 3, dtype=torch.long)}
    site = Site(1, "resid_post", "last")
    cache = runner.prepare(ids, site)
    with torch.no_grad():
        assert torch.allclose(runner.run_from_site(cache, cache.base_act), plain(**ids).logits, atol=1e-5)


@needs_accelerate
def test_auto_map_loads(tmp_path, lm_dir):
    spec, _ = _spec(tmp_path, lm_dir, "auto")
    net = load_network(spec.networks["lm"], spec.path)
    assert net.is_lm


@pytest.mark.parametrize("written, message", [
    ('"cuda:7"', "names device 'cuda:7'"),
    pytest.param('[["cpu", 2]]', "places 2 blocks, but the model has 3", marks=needs_accelerate),
])
def test_bad_maps_are_located_errors(tmp_path, lm_dir, written, message):
    if "cuda" in written and torch.cuda.device_count() > 7:
        pytest.skip("this machine has the GPU")
    spec, _ = _spec(tmp_path, lm_dir, written)
    with pytest.raises(SpecError) as err:
        load_network(spec.networks["lm"], spec.path)
    assert message in str(err.value) and err.value.pos.line == COPY_MODEL.count("\n") + 1


def test_missing_device_exits_2_before_training(tmp_path, lm_dir, capsys):
    if torch.cuda.device_count() > 7:
        pytest.skip("this machine has the GPU")
    _, path = _spec(tmp_path, lm_dir, '[["cpu", 2], "cuda:7"]')
    assert main(["verify", str(path), "--quiet"]) == 2
    err = capsys.readouterr()
    assert "cuda:7" in err.err + err.out and "dm.causal:" in err.err + err.out


def test_without_accelerate_the_error_says_how_to_install(tmp_path, lm_dir, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "accelerate" else real(name, *a))
    spec, _ = _spec(tmp_path, lm_dir, "auto")
    with pytest.raises(SpecError) as err:
        load_network(spec.networks["lm"], spec.path)
    assert "accelerate" in str(err.value) and "pip install" in (err.value.hint or "")


def test_check_refuses_a_malformed_map(tmp_path, lm_dir):
    _, path = _spec(tmp_path, lm_dir, '"gpu0"', compile=False)
    assert main(["check", str(path)]) == 2
