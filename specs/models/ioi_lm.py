"""A tiny GPT-2 the tool trains itself on indirect object identification (no downloads).

The task (Wang et al. 2022, synthetic): two names are mentioned, one of them (the subject) is
mentioned again, and the answer is the other one (the indirect object)::

    "When Alice and Bob went to the store, Bob gave a drink to"  ->  " Alice"   (ABBA)
    "When Alice and Bob went to the store, Alice gave a drink to" -> " Bob"     (BABA)

Prompts are drawn from ``TEMPLATES`` (different words and lengths, so the names do not sit at
fixed positions) and from the first ``names`` of ``NAMES`` (one word-level token each), both
orders, and sometimes the same name twice (then the answer is that name). The first template
is the one ``specs/ioi_tiny.causal`` renders. Training stops at the first check where every
prompt of the canonical template (over every pair of names and both orders) and a fixed
random sample of the others is answered right with a small loss, or after ``steps``.

The tokenizer is built in code (``abstract.builders.word_tokenizer``): a word-level
``PreTrainedTokenizerFast`` over the templates' words, punctuation and the names, punctuation
runs split off. The model is ``GPT2LMHeadModel`` from a small ``GPT2Config``
(3 layers, width 64, 4 heads by default).

``build(names=16, layers=3, hidden=64, heads=4, steps=3000, ...)`` trains deterministically
(``seeded``: fixed seed, one thread); ``@cached_build`` writes model and tokenizer with
``save_pretrained`` to ``$ABSTRACT_CACHE_DIR/models/ioi_lm-<key>/`` (default
``.abstract-cache/``), keyed by every argument and this file's source, and returns what
``from_pretrained`` loads from that folder, so a cached load and a fresh build give the same
network. Returns ``(model, tokenizer)``;
``model.config.abstract_training`` records the steps taken.

Run it directly to train without the cache and print accuracy and time:
``python specs/models/ioi_lm.py``.
"""
from __future__ import annotations

import re
import time

import torch

from abstract.builders import cached_build, seeded, word_tokenizer

NAMES = ["Alice", "Bob", "Carol", "Dave", "Eve", "Frank", "Grace", "Heidi",
         "Ivan", "Judy", "Mallory", "Oscar", "Peggy", "Trent", "Victor", "Wendy"]
TEMPLATES = [
    "When {a} and {b} went to the store, {s} gave a drink to",
    "When {a} and {b} went to the park, {s} threw a ball to",
    "After {a} and {b} arrived at the office, {s} handed a book to",
    "Then, {a} and {b} had a long argument. Afterwards {s} said to",
    "While {a} and {b} were working at the school, {s} sent a letter to",
    "{a} and {b} found a key. {s} gave it to",
]
SPECIALS = {"[PAD]": 0, "[UNK]": 1, "[EOS]": 2}


def words(text: str) -> list[str]:
    """The pre-tokenizer's split (``tokenizers``' ``Whitespace``: word runs and punctuation runs)."""
    return re.findall(r"\w+|[^\w\s]+", text)


def make_tokenizer(names: int = 16):
    """Word-level fast tokenizer over the templates' words and the first ``names`` names
    (punctuation runs are tokens of their own: "store," is "store" ",")."""
    template_words = [w for t in TEMPLATES for w in words(t.format(a="", b="", s=""))]
    return word_tokenizer(template_words + NAMES[:names], specials=list(SPECIALS), punctuation=True)


def prompts(names: int = 16, templates: "list[int] | None" = None) -> list[tuple[str, str]]:
    """Every (prompt, answer name) over the chosen templates, every ordered pair of the first
    ``names`` names (equal pairs included) and both orders (ABBA: the second name repeated)."""
    out = []
    for t in (range(len(TEMPLATES)) if templates is None else templates):
        for a in NAMES[:names]:
            for b in NAMES[:names]:
                for order in ("ABBA", "BABA"):
                    s, io = (b, a) if order == "ABBA" else (a, b)
                    out.append((TEMPLATES[t].format(a=a, b=b, s=s), io))
    return out


