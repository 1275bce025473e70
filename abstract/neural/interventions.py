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
from typing import ClassVar, Iterable, Mapping, Optional, Sequence, Union

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal


class InterventionModule(nn.Module):
    """What every intervention module declares and offers to the engine.

    Capabilities live on the class, and the engine asks the class:

    * ``trainable``: it has parameters to fit (else it is only evaluated);
    * ``stackable``: the interventions of one grid row (one per position) can train in one
      stacked pass -- plain rotation subspaces, no per-step schedule;
    * ``shares_basis``: several variables aligned at one site can share one basis, each
      owning a block (:class:`MultiVariableDAS`);
    * ``needs_dim``: it swaps a subspace of a given size (``dim`` must fit the site);
    * ``parametrization``: how it is built, for the report (None: nothing to say).

    Training hooks (no-ops here): :meth:`schedule` before each step, :meth:`penalty` added
    to the loss.
    """

    kind: ClassVar[str] = ""
    trainable: ClassVar[bool] = False
    stackable: ClassVar[bool] = False
    shares_basis: ClassVar[bool] = False
    needs_dim: ClassVar[bool] = False
    parametrization: ClassVar[Optional[str]] = None
    # fitted in closed form on the training split's base activations at the site (PCA) before
    # any gradient step: the engine calls :meth:`fit_data` once (see ``featurizers.py``)
    fits_data: ClassVar[bool] = False

    @property
    def effective_dim(self) -> Optional[float]:
        """Size of the swapped subspace, for the report (None: not a subspace swap)."""
        return None

    def schedule(self, step: int, steps: int) -> None:
        """Called before training step ``step`` of ``steps`` (annealing); nothing by default."""

    def penalty(self) -> Optional[torch.Tensor]:
        """A term added to the training loss (None: nothing)."""
        return None

    def fit_data(self, base: torch.Tensor) -> None:
        """Fit on the training split's base activations ``[N, hidden]`` (``fits_data`` kinds)."""


class Intervention(InterventionModule):
    """Base class of single-source interventions: ``forward(base, source) -> new activation``,
    all ``[batch, hidden]``."""

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    @classmethod
    def build(cls, hidden: int, *, dim: Optional[int] = None, neurons: Sequence[int] = (),
              seed: Optional[int] = None) -> "Intervention":
        """A fresh intervention of this kind for a site of width ``hidden`` (seeded)."""
        return cls()

    @classmethod
    def misfit(cls, hidden: int, *, dim: Optional[int] = None, neurons: Sequence[int] = ()) -> Optional[str]:
        """Why this kind cannot be built for a site of width ``hidden`` (None: it can)."""
        if cls.needs_dim and (dim is None or not 1 <= dim <= hidden):
            return f"{cls.kind}(dim={dim}) does not fit a site of width {hidden}"
        return None


class VectorInterchange(Intervention):
    """Full-vector interchange: the site takes the source's whole activation."""

    kind = "full"

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return source.to(base.dtype).expand_as(base)


class NeuronInterchange(Intervention):
    """Replace the coordinates in ``indices`` with the source's; the rest stay the base's."""

    kind = "neurons"
    mask: torch.Tensor

    def __init__(self, hidden: int, indices: Iterable[int]):
        super().__init__()
        idx = torch.as_tensor(sorted(set(int(i) for i in indices)), dtype=torch.long)
        if idx.numel() and (idx.min() < 0 or idx.max() >= hidden):
            raise IndexError(f"neuron indices must lie in [0, {hidden})")
        mask = torch.zeros(hidden, dtype=torch.bool)
        mask[idx] = True
        self.hidden = hidden
        self.register_buffer("mask", mask)

    @classmethod
    def build(cls, hidden: int, *, dim: Optional[int] = None, neurons: Sequence[int] = (),
              seed: Optional[int] = None) -> "NeuronInterchange":
        return cls(hidden, neurons)

    @classmethod
    def misfit(cls, hidden: int, *, dim: Optional[int] = None, neurons: Sequence[int] = ()) -> Optional[str]:
        outside = sorted(i for i in set(neurons) if not 0 <= i < hidden)
        if outside:
            return (f"neurons {', '.join(map(str, outside))} are outside a site of width {hidden} "
                    f"(indices 0..{hidden - 1})")
        return None

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return torch.where(self.mask, source.to(base.dtype), base)


