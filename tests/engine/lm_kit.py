"""Tiny language models and a word-level tokenizer built in code (no downloads).

The copy task: prompt ``"{a} {b} ="``, answer ``" {y}"`` with ``y = a``. A tiny GPT-2 learns
it in a couple of seconds, which gives the engine's LM path a network whose behaviour is
known exactly.
"""
from __future__ import annotations

import torch

WORDS = ["red", "green", "blue", "cyan", "pink", "gray"]

COPY_MODEL = """
model Copy {
    domain Word = {red, green, blue, cyan, pink, gray}
    input a, b : Word
    output y : Word = a
}
"""


def word_tokenizer(words=WORDS):
    """A word-level fast tokenizer: whitespace-split words, ``=``, and special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2, "=": 3}
    for w in words:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   eos_token="[EOS]")


def tiny_lm(family: str = "gpt2", vocab: int = 16, hidden: int = 32, layers: int = 2, seed: int = 0):
    import transformers as T
    common = dict(num_hidden_layers=layers, hidden_size=hidden, num_attention_heads=4, vocab_size=vocab,
                  intermediate_size=2 * hidden, pad_token_id=0, bos_token_id=2, eos_token_id=2,
                  max_position_embeddings=32)
    if family == "gpt2":
        cfg = T.GPT2Config(n_layer=layers, n_embd=hidden, n_head=4, vocab_size=vocab, n_positions=32,
                           bos_token_id=2, eos_token_id=2, pad_token_id=0)
    elif family == "gpt_neox":
        cfg = T.GPTNeoXConfig(**common, rotary_pct=0.5)
    elif family == "llama":
        cfg = T.LlamaConfig(**common, num_key_value_heads=2)
    elif family == "qwen2":
        cfg = T.Qwen2Config(**common, num_key_value_heads=2)
    else:
        raise ValueError(family)
    torch.manual_seed(seed)
    return T.AutoModelForCausalLM.from_config(cfg).eval()


def train_copy(model, tok, steps: int = 300, seed: int = 0):
    """Teach ``model`` the copy task on all 36 prompts (answer token after ``=``)."""
    torch.manual_seed(seed)
    prompts, answers = [], []
    for a in WORDS:
        for b in WORDS:
            prompts.append(f"{a} {b} =")
            answers.append(tok.convert_tokens_to_ids(a))
    enc = tok(prompts, return_tensors="pt", padding=True)
    y = torch.tensor(answers)
    model.train().requires_grad_(True)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        logits = model(**enc).logits[:, -1]
        loss = torch.nn.functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval().requires_grad_(False)
    with torch.no_grad():
        acc = (model(**enc).logits[:, -1].argmax(-1) == y).float().mean().item()
    return acc