def _encode(tok, rows: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, the index of each prompt's last token, and the answer token."""
    enc = tok([p for p, _ in rows], return_tensors="pt", padding=True)
    last = enc["attention_mask"].sum(1) - 1
    y = torch.tensor(tok.convert_tokens_to_ids([io for _, io in rows]))
    return enc["input_ids"], last, y


def _logits(model, ids: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """Next-token logits at each prompt's last token (right padding: the mask changes nothing
    before it, so none is passed)."""
    return model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[torch.arange(len(ids)), last]


def task_accuracy(model, tok, names: int = 16, templates: "list[int] | None" = None) -> float:
    """Next-token accuracy of the answer name over every prompt of the chosen templates."""
    ids, last, y = _encode(tok, prompts(names, templates))
    with torch.no_grad():
        return float((_logits(model, ids, last).argmax(-1) == y).float().mean())


def _config(tok, layers: int, hidden: int, heads: int):
    from transformers import GPT2Config
    return GPT2Config(n_layer=layers, n_embd=hidden, n_head=heads, n_inner=4 * hidden,
                      vocab_size=len(tok), n_positions=32, resid_pdrop=0.0, embd_pdrop=0.0,
                      attn_pdrop=0.0, bos_token_id=SPECIALS["[EOS]"], eos_token_id=SPECIALS["[EOS]"],
                      pad_token_id=SPECIALS["[PAD]"])


def _train(model, tok, names: int, steps: int, lr: float, weight_decay: float, seed: int,
           batch: int = 128, check_every: int = 100, target_loss: float = 0.02) -> int:
    """AdamW with a short warm-up on random batches of every prompt, stopping at the first check
    (every ``check_every`` steps) where the canonical template's prompts and a fixed sample of
    all prompts are all answered right with a mean loss at most ``target_loss`` (a margin, so
    the behaviour is not on a knife's edge), or after ``steps``. Returns the steps taken."""
    ids, last, y = _encode(tok, prompts(names))
    gen = torch.Generator().manual_seed(seed + 1)
    canon = torch.arange(len(prompts(names, [0])))  # template 0 comes first
    check = torch.cat([canon, torch.randperm(len(y), generator=gen)[:1000]])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100))
    step = 0
    while step < steps:
        model.train()
        idx = torch.randint(0, len(y), (batch,), generator=gen)
        loss = torch.nn.functional.cross_entropy(_logits(model, ids[idx], last[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        if step % check_every == 0:
            model.eval()
            with torch.no_grad():
                out = _logits(model, ids[check], last[check])
                if bool((out.argmax(-1) == y[check]).all()) and \
                        float(torch.nn.functional.cross_entropy(out, y[check])) <= target_loss:
                    break
    model.eval()
    return step


@cached_build("ioi_lm")
def build(names: int = 16, layers: int = 3, hidden: int = 64, heads: int = 4, steps: int = 3000, lr: float = 3e-3,
          weight_decay: float = 0.01, seed: int = 0):
    """Train the tiny IOI GPT-2 (``@cached_build``: or load it from the cache; ``cache=False``
    skips it); returns ``(model, tokenizer)``."""
    from transformers import GPT2LMHeadModel
    if not 2 <= names <= len(NAMES):
        raise ValueError(f"names must be in 2..{len(NAMES)}, got {names}")
    tok = make_tokenizer(names)
    with seeded(seed):  # tiny matmuls: one thread is fastest and bitwise reproducible
        model = GPT2LMHeadModel(_config(tok, layers, hidden, heads))
        taken = _train(model, tok, names, steps, lr, weight_decay, seed)
    model.config.abstract_training = {"task": "indirect object identification", "steps": taken}
    return model, tok


if __name__ == "__main__":  # pragma: no cover - manual check
    t = time.time()
    m, tk = build(cache=False)
    print(f"accuracy: canonical template {task_accuracy(m, tk, templates=[0]):.4f}, all templates "
          f"{task_accuracy(m, tk):.4f}, after {m.config.abstract_training['steps']} steps in {time.time() - t:.1f}s")
