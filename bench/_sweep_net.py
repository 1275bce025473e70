"""The benchmark sweep's network: a seeded random MLP (every Ray worker builds the same one)."""
from __future__ import annotations

import torch
from torch import nn


def build(width: int = 256, depth: int = 8, inputs: int = 8, classes: int = 16, seed: int = 0) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    dims = [inputs] + [width] * depth

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList(nn.Sequential(nn.Linear(dims[i], dims[i + 1]), nn.Tanh())
                                        for i in range(depth))
            self.head = nn.Linear(width, classes)
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.randn(p.shape, generator=gen) / max(1, p.shape[-1]) ** 0.5 * 1.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            for layer in self.layers:
                x = layer(x)
            return self.head(x)

    return MLP()
