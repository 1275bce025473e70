"""Prompts whose values tokenize to different lengths, padding, and class tokens read in context.

The tokenizers are built in code: a word-level vocabulary where ``_`` is its own token, so
``dark_red`` is three tokens and ``red`` one (a slot's token index moves with the values), and
a SentencePiece-style one (Metaspace: ``▁red``) whose spelling of a word depends on context.
"""
from __future__ import annotations

import pytest
import torch

from abstract.engine.encoders import make_encoder
from abstract.engine.networks import LoadedNetwork
from abstract.language import compile_text
from abstract.neural.runner import make_runner
from abstract.neural.sites import NAMED_POSITIONS, Site

MODEL = """
model Copy {
    domain Color = {red, dark_red, blue, light_blue}
    input a, b : Color
    output y : Color = a
}
"""
WORDS = ["red", "dark", "blue", "light", "_", "="]


def split_tokenizer(padding_side: str = "right"):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2}
    for w in WORDS:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(),
                                                 pre_tokenizers.Split("_", behavior="isolated")])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]",
                                   padding_side=padding_side)


def gpt2(vocab: int = 16, seed: int = 0):
    import transformers as T
    torch.manual_seed(seed)
    cfg = T.GPT2Config(n_layer=2, n_embd=32, n_head=4, vocab_size=vocab, n_positions=32, bos_token_id=2,
                       eos_token_id=2, pad_token_id=0)
    return T.AutoModelForCausalLM.from_config(cfg).eval().requires_grad_(False)


def encoder_for(tok, module=None):
    model = compile_text(MODEL, "copy.causal").models["Copy"]
    net = LoadedNetwork("lm", "lm", module if module is not None else gpt2(),
                        {"prompt": "{a} {b} =", "answer": " {y}"}, tokenizer=tok)
    return make_encoder(net, model), net


BASES = [{"a": "dark_red", "b": "blue"}, {"a": "red", "b": "light_blue"}, {"a": "red", "b": "red"}]
SOURCES = [{"a": "blue", "b": "red"}, {"a": "light_blue", "b": "dark_red"}, {"a": "dark_red", "b": "blue"}]


@pytest.mark.parametrize("side", ["right", "left"])
def test_slot_positions_follow_each_prompt(side):
    enc, _ = encoder_for(split_tokenizer(side))
    x = enc.encode(BASES)
    # "dark _ red blue =" / "red light _ blue =" / "red red =" (right-padded whatever the tokenizer says)
    assert x[NAMED_POSITIONS]["a"].tolist() == [2, 0, 0]
    assert x[NAMED_POSITIONS]["b"].tolist() == [3, 3, 1]
    assert x["attention_mask"].tolist()[2] == [1, 1, 1, 0, 0]
    assert enc.site_position("a") == "slot:a"
    assert enc.position_token("b", BASES[1]) == "blue" and enc.position_token("last", BASES[1]) == "="


def test_slot_interchange_equals_a_hand_patched_forward():
    """Full-vector interchange at resid_pre of layer 0 on slot `a`, bases and sources of other
    lengths: the cached run equals GPT-2 run on embeddings patched by hand."""
    enc, net = encoder_for(split_tokenizer())
    lm, runner = net.module, make_runner(net.module)
    xb, xs = enc.encode(BASES), enc.encode(SOURCES)
    site = Site(layer=0, component="resid_pre", position="slot:a")
    last = enc.logit_positions(xb)
    got = runner.run_from_site(runner.prepare(xb, site), runner.collect(xs, site), logit_positions=last)

    wte, wpe = lm.transformer.wte, lm.transformer.wpe
    embeds = wte(xb["input_ids"]).clone()
    for i in range(len(BASES)):
        pb, ps = int(xb[NAMED_POSITIONS]["a"][i]), int(xs[NAMED_POSITIONS]["a"][i])
        src_vec = wte(xs["input_ids"][i, ps]) + wpe(torch.tensor(ps))
        embeds[i, pb] = src_vec - wpe(torch.tensor(pb))  # GPT-2 adds the base position back
    want = lm(inputs_embeds=embeds, attention_mask=xb["attention_mask"]).logits
    want = want[torch.arange(len(BASES)), last]
    assert torch.allclose(got, want, atol=1e-5)
    with_hook = runner.run_with_hook(xb, site, runner.collect(xs, site), logit_positions=last)
    assert torch.allclose(got, with_hook, atol=1e-5)


def test_left_padding_tokenizer_does_not_shift_gpt2():
    """GPT-2 has absolute positions: a left-padded prompt would be read at shifted positions."""
    enc, net = encoder_for(split_tokenizer("left"))
    x = enc.encode(BASES)
    batch = net.module(input_ids=x["input_ids"], attention_mask=x["attention_mask"]).logits
    for i, b in enumerate(BASES):
        alone = enc.encode([b])
        one = net.module(**{k: alone[k] for k in ("input_ids", "attention_mask")}).logits[0, -1]
        assert torch.allclose(batch[i, enc.logit_positions(x)[i]], one, atol=1e-5)


def sentencepiece_style_tokenizer():
    """BPE with a Metaspace pre-tokenizer that marks only the first word (as Llama's does)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    corpus = ["x = true", "x = false", "x=true", "x=false", "the cat is true", "true false"] * 50
    tok.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>", "<s>", "</s>"]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                   pad_token="</s>")


def test_class_tokens_are_read_in_context():
    """Alone, "true" is spelled as a first word ('▁true'); after the prompt it is not."""
    tok = sentencepiece_style_tokenizer()
    model = compile_text("model T {\n    input v : bool\n    output s : bool = v\n}\n", "t.causal").models["T"]
    net = LoadedNetwork("lm", "lm", gpt2(vocab=120), {"prompt": "x =", "answer": "{s}"}, tokenizer=tok)
    enc = make_encoder(net, model)
    prompt = tok("x =", add_special_tokens=False)["input_ids"]
    for value, token in zip(("false", "true"), enc.class_tokens):
        in_context = tok("x =" + value, add_special_tokens=False)["input_ids"][len(prompt)]
        alone = tok(value, add_special_tokens=False)["input_ids"][0]
        assert token == in_context and token != alone


def test_answer_must_render_outputs():
    from abstract.language import SpecError
    model = compile_text(MODEL, "copy.causal").models["Copy"]
    net = LoadedNetwork("lm", "lm", gpt2(), {"prompt": "{a} {b} =", "answer": " {a}"}, tokenizer=split_tokenizer())
    with pytest.raises(SpecError, match=r"answer slot \{a\} is not an output"):
        make_encoder(net, model)