class OrthonormalColumns(nn.Module):
    """A learnable ``hidden x k`` matrix with orthonormal columns (``k = hidden``: a rotation).

    Kept orthonormal by ``torch.nn.utils.parametrizations.orthogonal``; initialised as a
    uniformly random orthogonal matrix from ``seed`` so runs are reproducible. For ``k <
    hidden`` torch completes the matrix to a square base with random columns drawn from the
    *global* RNG, and those columns steer training; with a seed they are drawn from the same
    seeded generator instead (the global RNG is neither read nor advanced), so a seeded module
    is the same in every process.
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
        if gen is None or weight.shape[1] == hidden:
            orthogonal(self, "weight")
            return
        filler = int(torch.randint(0, 2 ** 62, (1,), generator=gen))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(filler)
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


class SubspaceRotation(Intervention):
    """Swap a learned k-dim subspace: ``b + ((s - b) C) C^T`` with ``C`` (``hidden x k``)
    orthonormal columns. :class:`DAS` and :class:`LowRankRotation` are this one function
    class; they differ only in how many columns they hold (``held_columns``)."""

    trainable = True
    stackable = True
    shares_basis = True
    needs_dim = True

    def __init__(self, hidden: int, k: int, seed: Optional[int] = None):
        super().__init__()
        if not 0 <= k <= hidden:
            raise ValueError(f"subspace dimension k={k} must lie in [0, hidden={hidden}]")
        self.hidden, self.k = hidden, k
        self.rotation = OrthonormalColumns(hidden, self.held_columns(hidden, k), seed)

    @staticmethod
    def held_columns(hidden: int, k: int) -> int:  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    @classmethod
    def build(cls, hidden: int, *, dim: Optional[int] = None, neurons: Sequence[int] = (),
              seed: Optional[int] = None) -> "SubspaceRotation":
        return cls(hidden, int(dim if dim is not None else 1), seed=seed)

    @property
    def basis(self) -> torch.Tensor:
        """``hidden x k``: the columns spanning the aligned subspace."""
        return self.rotation.matrix[:, : self.k]

    @property
    def effective_dim(self) -> int:
        return self.k

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        if self.k == 0:
            return base
        return _project_swap(base, source, self.basis)


# Above this width `das` keeps only the k used columns of the rotation (LowRankRotation): the
# same function class (a k-dim subspace swap) without a hidden x hidden orthogonal matrix.
FULL_ROTATION_MAX = 256


class DAS(SubspaceRotation):
    """Distributed Alignment Search: a full rotation ``R``; the variable is its first k dims.

    Holds the whole ``hidden x hidden`` rotation (as in the original DAS); :meth:`build` gives
    a :class:`LowRankRotation` above ``FULL_ROTATION_MAX`` -- same function class, far cheaper.
    """

    kind = "das"
    parametrization = "full_rotation"

    @staticmethod
    def held_columns(hidden: int, k: int) -> int:
        return hidden

    @classmethod
    def build(cls, hidden: int, *, dim: Optional[int] = None, neurons: Sequence[int] = (),
              seed: Optional[int] = None) -> SubspaceRotation:
        impl = cls if hidden <= FULL_ROTATION_MAX else LowRankRotation
        return impl(hidden, int(dim if dim is not None else 1), seed=seed)


class LowRankRotation(SubspaceRotation):
    """DAS restricted to its ``k`` used columns: ``hidden x k`` orthonormal, O(hidden*k)."""

    kind = "lowrank"
    parametrization = "orthonormal_columns"

    @staticmethod
    def held_columns(hidden: int, k: int) -> int:
        return k


class BoundlessDAS(Intervention):
    """Full rotation plus a learned soft mask over rotated dims (Wu et al., 2023).

    ``m = sigmoid(mask_logits / temperature)``; rotated coordinates are mixed
    ``(1 - m) * b_rot + m * s_rot`` and rotated back. Anneal the temperature from high to
    low during training (:meth:`set_temperature`, :func:`temperature_schedule`) so the mask
    hardens; :attr:`effective_dim` (sum of the mask) is what the report shows. Trained
    (:meth:`build`, :meth:`schedule`, :meth:`penalty`): temperature ``START_TEMPERATURE ->
    END_TEMPERATURE`` linearly over the steps, ``PENALTY * mask_penalty()`` added to the loss.
    """

    kind = "boundless"
    trainable = True
    parametrization = "full_rotation_soft_mask"
    START_TEMPERATURE = 50.0
    END_TEMPERATURE = 0.1
    PENALTY = 1e-3
    temperature: torch.Tensor

    def __init__(self, hidden: int, seed: Optional[int] = None, init_logit: float = 0.0,
                 temperature: float = 1.0):
        super().__init__()
        self.hidden = hidden
        self.rotation = OrthonormalColumns(hidden, hidden, seed)
        self.mask_logits = nn.Parameter(torch.full((hidden,), float(init_logit)))
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self._schedule: tuple[int, list[float]] = (-1, [])

    @classmethod
    def build(cls, hidden: int, *, dim: Optional[int] = None, neurons: Sequence[int] = (),
              seed: Optional[int] = None) -> "BoundlessDAS":
        return cls(hidden, seed=seed, temperature=cls.START_TEMPERATURE)

    def set_temperature(self, temperature: float) -> None:
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.temperature.fill_(float(temperature))

    def schedule(self, step: int, steps: int) -> None:
        if self._schedule[0] != steps:
            self._schedule = (steps, temperature_schedule(self.START_TEMPERATURE, self.END_TEMPERATURE, steps))
        self.set_temperature(self._schedule[1][step])

    def penalty(self) -> torch.Tensor:
        return self.PENALTY * self.mask_penalty()

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


INTERVENTIONS: dict[str, type[Intervention]] = {
    cls.kind: cls for cls in (VectorInterchange, NeuronInterchange, DAS, LowRankRotation, BoundlessDAS)}


def intervention_class(kind: str) -> type[Intervention]:
    """The class of an intervention kind as a spec names it (``das``, ``lowrank``, ...)."""
    try:
        return INTERVENTIONS[kind]
    except KeyError:
        raise KeyError(f"unknown intervention kind {kind!r}; known: {', '.join(INTERVENTIONS)}") from None


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


class MultiVariableDAS(InterventionModule):
    """Several high-level variables at one site (MDAS-style), each with its own source.

    One shared ``hidden x sum(dims)`` orthonormal basis; variable ``v`` owns a disjoint block
    of its columns (in declaration order). Because the blocks are mutually orthogonal,
    ``forward(base, {"A": s_a, "B": s_b})`` swaps A's coordinates from ``s_a`` and B's from
    ``s_b`` at once; variables without a source keep the base's values. The kinds it can
    hold are those whose class says ``shares_basis``.
    """

    trainable = True
    parametrization = "multi_variable"

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
    """One variable's block of a :class:`MultiVariableDAS` as a ``(base, source)`` intervention."""

    parametrization = "multi_variable"

    def __init__(self, parent: MultiVariableDAS, name: str):
        super().__init__()
        self.parent, self.name = parent, name

    @property
    def effective_dim(self) -> int:
        sl = self.parent.slices[self.name]
        return sl.stop - sl.start

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        return self.parent(base, {self.name: source})


def random_rotation_control(hidden: int, k: int, seed: int = 0, low_rank: bool = True) -> Intervention:
    """The "random rotation" control: a seeded, untrained, frozen rotation intervention."""
    cls = LowRankRotation if low_rank else DAS
    return cls(hidden, k, seed=seed).requires_grad_(False).eval()


# PCA, SAE and mask kinds live in featurizers.py, which adds them to INTERVENTIONS when imported;
# imported here, after everything it builds on, so every kind is known wherever this module is.
from . import featurizers  # noqa: E402,F401
