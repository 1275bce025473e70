"""Bases other than a learned rotation to align in: PCA, SAE features, a learned neuron mask.

All three are interchange interventions on a ``[batch, hidden]`` activation, like those of
:mod:`~abstract.neural.interventions`, and all are written so that an intervention that moves
nothing (no feature, a closed mask, ``source == base``) returns the base exactly:

* :class:`PCASubspace` (``pca(dim=k)``): a *frozen* basis, the top-k principal directions of
  the base activations at the site on the training split (fitted in closed form by
  :meth:`fit_data`, never by gradient). The swap is ``b + ((s - b) P) P^T``. PCA is fitted on
  *centred* activations (directions of largest variance, not of largest second moment, which
  a large mean would dominate); the mean itself cancels in the swap (``(s - mu) - (b - mu) =
  s - b``), so swapping centred coordinates and swapping raw ones give the same activation.
* :class:`SAEFeatures` (``sae("file.safetensors", features=[...])``): encoder and decoder of a
  sparse autoencoder read from safetensors (SAELens names ``W_enc [hidden, F]``, ``b_enc [F]``,
  ``W_dec [F, hidden]``, ``b_dec [hidden]``, optional ``threshold [F]`` for JumpReLU),
  ``f(x) = act((x - b_dec) W_enc + b_enc)``. The listed features take the source's
  activations and the reconstruction error of the base is kept exactly:
  ``dec(f_new) + (b - dec(f_b)) = b + ((f_s - f_b) * m) W_dec``.
* :class:`NeuronMask` (``mask(l0=..., gate=sigmoid|hard_concrete)``): a learned gate ``g`` over
  the site's neurons, ``b + g * (s - b)``, trained with a sparsity penalty whose weight ramps
  linearly from 0 to ``l0`` over training; evaluated with the gate binarised (a unit is open
  when its logit is > 0), so the scored intervention is a neuron interchange of the open units
  and :attr:`effective_dim` is their number.

Every tensor the module needs is a registered parameter or buffer, so a ``state_dict``
round trip restores a fitted PCA, a loaded SAE or a trained mask.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn

from .interventions import INTERVENTIONS, Intervention, _project_swap, temperature_schedule


class FeaturizerError(ValueError):
    """A featurizer the spec asks for cannot be built (missing file, wrong shapes, a feature
    out of range); the engine locates it at the ``via`` clause."""


class Configured(Intervention):
    """An intervention built from its spec options (more than ``dim``/``neurons``)."""

    @classmethod
    def configure(cls, hidden: int, options: Mapping[str, Any], *, dim: Optional[int], seed: Optional[int],
                  spec_dir: Optional[Path] = None) -> Intervention:  # pragma: no cover - per class
        raise NotImplementedError


# ---------------------------------------------------------------------------------- PCA
class PCASubspace(Intervention):
    """Swap the top-k principal subspace of the site's base activations (training split)."""

    kind = "pca"
    trainable = True  # "fitted on the training split": in closed form, no gradient parameters
    fits_data = True
    needs_dim = True
    parametrization = "pca"
    components: torch.Tensor
    mean: torch.Tensor
    explained: torch.Tensor
    fitted: torch.Tensor

    def __init__(self, hidden: int, k: int):
        super().__init__()
        if not 1 <= k <= hidden:
            raise ValueError(f"pca dimension k={k} must lie in [1, hidden={hidden}]")
        self.hidden, self.k = hidden, k
        self.register_buffer("components", torch.zeros(hidden, k))
        self.register_buffer("mean", torch.zeros(hidden))
        self.register_buffer("explained", torch.zeros(()))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @classmethod
    def build(cls, hidden: int, *, dim: Optional[int] = None, neurons: Sequence[int] = (),
              seed: Optional[int] = None) -> "PCASubspace":
        return cls(hidden, int(dim if dim is not None else 1))

    @torch.no_grad()
    def fit_data(self, base: torch.Tensor) -> None:
        """Fit the basis on ``base`` (``[N, hidden]``, the training split's base activations):
        eigenvectors of the covariance, largest eigenvalue first (float64, deterministic)."""
        x = base.detach().to("cpu", torch.float64).reshape(-1, self.hidden)
        if x.shape[0] < 2:
            raise FeaturizerError(f"pca needs at least 2 training activations to fit, got {x.shape[0]}")
        mu = x.mean(0)
        xc = x - mu
        cov = xc.T @ xc / (x.shape[0] - 1)
        vals, vecs = torch.linalg.eigh(cov)  # ascending
        order = torch.argsort(vals, descending=True, stable=True)
        vals, vecs = vals[order].clamp_min(0), vecs[:, order]
        total = float(vals.sum())
        self.components.copy_(vecs[:, : self.k].to(self.components.dtype))
        self.mean.copy_(mu.to(self.mean.dtype))
        self.explained.fill_(float(vals[: self.k].sum()) / total if total > 0 else 0.0)
        self.fitted.fill_(True)

    @property
    def basis(self) -> torch.Tensor:
        return self.components

    @property
    def effective_dim(self) -> int:
        return self.k

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        if not bool(self.fitted):
            raise RuntimeError("pca basis used before fit_data(): fit it on the training split first")
        return _project_swap(base, source, self.components)


