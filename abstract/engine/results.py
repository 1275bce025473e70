"""Typed results of one hypothesis run, serialised to the results schema (docs/results-schema.md).

Torch-free on purpose: the report and verify side can import these without loading torch.
``to_json()`` gives exactly the HYPOTHESIS entry of the results document (and its parts).

Metrics are kept as (correct, n) so the verifier can put a confidence interval on them:

* IIA (interchange-intervention accuracy): share of test pairs on which the network, with
  the aligned site set by the intervention from the source, outputs the causal model's
  counterfactual label. Per seed; ``iia.correct/n`` is the best seed's test score, the best
  seed being chosen on the *dev* split (so the judged number is not the maximum of several
  draws on the same test pairs); ``mean`` and ``max`` over seeds are reported beside it.
* ``cause(A)`` (RAVEL): IIA of A's alignment restricted to test pairs whose A-interchange
  changes the label -- pairs where doing nothing would be scored wrong, so a site that
  ignores the source gets 0.
* ``isolate(A, B)`` (RAVEL): on pairs (base, source) where interchanging B from the source
  would give a different label than interchanging A, the share on which intervening on A's
  site (A's best seed) gives the *A-only* counterfactual label. A's subspace must not carry
  B's effect. Defined for every ordered pair of aligned variables, keyed ``"A,B"``.
* ``joint`` (``train ... joint true``): a group's IIA on pairs interchanging every variable
  of the group, each from its own source.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional, Sequence, Union

from .diagnostics import Diagnostics

Json = dict[str, Any]
Position = Union[int, str, None]


def rate(correct: int, n: int) -> float:
    """``correct / n`` rounded as the document shows it (0.0 when nothing was measured)."""
    return round(correct / n, 4) if n else 0.0


@dataclass(frozen=True)
class Count:
    """``correct`` right out of ``n`` measured."""

    correct: int
    n: int

    @property
    def value(self) -> float:
        return rate(self.correct, self.n)

    def to_json(self) -> Json:
        """The ``M`` shape of ``multi``: ``{"value", "correct", "n"}``."""
        return {"value": self.value, "correct": self.correct, "n": self.n}


@dataclass(frozen=True)
class SeedScore:
    """One training seed at one site: test counts and the dev counts it is selected by."""

    seed: int
    test: Count
    dev: Optional[Count] = None
    diagnostics: Optional[Diagnostics] = None  # loss curve, dev loss, train IIA (diagnostics.py)

    @property
    def iia(self) -> float:
        return self.test.value

    @property
    def selection_score(self) -> float:
        return self.dev.value if self.dev is not None else self.iia

    def to_json(self) -> Json:
        out: Json = {"seed": self.seed, "iia": self.iia, "correct": self.test.correct, "n": self.test.n}
        if self.dev is not None:
            out["dev_iia"] = self.dev.value
        if self.diagnostics is not None:
            out["diagnostics"] = self.diagnostics.to_json()
        return out


def best_seed_index(seeds: Sequence[SeedScore]) -> int:
    """The seed to judge: best dev IIA (test IIA when no dev score); ties go to the first."""
    return max(range(len(seeds)), key=lambda i: (seeds[i].selection_score, -i))


def iia_summary(seeds: Sequence[SeedScore]) -> Json:
    """Mean and max of test IIA over seeds; correct/n of the seed chosen on dev."""
    if not seeds:
        return {"mean": None, "max": None, "best_seed": None, "correct": 0, "n": 0}
    best = seeds[best_seed_index(seeds)]
    return {"mean": round(sum(s.iia for s in seeds) / len(seeds), 4), "max": max(s.iia for s in seeds),
            "best_seed": best.seed, "selected_by": "dev", "correct": best.test.correct, "n": best.test.n}


@dataclass(frozen=True)
class SiteRef:
    """A site as the spec spells it; ``token_index`` when the network resolved it to another
    index than spelled (e.g. ``-1`` spelled, token 4 used)."""

    layer: int
    component: str
    position: Position
    token_index: Optional[int] = None
    trivial: Optional[bool] = None  # realised by swapping the variable's input ancestors (engine/trivial.py)
    head: Optional[int] = None  # head components: the head
    heads: Optional[tuple[tuple[int, int], ...]] = None  # a head group: ((layer, head), ...)

    def to_json(self) -> Json:
        out: Json = {"layer": self.layer, "component": self.component, "position": self.position}
        if self.token_index is not None:
            out["token_index"] = self.token_index
        if self.trivial is not None:
            out["trivial"] = self.trivial
        if self.head is not None:
            out["head"] = self.head
        if self.heads:
            out["heads"] = [list(x) for x in self.heads]
        return out


@dataclass(frozen=True)
class InterventionInfo:
    """What was trained: the planned kind and dim, the site width, how it was built."""

    kind: str
    dim: Union[int, float, None]
    hidden: int
    neurons: Optional[tuple[int, ...]] = None
    parametrization: Optional[str] = None
    effective_dim: Union[int, float, None] = None
    # featurizers (abstract/neural/featurizers.py): a mask's open units (effective_dim is their
    # number), an SAE's interchanged features, the variance share of a PCA basis
    open_units: Optional[tuple[int, ...]] = None
    features: Optional[tuple[int, ...]] = None
    explained_variance: Optional[float] = None

    def to_json(self) -> Json:
        out: Json = {"kind": self.kind, "dim": self.dim}
        if self.neurons is not None:
            out["neurons"] = list(self.neurons)
        out["hidden"] = self.hidden
        if self.parametrization is not None:
            out["parametrization"] = self.parametrization
            out["effective_dim"] = self.effective_dim
        for key in ("open_units", "features"):
            if getattr(self, key) is not None:
                out[key] = list(getattr(self, key))
        if self.explained_variance is not None:
            out["explained_variance"] = self.explained_variance
        return out


@dataclass(frozen=True)
class GridResult:
    """IIA over a layers x positions grid (test IIA, mean and max over the seeds trained there);
    the site was chosen on dev. ``training``: "separate" when the variable itself was then
    trained jointly."""

    layers: list[int]
    positions: list[Position]
    position_tokens: list[str]
    component: str
    iia_mean: list[list[Optional[float]]]
    iia_max: list[list[Optional[float]]]
    chosen_site: Optional[SiteRef]
    training: Optional[str] = None
    trivial: Optional[list[list[bool]]] = None  # per cell: realised by swapping the variable's inputs
    # head grids: column j is head heads[j] at position positions[j] (positions then repeat per head)
    heads: Optional[list[int]] = None
    prescreen: Optional[Json] = None  # the attribution pre-screen: score and trained flag per cell, top K

    def to_json(self) -> Json:
        out: Json = {"layers": list(self.layers), "positions": list(self.positions),
                     "position_tokens": list(self.position_tokens), "component": self.component,
                     "iia_mean": self.iia_mean, "iia_max": self.iia_max, "selected_by": "dev",
                     "chosen_site": self.chosen_site.to_json() if self.chosen_site is not None else None}
        if self.training is not None:
            out["training"] = self.training
        if self.trivial is not None:
            out["trivial"] = self.trivial
        if self.heads is not None:
            out["heads"] = list(self.heads)
        if self.prescreen is not None:
            out["prescreen"] = self.prescreen
        return out


@dataclass(frozen=True)
class MeanFigure:
    """A mean over test pairs with its confidence interval (``effects.py``): the effect sizes
    are continuous, so they carry a t interval instead of counts."""

    value: Optional[float]
    ci_low: Optional[float]
    ci_high: Optional[float]
    n: int

    def to_json(self) -> Json:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}


@dataclass(frozen=True)
class Effects:
    """Effect sizes of one intervention on the test pairs (``engine/effects.py``): mean logit
    difference (counterfactual answer minus base answer) and mean probability of the
    counterfactual answer, on the pairs whose interchange changes the label; mean KL from the
    source run to the intervened run, on the pairs whose counterfactual label is the source's own
    output (None when there are none). ``do_nothing``: the same figures with the site unchanged.
    ``scored``: ``"logit"`` (one token or class per answer) or ``"logprob_sum"`` (multi-token
    answers: summed log-probabilities of the whole answer)."""

    logit_diff: MeanFigure
    prob: MeanFigure
    kl: Optional[MeanFigure] = None
    scored: str = "logit"
    do_nothing: Optional["Effects"] = None

    def to_json(self) -> Json:
        out: Json = {"scored": self.scored}
        for name in ("logit_diff", "prob", "kl"):
            fig: Optional[MeanFigure] = getattr(self, name)
            if fig is None:
                continue
            out[name] = fig.to_json()
            base = getattr(self.do_nothing, name, None) if self.do_nothing is not None else None
            if base is not None:
                out[name]["do_nothing"] = base.to_json()
        return out


@dataclass(frozen=True)
class ControlResult:
    """A control's IIA on the same held-out pairs as the alignment, and its cause score (the
    same, on the pairs whose interchange changes the label) when measured."""

    correct: int
    n: int
    cause: Optional[Count] = None
    effects: Optional[Effects] = None

    def to_json(self) -> Json:
        out: Json = {"iia": rate(self.correct, self.n), "correct": self.correct, "n": self.n}
        if self.cause is not None:
            out["cause"] = self.cause.to_json()
        if self.effects is not None:
            out["effects"] = self.effects.to_json()
        return out


@dataclass(frozen=True)
class JointMembership:
    """A jointly trained variable: its group and its block of the shared basis."""

    group: tuple[str, ...]
    block: tuple[int, int]

    def to_json(self) -> Json:
        return {"group": list(self.group), "block": list(self.block), "training": "multi_source"}


@dataclass
class VariableResult:
    """One ``align`` line: the site, the seeds trained there, the grid around it, controls."""

    intervention: InterventionInfo
    grid: Optional[GridResult]
    site: SiteRef
    seeds: list[SeedScore]
    joint: Optional[JointMembership] = None
    controls: dict[str, ControlResult] = field(default_factory=dict)
    do_nothing: Optional[Count] = None  # leaving the site unchanged, on the same test pairs
    better_site: Optional[Json] = None  # the grid's best non-trivial site, when it beats the named one
    failing_pairs: Optional[list[Json]] = None  # a sample of test pairs the judged seed gets wrong
    effects: Optional[Effects] = None  # effect sizes of the judged seed on the test pairs (effects.py)

    @property
    def best(self) -> SeedScore:
        return self.seeds[best_seed_index(self.seeds)]

    def to_json(self) -> Json:
        iia = iia_summary(self.seeds)
        if self.do_nothing is not None:
            iia["do_nothing"] = self.do_nothing.to_json()
        out: Json = {"intervention": self.intervention.to_json(),
                     "grid": self.grid.to_json() if self.grid is not None else None,
                     "site": self.site.to_json(), "seeds": [s.to_json() for s in self.seeds],
                     "iia": iia}
        if self.better_site is not None:
            out["better_site"] = self.better_site
        if self.joint is not None:
            out["joint"] = self.joint.to_json()
        if self.controls:
            out["controls"] = {k: c.to_json() for k, c in self.controls.items()}
        if self.failing_pairs is not None:
            out["failing_pairs"] = self.failing_pairs
        if self.effects is not None:
            out["effects"] = self.effects.to_json()
        return out


@dataclass(frozen=True)
class JointResult:
    """A jointly trained group on pairs interchanging all its variables (``multi.joint``)."""

    seeds: list[SeedScore]
    site: SiteRef

    def to_json(self) -> Json:
        best = self.seeds[best_seed_index(self.seeds)]
        summary = iia_summary(self.seeds)
        return {**best.test.to_json(), "mean": summary["mean"], "best_seed": summary["best_seed"],
                "selected_by": "dev", "seeds": [s.to_json() for s in self.seeds], "site": self.site.to_json()}


@dataclass
class MultiResult:
    """Several-variable metrics: ``cause`` per variable, ``isolate`` per ordered pair "A,B"."""

    cause: dict[str, Count] = field(default_factory=dict)
    isolate: dict[str, Count] = field(default_factory=dict)
    joint: dict[str, JointResult] = field(default_factory=dict)
    # what leaving the site unchanged scores on the same pairs: metric -> key -> counts
    do_nothing: dict[str, dict[str, Count]] = field(default_factory=dict)

    def to_json(self) -> Json:
        out: Json = {"cause": {k: c.to_json() for k, c in self.cause.items()},
                     "isolate": {k: c.to_json() for k, c in self.isolate.items()}}
        if self.joint:
            out["joint"] = {k: j.to_json() for k, j in self.joint.items()}
        for metric, by_key in self.do_nothing.items():
            for key, count in by_key.items():
                if key in out.get(metric, {}):
                    out[metric][key]["do_nothing"] = count.to_json()
        return out


@dataclass(frozen=True)
class SplitSizes:
    """Counterfactual pairs drawn: split sizes, test informativeness, whether test was held out."""

    train: int
    dev: int
    test: int
    informativeness: float
    held_out: bool

    @classmethod
    def from_summary(cls, d: Json) -> "SplitSizes":
        return cls(int(d["train"]), int(d["dev"]), int(d["test"]), float(d["informativeness"]),
                   bool(d["held_out"]))

    def to_json(self) -> Json:
        return {"train": self.train, "dev": self.dev, "test": self.test,
                "informativeness": self.informativeness, "held_out": self.held_out}


@dataclass(frozen=True)
class DatasetResult:
    """The hypothesis's pairs (sizes of the first variable's; all have the same) and, for each
    jointly trained group, its multi-source pairs."""

    sizes: SplitSizes
    joint: dict[str, SplitSizes] = field(default_factory=dict)
    shortfalls: dict[str, tuple[int, int]] = field(default_factory=dict)  # "var/split" -> (found, wanted)

    def to_json(self) -> Json:
        out = self.sizes.to_json()
        if self.joint:
            out["joint"] = {k: s.to_json() for k, s in self.joint.items()}
        if self.shortfalls:
            out["shortfalls"] = {k: list(v) for k, v in self.shortfalls.items()}
        return out


@dataclass(frozen=True)
class TrainSettings:
    samples: int
    epochs: int
    batch: int
    lr: float
    seeds: tuple[int, ...]
    joint: bool = False

    def to_json(self) -> Json:
        out: Json = {"samples": self.samples, "epochs": self.epochs, "batch": self.batch, "lr": self.lr,
                     "seeds": list(self.seeds)}
        if self.joint:
            out["joint"] = True
        return out


@dataclass(frozen=True)
class CellError:
    """A sweep cell (one variable, one row of sites, one training seed) that failed twice
    (``abstract.executors``): left out of the grid and the seeds, the sweep went on."""

    variable: str
    sites: tuple[str, ...]
    seed: int
    error: str
    attempts: int

    def to_json(self) -> Json:
        return {"variable": self.variable, "sites": list(self.sites), "seed": self.seed, "error": self.error,
                "attempts": self.attempts}


@dataclass
class HypothesisResult:
    """One hypothesis aligned: the HYPOTHESIS entry of the results document, less the judged
    ``expectations`` (the verifier adds them)."""

    name: str
    model: str
    network: str
    network_fingerprint: str
    location: str
    device: str
    train: TrainSettings
    dataset: DatasetResult
    variables: dict[str, VariableResult]
    multi: Optional[MultiResult]
    timing: dict[str, float]
    preflight: Optional[Json] = None
    holds: Optional[list[Json]] = None  # `hold` lines (path patching), as HoldPlan.to_json
    cell_errors: list[CellError] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return round(self.timing.get("total", 0.0), 2)

    def to_json(self) -> Json:
        return {
            "name": self.name, "model": self.model, "network": self.network,
            "network_fingerprint": self.network_fingerprint,
            "location": self.location,
            "device": self.device,
            "train": self.train.to_json(),
            "dataset": self.dataset.to_json(),
            "variables": {k: v.to_json() for k, v in self.variables.items()},
            "multi": self.multi.to_json() if self.multi is not None else None,
            **({"preflight": self.preflight} if self.preflight is not None else {}),
            **({"holds": self.holds} if self.holds else {}),
            **({"cell_errors": [e.to_json() for e in self.cell_errors]} if self.cell_errors else {}),
            "timing": {k: round(v, 3) for k, v in self.timing.items()},
            "seconds": self.seconds,
        }
