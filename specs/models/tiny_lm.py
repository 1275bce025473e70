"""A tiny GPT-2 the tool trains itself on a selection task (no downloads).

The task: prompt ``"{x} {y} {z} {w} ="`` (digits ``0..digits-1``, one word-level token
each), answer ``" {out}"`` with ``out = z if x > y else w``: compare the first two digits,
then copy one of the last two. Training draws random prompts from all ``digits ** 4``
(625 by default) and stops at the first check where every prompt is answered right, so the
network's behaviour is known exactly and the only question is *how* it computes the answer,
which is what ``specs/tiny_lm.causal`` asks.

The tokenizer is built in code: a ``tokenizers`` WordLevel model over the words ``0``..``9``
and ``=`` (plus ``[PAD]``, ``[UNK]``, ``[EOS]``) with a whitespace pre-tokenizer, wrapped in
``PreTrainedTokenizerFast``. The model is ``GPT2LMHeadModel`` from a small ``GPT2Config``
(3 layers, width 64, 4 heads by default).

``build(digits=5, layers=3, hidden=64, heads=4, steps=2000, ...)`` trains deterministically
(fixed seed, CPU, one thread; ``steps`` is a cap). The boilerplate is ``abstract.builders``
(docs/networks.md): ``word_tokenizer`` builds the tokenizer, ``seeded`` fixes the seed and
the thread count, and ``@cached_build`` writes model and tokenizer with ``save_pretrained`` to
``$ABSTRACT_CACHE_DIR/models/tiny_lm-<key>/`` (default ``.abstract-cache/``), keyed by every
argument and this file's source, and always returns what ``from_pretrained`` loads from that
folder (the loading code of ``hf "<folder>"``), so a cached load and a fresh build give the
same network. Returns ``(model, tokenizer)``; ``model.config.abstract_training`` records the
steps taken.

Run it directly to train without the cache and print accuracy and time:
``python specs/models/tiny_lm.py``.
"""
from __future__ import annotations

import itertools
import time

import torch

from abstract.builders import cached_build, seeded, word_tokenizer

DIGITS = [str(i) for i in range(10)]
PROMPT = "{x} {y} {z} {w} ="
SPECIALS = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2}


def make_tokenizer():
    """Word-level fast tokenizer over the task's words (whitespace-separated)."""
    return word_tokenizer(DIGITS + ["="], specials=list(SPECIALS))


def answer(x: int, y: int, z: int, w: int) -> int:
    """The task: if the first digit is bigger than the second, say the third, else the fourth."""
    return z if x > y else w


def task_data(tok, digits: int = 5):
    """All ``digits ** 4`` prompts, encoded, and the answer token of each."""
    inputs = list(itertools.product(range(digits), repeat=4))
    prompts = [PROMPT.format(x=x, y=y, z=z, w=w) for x, y, z, w in inputs]
    ids = tok(prompts, return_tensors="pt")["input_ids"]
    answers = torch.tensor([tok.convert_tokens_to_ids(str(answer(*xs))) for xs in inputs])
    return ids, answers


def task_accuracy(model, tok, digits: int = 5) -> float:
    """Next-token accuracy of the answer on every prompt."""
    ids, y = task_data(tok, digits)
    with torch.no_grad():
        return float((model(input_ids=ids).logits[:, -1].argmax(-1) == y).float().mean())


def _config(tok, layers: int, hidden: int, heads: int):
    from transformers import GPT2Config
    return GPT2Config(n_layer=layers, n_embd=hidden, n_head=heads, n_inner=4 * hidden,
                      vocab_size=len(tok), n_positions=8, resid_pdrop=0.0, embd_pdrop=0.0,
                      attn_pdrop=0.0, bos_token_id=SPECIALS["[EOS]"], eos_token_id=SPECIALS["[EOS]"],
                      pad_token_id=SPECIALS["[PAD]"])


def _train(model, tok, digits: int, steps: int, lr: float, weight_decay: float, seed: int,
           batch: int = 128, check_every: int = 50) -> int:
    """AdamW at a constant rate on random batches of the 10,000 prompts, stopping at the first
    check (every ``check_every`` steps) where every prompt is answered right, or after ``steps``.
    Returns the number of steps taken."""
    ids, y = task_data(tok, digits)
    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    step = 0
    while step < steps:
        model.train()
        idx = torch.randint(0, len(y), (batch,), generator=gen)
        loss = torch.nn.functional.cross_entropy(model(input_ids=ids[idx]).logits[:, -1], y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % check_every == 0:
            model.eval()
            with torch.no_grad():
                if bool((model(input_ids=ids).logits[:, -1].argmax(-1) == y).all()):
                    break
    model.eval()
    return step


@cached_build("tiny_lm")
def build(digits: int = 5, layers: int = 3, hidden: int = 64, heads: int = 4, steps: int = 2000, lr: float = 3e-3,
          weight_decay: float = 0.01, seed: int = 0):
    """Train the tiny GPT-2 (``@cached_build``: or load it from the cache; ``cache=False``
    skips it); returns ``(model, tokenizer)``."""
    from transformers import GPT2LMHeadModel
    tok = make_tokenizer()
    with seeded(seed):  # tiny matmuls: one thread is fastest and bitwise reproducible
        model = GPT2LMHeadModel(_config(tok, layers, hidden, heads))
        taken = _train(model, tok, digits, steps, lr, weight_decay, seed)
    model.config.abstract_training = {"task": "if x > y then z else w", "steps": taken}
    return model, tok


if __name__ == "__main__":  # pragma: no cover - manual check
    t = time.time()
    m, tk = build(cache=False)
    print(f"task accuracy {task_accuracy(m, tk):.4f} after {m.config.abstract_training['steps']} steps "
          f"in {time.time() - t:.1f}s")