# ---------------------------------------------------------------------------------- SAE
SAE_KEYS = ("W_enc", "b_enc", "W_dec", "b_dec")


def find_file(path: str, spec_dir: Optional[Path]) -> Optional[Path]:
    """``path`` relative to the spec's folder (then the working directory), or None."""
    p = Path(path)
    bases = [Path()] if p.is_absolute() else [b for b in (spec_dir, Path.cwd()) if b is not None]
    return next((b / p for b in bases if (b / p).is_file()), None)


def read_sae(path: str, hidden: int, spec_dir: Optional[Path] = None) -> dict[str, torch.Tensor]:
    """The SAE tensors of ``path`` checked against a site of width ``hidden`` (float32)."""
    found = find_file(path, spec_dir)
    if found is None:
        where = ", ".join(str(b) for b in (spec_dir, Path.cwd()) if b is not None)
        raise FeaturizerError(f'sae file "{path}" not found (looked in {where})')
    try:
        from safetensors.torch import load_file
        raw = load_file(str(found))
    except Exception as e:  # a corrupt or foreign file: say what it is, not where it broke
        raise FeaturizerError(f'sae file "{path}" is not a readable safetensors file: {e}') from None
    missing = [k for k in SAE_KEYS if k not in raw]
    if missing:
        raise FeaturizerError(f'sae file "{path}" lacks {", ".join(missing)}: an SAE needs W_enc [hidden, F], '
                              f'b_enc [F], W_dec [F, hidden], b_dec [hidden] (threshold [F] optional); '
                              f'it holds {", ".join(sorted(raw)) or "nothing"}')
    t = {k: v.to(torch.float32) for k, v in raw.items() if k in SAE_KEYS + ("threshold",)}
    w_enc = t["W_enc"]
    if w_enc.dim() != 2 or w_enc.shape[0] != hidden:
        raise FeaturizerError(f'sae file "{path}": W_enc is {_shape(w_enc)} but the site is {hidden} wide '
                              f"(an SAE for this site needs W_enc [{hidden}, F])")
    f = int(w_enc.shape[1])
    want = {"b_enc": (f,), "W_dec": (f, hidden), "b_dec": (hidden,), "threshold": (f,)}
    for key, shape in want.items():
        if key in t and tuple(t[key].shape) != shape:
            raise FeaturizerError(f'sae file "{path}": {key} is {_shape(t[key])}, expected {list(shape)} '
                                  f"(W_enc is [{hidden}, {f}]: {f} features on a site {hidden} wide)")
    bad = [k for k, v in t.items() if not torch.isfinite(v).all()]
    if bad:
        raise FeaturizerError(f'sae file "{path}": {", ".join(bad)} hold non-finite values')
    return t


