"""Builders for the executor tests: a tiny GPT-2 (seeded, untrained) (rows of positions, the
stacked path) and a random MLP (position-free sites). Deterministic: every Ray worker that
builds them gets the driver's weights (the worker checks the fingerprint)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engine"))

from lm_kit import tiny_lm, word_tokenizer  # noqa: E402


def copy_lm():
    """Untrained (seeded): the contract is about where cells run, not what they find."""
    import torch
    with torch.random.fork_rng():
        return tiny_lm("gpt2", vocab=16, hidden=32, layers=2, seed=0), word_tokenizer()


def random_mlp(width: int = 12, depth: int = 3, inputs: int = 6, classes: int = 9, seed: int = 0):
    import torch
    from torch import nn
    gen = torch.Generator().manual_seed(seed)
    dims = [inputs] + [width] * depth

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Sequential(nn.Linear(dims[i], dims[i + 1]), nn.Tanh())
                                        for i in range(depth))
            self.head = nn.Linear(width, classes)
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.8)

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return self.head(x)

    return MLP()
