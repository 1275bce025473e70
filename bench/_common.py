"""Shared bits of the benchmarks: random GPT-2-shaped models and timing."""
from __future__ import annotations

import time
from typing import Callable

import torch


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def gpt2(layers: int, hidden: int, vocab: int = 512, seed: int = 0):
    import transformers as T
    torch.manual_seed(seed)
    cfg = T.GPT2Config(n_layer=layers, n_embd=hidden, n_head=max(1, hidden // 64), vocab_size=vocab,
                       n_positions=64, bos_token_id=0, eos_token_id=0)
    return T.AutoModelForCausalLM.from_config(cfg).to(device()).eval().requires_grad_(False)


def batch(n: int, seq: int, vocab: int = 512, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n, seq), generator=g)
    return {"input_ids": ids.to(device()), "attention_mask": torch.ones_like(ids).to(device())}


def timeit(fn: Callable[[], None], repeat: int = 5, warmup: int = 2) -> float:
    """Median seconds of ``fn`` (synchronising CUDA)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]