def _shape(x: torch.Tensor) -> str:
    return "[" + ", ".join(str(int(d)) for d in x.shape) + "]"


class SAEFeatures(Configured):
    """Interchange chosen features of a sparse autoencoder, the base's error term kept exact."""

    kind = "sae"
    parametrization = "sae"
    W_enc: torch.Tensor
    b_enc: torch.Tensor
    W_dec: torch.Tensor
    b_dec: torch.Tensor
    threshold: torch.Tensor
    feature_mask: torch.Tensor

    def __init__(self, W_enc: torch.Tensor, b_enc: torch.Tensor, W_dec: torch.Tensor, b_dec: torch.Tensor,
                 features: Sequence[int], threshold: Optional[torch.Tensor] = None):
        super().__init__()
        self.hidden, n = int(W_enc.shape[0]), int(W_enc.shape[1])
        outside = sorted(i for i in set(features) if not 0 <= int(i) < n)
        if outside:
            raise FeaturizerError(f"features {', '.join(map(str, outside))} are outside the SAE's {n} features "
                                  f"(indices 0..{n - 1})")
        self.features = tuple(sorted(set(int(i) for i in features)))
        mask = torch.zeros(n)
        mask[list(self.features)] = 1.0
        for name, value in (("W_enc", W_enc), ("b_enc", b_enc), ("W_dec", W_dec), ("b_dec", b_dec)):
            self.register_buffer(name, value.detach().clone().float())
        self.jump = threshold is not None
        self.register_buffer("threshold", (threshold if threshold is not None else torch.zeros(n)).detach().clone()
                             .float())
        self.register_buffer("feature_mask", mask)

    @classmethod
    def configure(cls, hidden: int, options: Mapping[str, Any], *, dim: Optional[int], seed: Optional[int],
                  spec_dir: Optional[Path] = None) -> "SAEFeatures":
        t = read_sae(str(options["path"]), hidden, spec_dir)
        return cls(t["W_enc"], t["b_enc"], t["W_dec"], t["b_dec"], tuple(options.get("features", ())),
                   t.get("threshold"))

    @property
    def effective_dim(self) -> int:
        """How many features are interchanged."""
        return len(self.features)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pre = (x - self.b_dec) @ self.W_enc + self.b_enc
        if self.jump:
            return pre * (pre > self.threshold).to(pre.dtype)
        return torch.relu(pre)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        return f @ self.W_dec + self.b_dec

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        b, s = base.to(self.W_enc.dtype), source.to(self.W_enc.dtype)
        delta = (self.encode(s) - self.encode(b)) * self.feature_mask
        return (b + delta @ self.W_dec).to(base.dtype)


# ---------------------------------------------------------------------------------- mask
GATES = ("sigmoid", "hard_concrete")


