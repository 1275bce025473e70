"""Interchange interventions on a ``[batch, hidden]`` activation.

Every intervention maps (base activation ``b``, source activation ``s``) to the activation
the model should continue with. Rotation-based ones are written in *difference form*,
``out = b + ((s - b) R_k) R_k^T``, which equals "rotate, swap the first k rotated
coordinates, rotate back" but is exactly ``b`` when ``s == b`` and when ``k == 0``.
Vectors are rows, so a rotation ``R`` (``hidden x hidden``) maps ``x -> x @ R``.

A random-rotation control is simply an untrained rotation intervention built with a seed:
``DAS(hidden, k, seed=0).requires_grad_(False)`` (see :func:`random_rotation_control`).
"""
from __future__ import annotations

import math
from typing import Iterable, Mapping, Optional, Sequence, Union

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal


class Intervention(nn.Module):
    """Base class: ``forward(base, source) -> new activation``, all ``[batch, hidden]``."""

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


class VectorInterchange(Intervention):
    """Full-vector interchange: the site takes the source's whole activation."""

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return source.to(base.dtype).expand_as(base)


class NeuronInterchange(Intervention):
    """Replace the coordinates in ``indices`` with the source's; the rest stay the base's."""

    def __init__(self, hidden: int, indices: Iterable[int]):
        super().__init__()
        idx = torch.as_tensor(sorted(set(int(i) for i in indices)), dtype=torch.long)
        if idx.numel() and (idx.min() < 0 or idx.max() >= hidden):
            raise IndexError(f"neuron indices must lie in [0, {hidden})")
        mask = torch.zeros(hidden, dtype=torch.bool)
        mask[idx] = True
        self.hidden = hidden
        self.register_buffer("mask", mask)

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask, source.to(base.dtype), base)


class OrthonormalColumns(nn.Module):
    """A learnable ``hidden x k`` matrix with orthonormal columns (``k = hidden``: a rotation).

    Kept orthonormal by ``torch.nn.utils.parametrizations.orthogonal``; initialised as a
    uniformly random orthogonal matrix from ``seed`` so controls are reproducible.
    """

    def __init__(self, hidden: int, k: int, seed: Optional[int] = None):
        super().__init__()
        if not 0 <= k <= hidden:
            raise ValueError(f"subspace dimension k={k} must lie in [0, hidden={hidden}]")
        self.hidden, self.k = hidden, k
        weight = torch.empty(hidden, max(k, 1))
        gen = torch.Generator().manual_seed(seed) if seed is not None else None
        nn.init.orthogonal_(weight, generator=gen)
        self.weight = nn.Parameter(weight)
        orthogonal(self, "weight")

    @property
    def matrix(self) -> torch.Tensor:
        w = self.weight
        return w[:, : self.k]


