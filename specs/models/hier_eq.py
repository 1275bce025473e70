"""The MLP the tool trains itself on hierarchical equality (as in the DAS paper).

Input encoding: every shape is a fixed random vector in R^``embed`` (seeded), and an input
(a, b, c, d) is the concatenation of its four shape vectors (4 * 4 = 16 dims by default).
Training draws *fresh* random vectors for every example (each pair equal half of the time),
so the network must learn equality itself instead of memorising 256 inputs; the four shapes
of the spec's domain are then just four particular vectors. This is what makes the
hierarchical (left/right) structure the natural solution, as in Geiger et al. (2023).

``build(width=16, depth=3, ...)`` trains deterministically (fixed seed, CPU) in seconds;
``@cached_build`` (``abstract.builders``, docs/networks.md) caches the weights as safetensors
under ``$ABSTRACT_CACHE_DIR/models/`` (default ``.abstract-cache/``), keyed by all arguments
and this file's source, and rebuilds a cached network with ``skeleton``.
The module has ``embed`` (fixed shape vectors), ``layers`` (ModuleList of Linear+ReLU),
``head`` (2 logits: classes False, True) and ``encode(inputs)`` for the engine.
Sites: ``layer 0`` is the input embedding, ``layer k`` the k-th hidden layer (DAS paper numbering).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from abstract.builders import cached_build, seeded


class ShapeEmbedding(nn.Module):
    """Shape indices ``[N, 4]`` -> concatenated fixed shape vectors ``[N, 4 * embed]``.

    Vector inputs (``[N, 4 * embed]`` floats, as in training) pass through unchanged."""

    shapes: torch.Tensor  # a buffer, declared for the type checker

    def __init__(self, shapes: torch.Tensor):
        super().__init__()
        self.register_buffer("shapes", shapes)  # [n_shapes, embed]: the domain's shape vectors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.long, torch.int32, torch.int64):
            return self.shapes[x].flatten(1)
        return x


class HierEqMLP(nn.Module):
    """``head(layers[2](layers[1](layers[0](embed(x)))))``: a plain chain (cacheable).

    Site layers (``abstract_layers``) follow the DAS paper's numbering: layer 0 is the input
    embedding, layer k (1..depth) the k-th hidden layer. So ``layer 1`` is the first hidden
    layer, where the paper finds both equalities."""

    def __init__(self, width: int, depth: int, n_args: int, embed: int, shapes: torch.Tensor):
        super().__init__()
        dims = [n_args * embed] + [width] * depth
        self.embed = ShapeEmbedding(shapes)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(dims[i], dims[i + 1]), nn.ReLU()) for i in range(depth))
        self.head = nn.Linear(width, 2)
        self.abstract_layers = ["embed"] + [f"layers.{i}" for i in range(depth)]

    @property
    def shapes(self) -> torch.Tensor:
        return self.embed.shapes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.head(x)

    def encode(self, inputs: Sequence[Mapping[str, Any]]) -> torch.Tensor:
        """Causal-model inputs (dicts in the model's input order, values 0..n-1) -> ``[N, 4]`` indices."""
        return torch.tensor([[int(v) for v in x.values()] for x in inputs], dtype=torch.long)


def _fresh_batch(gen: torch.Generator, n: int, embed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random shape vectors; each pair is equal with probability 1/2 (labels balanced)."""
    v = torch.rand(n, 4, embed, generator=gen) * 2 - 1
    eq_left = torch.rand(n, generator=gen) < 0.5
    eq_right = torch.rand(n, generator=gen) < 0.5
    v[eq_left, 1] = v[eq_left, 0]
    v[eq_right, 3] = v[eq_right, 2]
    return v.flatten(1), (eq_left == eq_right).long()


def task_accuracy(model: HierEqMLP) -> float:
    """Accuracy on all 256 inputs over the domain's fixed shapes."""
    n = model.shapes.shape[0]
    grid = torch.cartesian_prod(*[torch.arange(n)] * 4)
    x = grid
    label = ((grid[:, 0] == grid[:, 1]) == (grid[:, 2] == grid[:, 3])).long()
    with torch.no_grad():
        return float((model(x).argmax(-1) == label).float().mean())


def _train(model: HierEqMLP, steps: int, batch: int, lr: float, seed: int, embed: int) -> None:
    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        x, y = _fresh_batch(gen, batch, embed)
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


def skeleton(width: int = 16, depth: int = 3, embed: int = 4, n_shapes: int = 4, seed: int = 0,
             **training: Any) -> HierEqMLP:
    """The untrained network of ``build``'s options: seeded shape vectors and initial weights."""
    gen = torch.Generator().manual_seed(seed)
    shapes = torch.rand(n_shapes, embed, generator=gen) * 2 - 1
    with seeded(seed, threads=None):
        return HierEqMLP(width, depth, 4, embed, shapes)


@cached_build("hier_eq", skeleton=skeleton)
def build(width: int = 16, depth: int = 3, embed: int = 4, n_shapes: int = 4, seed: int = 0,
          steps: int = 2000, batch: int = 256, lr: float = 1e-2) -> HierEqMLP:
    """Train the hierarchical-equality MLP (``@cached_build``: or load it from the cache;
    ``cache=False`` skips it); returns it in eval mode."""
    model = skeleton(width, depth, embed, n_shapes, seed)
    with seeded(seed):  # small matmuls: one thread is fastest and bitwise reproducible
        _train(model, steps, batch, lr, seed, embed)
    return model.eval()


if __name__ == "__main__":  # pragma: no cover - manual check
    import time
    t = time.time()
    m = build(cache=False)
    print(f"task accuracy {task_accuracy(m):.4f} in {time.time() - t:.1f}s")
