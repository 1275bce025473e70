"""abstract.builders: the word-level tokenizer, seeding, and the cached-build decorator.

The cache is keyed by the options (defaults applied) and the builder file's source; a hit
does not call the builder and gives the same weights; a plain module is rebuilt from its
skeleton plus safetensors weights, an HF pair through save_pretrained/from_pretrained.
"""
from __future__ import annotations

import importlib.util
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from abstract.builders import build_key, cached_build, seeded, word_tokenizer


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ABSTRACT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


def test_word_tokenizer_is_a_word_level_fast_tokenizer(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast
    tok = word_tokenizer(["red", "green", "=", "red"])
    assert isinstance(tok, PreTrainedTokenizerFast)
    assert tok.get_vocab() == {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2, "red": 3, "green": 4, "=": 5}
    assert tok("red  green =")["input_ids"] == [3, 4, 5]
    assert tok(" green", add_special_tokens=False)["input_ids"] == [4]
    assert tok("blue")["input_ids"] == [1]
    assert (tok.pad_token_id, tok.eos_token_id, tok.bos_token_id) == (0, 2, 2)
    tok.save_pretrained(tmp_path / "tok")
    again = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert again("green red =")["input_ids"] == [4, 3, 5]
    with pytest.raises(ValueError, match="not in the vocabulary"):
        word_tokenizer(["a"], specials=["<pad>"])


def test_seeded_fixes_the_seed_and_restores_the_callers_state() -> None:
    threads = torch.get_num_threads()
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    with seeded(7):
        a = torch.rand(4)
        assert torch.get_num_threads() == 1
    with seeded(7, threads=None):
        b = torch.rand(4)
    assert torch.equal(a, b)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's stream was not advanced
    assert torch.get_num_threads() == threads


class Small(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.lin = nn.Linear(3, width)


def test_a_plain_module_is_cached_as_safetensors_and_rebuilt_from_its_skeleton(cache_dir: Path) -> None:
    calls: list[dict] = []

    def skeleton(width: int = 4, seed: int = 0, **_):
        with seeded(seed):
            return Small(width)

    @cached_build("small", skeleton=skeleton)
    def build(width: int = 4, seed: int = 0, steps: int = 3):
        calls.append(dict(width=width, seed=seed, steps=steps))
        model = skeleton(width, seed)
        with torch.no_grad():
            model.lin.weight.add_(float(steps))  # "training"
        return model

    first = build(width=5)
    assert calls == [dict(width=5, seed=0, steps=3)]
    files = sorted(p.name for p in cache_dir.iterdir())
    assert len(files) == 1 and files[0].startswith("small-") and files[0].endswith(".safetensors")
    again = build(5)  # the same options, positionally: a hit, the builder is not called
    assert len(calls) == 1
    assert all(torch.equal(p, q) for p, q in zip(first.state_dict().values(), again.state_dict().values()))
    assert not again.training
    build(width=5, steps=4)  # other options: another entry
    assert len(calls) == 2 and len(list(cache_dir.iterdir())) == 2
    build(width=5, cache=False)  # no cache: built again, nothing written
    assert len(calls) == 3 and len(list(cache_dir.iterdir())) == 2
    (cache_dir / files[0]).write_bytes(b"damaged")  # a damaged entry is rebuilt, not fatal
    assert torch.equal(build(width=5).lin.weight, first.lin.weight)
    assert len(calls) == 4


def test_a_plain_module_without_a_skeleton_is_refused() -> None:
    @cached_build("bare")
    def build(width: int = 2):
        return Small(width)

    with pytest.raises(TypeError, match="needs skeleton="):
        build()
    assert isinstance(build(cache=False), Small)


def _builder_file(tmp_path: Path, name: str, body: str):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_key_covers_the_builders_source(tmp_path: Path) -> None:
    body = "def build(width=2):\n    return width * {k}\n"
    one = _builder_file(tmp_path, "one", body.format(k=1))
    two = _builder_file(tmp_path, "two", body.format(k=2))
    assert build_key(one.build, {"width": 2}) != build_key(two.build, {"width": 2})
    assert build_key(one.build, {"width": 2}) == build_key(one.build, {"width": 2})
    assert build_key(one.build, {"width": 2}) != build_key(one.build, {"width": 3})
    assert build_key(one.build, {"width": 2}, version=1) != build_key(one.build, {"width": 2})


def test_a_language_model_is_cached_with_save_pretrained(cache_dir: Path) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel
    calls: list[int] = []

    @cached_build("lm")
    def build(hidden: int = 8, seed: int = 0):
        calls.append(hidden)
        tok = word_tokenizer(["a", "b"])
        with seeded(seed):
            model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=hidden, n_head=2, vocab_size=len(tok),
                                               n_positions=8))
        model.config.abstract_note = "kept"
        return model, tok

    model, tok = build()
    (folder,) = list(cache_dir.iterdir())
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    assert model.config.abstract_note == "kept" and tok("a b")["input_ids"] == [3, 4]
    again, _ = build()
    fresh, _ = build(cache=False)
    assert calls == [8, 8]  # the hit did not call the builder; cache=False did
    for (n, p), q, r in zip(model.named_parameters(), again.parameters(), fresh.parameters()):
        assert torch.equal(p, q) and torch.equal(p, r), n


def test_a_word_tokenizer_can_split_punctuation_off() -> None:
    from abstract.builders import word_tokenizer
    words = ["store", ",", "Bob", "."]
    plain, split = word_tokenizer(words), word_tokenizer(words, punctuation=True)
    assert split.convert_ids_to_tokens(split("store, Bob.")["input_ids"]) == ["store", ",", "Bob", "."]
    assert plain.convert_ids_to_tokens(plain("store, Bob.")["input_ids"]) == ["[UNK]", "[UNK]"]
