"""The network of specs/equality.causal: an MLP trained on hierarchical equality.

The builder contract (what ``build`` returns, ``encode``, the logit order, what ``layer N`` is)
is abstract's docs/networks.md. In short: ``build(**options)`` returns a trained ``nn.Module``;
``encode(inputs)`` turns the causal model's inputs (dicts, values 0..3) into the forward's
input; the forward returns ``[batch, 2]`` logits (classes ``false``, ``true`` of ``label``);
``abstract_layers`` names the modules whose outputs are ``layer 0``, ``layer 1`` ...

Every shape is a fixed random vector; training draws *fresh* random vectors for every example,
so the network must learn equality itself rather than memorise 256 inputs. Training is seeded,
on CPU, single-threaded (deterministic), a few seconds; the weights are cached next to this file
(``.weights/``), keyed by the options and this file's text, so editing it retrains.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import nn


class ShapeEmbedding(nn.Module):
    """Shape indices ``[N, 4]`` -> concatenated shape vectors ``[N, 4 * embed]``; float inputs
    (the random vectors of training) pass through."""

    shapes: torch.Tensor

    def __init__(self, shapes: torch.Tensor):
        super().__init__()
        self.register_buffer("shapes", shapes)  # a buffer: the untrained control keeps it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shapes[x].flatten(1) if not x.is_floating_point() else x


class EqualityMLP(nn.Module):
    def __init__(self, width: int, depth: int, shapes: torch.Tensor):
        super().__init__()
        dims = [4 * shapes.shape[1]] + [width] * depth
        self.embed = ShapeEmbedding(shapes)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(dims[i], dims[i + 1]), nn.ReLU()) for i in range(depth))
        self.head = nn.Linear(width, 2)
        # layer 0 = the input embedding, layer k = the k-th hidden layer
        self.abstract_layers = ["embed"] + [f"layers.{i}" for i in range(depth)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # head(layers[-1](... embed(x))): abstract's fast path
        x = self.embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)

    def encode(self, inputs: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """``[{"a": 0, "b": 3, "c": 1, "d": 1}, ...]`` -> shape indices ``[N, 4]``."""
        return torch.tensor([[int(v) for v in x.values()] for x in inputs], dtype=torch.long)


def _batch(gen: torch.Generator, n: int, embed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Fresh random shape vectors, each pair equal half of the time (balanced labels)."""
    v = torch.rand(n, 4, embed, generator=gen) * 2 - 1
    left, right = torch.rand(n, generator=gen) < 0.5, torch.rand(n, generator=gen) < 0.5
    v[left, 1] = v[left, 0]
    v[right, 3] = v[right, 2]
    return v.flatten(1), (left == right).long()


def build(width: int = 16, depth: int = 3, embed: int = 4, steps: int = 1000, batch: int = 256,
          lr: float = 0.01, seed: int = 0) -> EqualityMLP:
    """Train (or load from the cache next to this file) the MLP; abstract puts it in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    shapes = torch.rand(4, embed, generator=gen) * 2 - 1  # the spec's four shapes
    torch.manual_seed(seed)
    model = EqualityMLP(width, depth, shapes)
    options = repr(sorted(dict(width=width, depth=depth, embed=embed, steps=steps, batch=batch, lr=lr,
                               seed=seed).items()))
    key = hashlib.sha256((options + Path(__file__).read_text()).encode()).hexdigest()[:16]
    path = Path(__file__).parent / ".weights" / f"{Path(__file__).stem}-{key}.pt"
    if path.is_file():
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: one thread is fastest and bitwise reproducible
    try:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        for _ in range(steps):
            x, y = _batch(gen, batch, embed)
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    finally:
        torch.set_num_threads(threads)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)  # atomic: a parallel run never reads half a file
    return model