class NeuronMask(Configured):
    """A learned gate over the site's neurons: ``b + g * (s - b)``.

    Training: ``g = sigmoid(logits / T)``, ``T`` annealed geometrically ``START_TEMPERATURE ->
    END_TEMPERATURE``; penalty ``lambda_t * sum(g)`` (the expected number of open units) with
    ``lambda_t`` ramping linearly from 0 to ``l0`` over the steps, so the gate first finds what
    the variable needs and is then pruned. Evaluation: ``g = [logits > 0]``.
    """

    kind = "mask"
    trainable = True
    parametrization = "sigmoid_mask"
    DEFAULT_L0 = 0.01
    INIT_LOGIT = 0.0  # on the boundary, closed: a unit opens only when the loss asks for it
    START_TEMPERATURE = 1.0
    END_TEMPERATURE = 0.05
    temperature: torch.Tensor
    l0: torch.Tensor

    def __init__(self, hidden: int, l0: float = DEFAULT_L0, seed: Optional[int] = None):
        super().__init__()
        if l0 < 0:
            raise ValueError("l0 must be >= 0")
        self.hidden = hidden
        self.logits = nn.Parameter(torch.full((hidden,), float(self.INIT_LOGIT)))
        self.register_buffer("temperature", torch.tensor(float(self.START_TEMPERATURE)))
        self.register_buffer("l0", torch.tensor(float(l0)))
        self.weight = 0.0  # the penalty weight of the current step
        self._temps: tuple[int, list[float]] = (-1, [])

    @classmethod
    def build(cls, hidden: int, *, dim: Optional[int] = None, neurons: Sequence[int] = (),
              seed: Optional[int] = None) -> "NeuronMask":
        return cls(hidden, seed=seed)

    @classmethod
    def configure(cls, hidden: int, options: Mapping[str, Any], *, dim: Optional[int], seed: Optional[int],
                  spec_dir: Optional[Path] = None) -> "NeuronMask":
        impl = HardConcreteMask if options.get("gate", "sigmoid") == "hard_concrete" else NeuronMask
        return impl(hidden, float(options.get("l0", cls.DEFAULT_L0)), seed=seed)

    def schedule(self, step: int, steps: int) -> None:
        if self._temps[0] != steps:
            self._temps = (steps, temperature_schedule(self.START_TEMPERATURE, self.END_TEMPERATURE, steps,
                                                       "geometric"))
        if self._temps[1]:
            self.temperature.fill_(self._temps[1][step])
        self.weight = float(self.l0) * (step / (steps - 1) if steps > 1 else 1.0)

    def open_probability(self) -> torch.Tensor:
        """Per unit, how open the gate is during training (what the penalty sums)."""
        return torch.sigmoid(self.logits / self.temperature)

    def train_gate(self) -> torch.Tensor:
        return self.open_probability()

    def penalty(self) -> torch.Tensor:
        return self.weight * self.open_probability().sum()

    @property
    def open_units(self) -> tuple[int, ...]:
        """The units whose gate is on at evaluation."""
        return tuple(int(i) for i in torch.nonzero(self.logits.detach() > 0).flatten().tolist())

    @property
    def effective_dim(self) -> int:
        """The number of open units: the mask's effective size."""
        return len(self.open_units)

    def forward(self, base: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return torch.where(self.logits > 0, source.to(base.dtype), base)
        g = self.train_gate()
        b = base.to(g.dtype)
        return (b + g * (source.to(g.dtype) - b)).to(base.dtype)


class HardConcreteMask(NeuronMask):
    """The gate as a hard-concrete variable (Louizos et al., 2018): a stretched, clipped
    concrete sample per unit during training (noise from the intervention's own seeded
    generator), penalty ``lambda_t * sum(P(g > 0))``; evaluation as :class:`NeuronMask`."""

    parametrization = "hard_concrete_mask"
    BETA, GAMMA, ZETA = 2.0 / 3.0, -0.1, 1.1

    def __init__(self, hidden: int, l0: float = NeuronMask.DEFAULT_L0, seed: Optional[int] = None):
        super().__init__(hidden, l0, seed)
        self._gen = torch.Generator().manual_seed(int(seed) if seed is not None else 0)

    def schedule(self, step: int, steps: int) -> None:
        self.weight = float(self.l0) * (step / (steps - 1) if steps > 1 else 1.0)

    def open_probability(self) -> torch.Tensor:
        return torch.sigmoid(self.logits - self.BETA * math.log(-self.GAMMA / self.ZETA))

    def train_gate(self) -> torch.Tensor:
        u = torch.rand(self.hidden, generator=self._gen).clamp(1e-6, 1 - 1e-6).to(self.logits.device)
        s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + self.logits) / self.BETA)
        return (s * (self.ZETA - self.GAMMA) + self.GAMMA).clamp(0.0, 1.0)


FEATURIZERS: tuple[type[Intervention], ...] = (PCASubspace, SAEFeatures, NeuronMask)
INTERVENTIONS.update({cls.kind: cls for cls in FEATURIZERS})