def _project_swap(base: torch.Tensor, source: torch.Tensor, cols: torch.Tensor,
                  weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``b + (((s - b) @ cols) * weights) @ cols^T`` computed in the rotation's dtype."""
    dt = cols.dtype
    diff = source.to(dt) - base.to(dt)
    coef = diff @ cols
    if weights is not None:
        coef = coef * weights
    return (base.to(dt) + coef @ cols.T).to(base.dtype)


class DAS(Intervention):
    """Distributed Alignment Search: a full rotation ``R``; the variable is its first k dims.

    Holds the whole ``hidden x hidden`` rotation (as in the original DAS); use
    :class:`LowRankRotation` when ``k << hidden`` -- same function class, far cheaper.
    """

    def __init__(self, hidden: int, k: int, seed: Optional[int] = None):
        super().__init__()
        if not 0 <= k <= hidden:
            raise ValueError(f"subspace dimension k={k} must lie in [0, hidden={hidden}]")
        self.hidden, self.k = hidden, k
        self.rotation = OrthonormalColumns(hidden, hidden, seed)

    @property
    def basis(self) -> torch.Tensor:
        """``hidden x k``: the columns spanning the aligned subspace."""
        return self.rotation.matrix[:, : self.k]

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        if self.k == 0:
            return base
        return _project_swap(base, source, self.basis)


class LowRankRotation(Intervention):
    """DAS restricted to its ``k`` used columns: ``hidden x k`` orthonormal, O(hidden*k)."""

    def __init__(self, hidden: int, k: int, seed: Optional[int] = None):
        super().__init__()
        self.hidden, self.k = hidden, k
        self.rotation = OrthonormalColumns(hidden, k, seed)

    @property
    def basis(self) -> torch.Tensor:
        return self.rotation.matrix

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        if self.k == 0:
            return base
        return _project_swap(base, source, self.basis)


class BoundlessDAS(Intervention):
    """Full rotation plus a learned soft mask over rotated dims (Wu et al., 2023).

    ``m = sigmoid(mask_logits / temperature)``; rotated coordinates are mixed
    ``(1 - m) * b_rot + m * s_rot`` and rotated back. Anneal the temperature from high to
    low during training (:meth:`set_temperature`, :func:`temperature_schedule`) so the mask
    hardens; :attr:`effective_dim` (sum of the mask) is what the report shows.
    """

    def __init__(self, hidden: int, seed: Optional[int] = None, init_logit: float = 0.0,
                 temperature: float = 1.0):
        super().__init__()
        self.hidden = hidden
        self.rotation = OrthonormalColumns(hidden, hidden, seed)
        self.mask_logits = nn.Parameter(torch.full((hidden,), float(init_logit)))
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def set_temperature(self, temperature: float) -> None:
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.temperature.fill_(float(temperature))

    @property
    def mask(self) -> torch.Tensor:
        return torch.sigmoid(self.mask_logits / self.temperature)

    @property
    def effective_dim(self) -> float:
        """Sum of the soft mask: the size of the aligned subspace, for reporting."""
        return float(self.mask.detach().sum())

    def mask_penalty(self) -> torch.Tensor:
        """Sum of the mask; add ``lambda * mask_penalty()`` to the loss to keep it small."""
        return self.mask.sum()

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return _project_swap(base, source, self.rotation.matrix, self.mask)


def temperature_schedule(start: float, end: float, steps: int, kind: str = "linear") -> list[float]:
    """Temperatures for ``steps`` training steps, annealed ``start -> end`` (linear or geometric)."""
    if steps <= 1:
        return [float(end)] * max(steps, 0)
    if kind == "linear":
        return [start + (end - start) * i / (steps - 1) for i in range(steps)]
    if kind == "geometric":
        ratio = math.log(end / start)
        return [start * math.exp(ratio * i / (steps - 1)) for i in range(steps)]
    raise ValueError(f"unknown schedule kind {kind!r}")


class MultiVariableDAS(nn.Module):
    """Several high-level variables at one site (MDAS-style), each with its own source.

    One shared ``hidden x sum(dims)`` orthonormal basis; variable ``v`` owns a disjoint block
    of its columns (in declaration order). Because the blocks are mutually orthogonal,
    ``forward(base, {"A": s_a, "B": s_b})`` swaps A's coordinates from ``s_a`` and B's from
    ``s_b`` at once; variables without a source keep the base's values.
    """

    def __init__(self, hidden: int, dims: Union[Mapping[str, int], Sequence[tuple[str, int]]],
                 seed: Optional[int] = None):
        super().__init__()
        items = list(dims.items()) if isinstance(dims, Mapping) else list(dims)
        total = sum(k for _, k in items)
        if total > hidden:
            raise ValueError(f"variables need {total} dims but the site has only {hidden}")
        self.hidden = hidden
        self.slices: dict[str, slice] = {}
        start = 0
        for name, k in items:
            if name in self.slices:
                raise ValueError(f"variable {name!r} declared twice")
            self.slices[name] = slice(start, start + k)
            start += k
        self.rotation = OrthonormalColumns(hidden, total, seed)

    @property
    def variables(self) -> list[str]:
        return list(self.slices)

    def basis(self, name: str) -> torch.Tensor:
        return self.rotation.matrix[:, self.slices[name]]

    def forward(self, base: torch.Tensor, sources: Mapping[str, torch.Tensor]) -> torch.Tensor:
        unknown = set(sources) - set(self.slices)
        if unknown:
            raise KeyError(f"unknown variables {sorted(unknown)}; declared: {self.variables}")
        cols = self.rotation.matrix
        out = base.to(cols.dtype)
        for name, src in sources.items():
            sl = self.slices[name]
            if sl.stop > sl.start:
                c = cols[:, sl]
                out = out + ((src.to(cols.dtype) - base.to(cols.dtype)) @ c) @ c.T
        return out.to(base.dtype)

    def restricted(self, name: str) -> Intervention:
        """A single-variable ``(base, source)`` view sharing this module's parameters."""
        return _SingleVariable(self, name)


class _SingleVariable(Intervention):
    def __init__(self, parent: MultiVariableDAS, name: str):
        super().__init__()
        self.parent, self.name = parent, name

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return self.parent(base, {self.name: source})


def random_rotation_control(hidden: int, k: int, seed: int = 0, low_rank: bool = True) -> Intervention:
    """The "random rotation" control: a seeded, untrained, frozen rotation intervention."""
    cls = LowRankRotation if low_rank else DAS
    return cls(hidden, k, seed=seed).requires_grad_(False).eval()
