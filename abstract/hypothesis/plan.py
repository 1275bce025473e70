"""A hypothesis's align/search/train/data options, read into a typed, validated plan.

The compiler only checks names; what the options *mean* is decided here. Every unknown
option or bad value is a `SpecError` pointing at the option (or the `align` line), so a
typo fails before any network is loaded.

Options understood (defaults in brackets):

* ``align V [to layer L component C position P] [via I]`` -- I is ``das(dim=k)`` [k=1],
  ``lowrank(dim=k)``, ``boundless()``, ``full()``, ``neurons(i, j, ...)``.
  Without a layer, the site is chosen by the search on the dev split.
* ``search layer R, position P, component C`` -- R: int, ``a..b``, ``[..]`` or ``*``;
  P: ``last``, ``first``, an int, a prompt-template slot name, a list, or ``*`` (every token
  of the prompt); C: a site component. Omitted: only the align site (no grid).
* ``train samples N [2000], epochs E [3], batch B [64], lr X [1e-3], seeds S [1], joint B [false]``
  -- S is a count (seeds base..base+S-1) or an explicit list. ``joint true``: variables aligned
  by ``das``/``lowrank`` at the *same* explicit site are trained together (one shared basis,
  a disjoint block per variable, multi-source data; see ``engine/joint.py``), because
  separately trained subspaces may overlap and then cannot be swapped independently. Other
  variables keep the separate path; a ``search`` grid stays per-variable.
* ``data balance V, dev N, test N, informative B`` -- ``balance`` draws inputs so V's values
  are equally frequent; dev/test default to min(2000, max(200, samples // 10)) pairs;
  ``informative true`` keeps only pairs whose interchange changes the label [false].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Union

from ..language import ast
from ..language.errors import SpecError
from .components import canonical_component

Position = Union[int, str, None]

INTERVENTIONS = ("das", "lowrank", "boundless", "full", "neurons")
TRAINED = ("das", "lowrank", "boundless")
TRAIN_KEYS = ("samples", "epochs", "batch", "lr", "seeds", "joint")
DATA_KEYS = ("balance", "dev", "test", "informative")
SEARCH_KEYS = ("layer", "position", "component")
SITE_KEYS = ("layer", "position", "component")


@dataclass(frozen=True)
class InterventionPlan:
    kind: str
    dim: Optional[int] = None
    neurons: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "dim": self.dim}
        if self.kind == "neurons":
            out["neurons"] = list(self.neurons)
        return out


@dataclass(frozen=True)
class VariablePlan:
    name: str
    intervention: InterventionPlan
    layer: Optional[int] = None
    component: Optional[str] = None
    position: Position = None
    pos: ast.Pos = ast.NOWHERE


@dataclass(frozen=True)
class TrainPlan:
    samples: int = 2000
    epochs: int = 3
    batch: int = 64
    lr: float = 1e-3
    seeds: tuple[int, ...] = (0,)
    joint: bool = False


@dataclass(frozen=True)
class DataPlan:
    balance: Optional[str] = None
    informative: bool = False
    dev: int = 200
    test: int = 200


@dataclass(frozen=True)
class SearchPlan:
    layers: Any = None  # None (no grid), "*" or tuple of ints
    positions: Any = None  # None, "*" or tuple of positions
    component: Optional[str] = None


@dataclass(frozen=True)
class Plan:
    hypothesis: str
    variables: tuple[VariablePlan, ...]
    train: TrainPlan
    data: DataPlan
    search: SearchPlan
    controls: tuple[str, ...] = ()
    pos: ast.Pos = ast.NOWHERE


def _err(msg: str, pos: ast.Pos, hint: str | None = None) -> SpecError:
    return SpecError(msg, pos, hint=hint)


def _int(opt: ast.Option, low: int = 1) -> int:
    v = opt.value
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise _err(f"`{opt.key}` needs an integer >= {low}, got {v!r}", opt.pos)
    return v


def _position(v: Any, pos: ast.Pos, key: str = "position") -> Position:
    if isinstance(v, bool) or not isinstance(v, (int, str)):
        raise _err(f"`{key}` must be `last`, `first`, a token index or a template slot name, got {v!r}", pos)
    return v


def _component(v: Any, pos: ast.Pos) -> str:
    if not isinstance(v, str):
        raise _err(f"`component` must be a name such as resid_post, got {v!r}", pos)
    try:
        return canonical_component(v)
    except ValueError as e:
        raise _err(str(e), pos) from None


def _layers(v: Any, pos: ast.Pos) -> Any:
    if isinstance(v, ast.AllValues):
        return "*"
    if isinstance(v, ast.Range):
        if v.high < v.low:
            raise _err(f"empty layer range {v.low}..{v.high}", pos)
        return tuple(range(v.low, v.high + 1))
    if isinstance(v, int) and not isinstance(v, bool):
        return (v,)
    if isinstance(v, list) and v and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        return tuple(v)
    raise _err(f"`layer` must be an int, a range a..b, a list or *, got {v!r}", pos)


def _intervention(call: Optional[ast.CallValue], pos: ast.Pos) -> InterventionPlan:
    if call is None:
        return InterventionPlan("das", 1)
    name = call.name.lower()
    aliases = {"rotation": "das", "low_rank": "lowrank", "vector": "full", "interchange": "full"}
    name = aliases.get(name, name)
    if name not in INTERVENTIONS:
        raise _err(f"unknown intervention `{call.name}`", pos, hint=f"expected one of: {', '.join(INTERVENTIONS)}")
    kw = call.kwargs()
    if name in ("das", "lowrank"):
        extra = set(kw) - {"dim", "0"}
        if extra:
            raise _err(f"{name}(...) takes only `dim`, got {', '.join(sorted(extra))}", pos)
        dim = kw.get("dim", kw.get("0", 1))
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise _err(f"{name}(dim=...) needs a positive integer, got {dim!r}", pos)
        return InterventionPlan(name, dim)
    if name == "neurons":
        values: list = []
        for k, v in call.args:
            values.extend(v if isinstance(v, list) else [v])
        if not values or not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in values):
            raise _err("neurons(...) needs non-negative neuron indices, e.g. neurons(0, 1, 2)", pos)
        return InterventionPlan("neurons", len(set(values)), tuple(sorted(set(values))))
    if kw:
        raise _err(f"{name}() takes no arguments", pos)
    return InterventionPlan(name, None)


def build_plan(h: ast.HypothesisDecl, overrides: Mapping[str, Any] | None = None, seed: int = 0) -> Plan:
    """Read ``h`` into a :class:`Plan`; ``overrides`` (flat train/data keys, e.g.
    ``{"samples": 200}``, or ``"search": False`` to drop the grid) win over the spec;
    a seed count S means seeds ``seed .. seed+S-1``."""
    overrides = dict(overrides or {})
    variables = []
    for a in h.aligns:
        site: dict[str, Any] = {}
        for opt in a.site:
            if opt.key not in SITE_KEYS:
                raise _err(f"unknown site option `{opt.key}`", opt.pos, hint=f"expected one of: {', '.join(SITE_KEYS)}")
            if opt.key == "layer":
                if isinstance(opt.value, bool) or not isinstance(opt.value, int):
                    raise _err(f"`layer` of an align must be one integer, got {opt.value!r}", opt.pos,
                               hint="use `search layer a..b` to try several")
                site["layer"] = opt.value
            elif opt.key == "component":
                site["component"] = _component(opt.value, opt.pos)
            else:
                site["position"] = _position(opt.value, opt.pos)
        variables.append(VariablePlan(a.variable, _intervention(a.intervention, a.pos), pos=a.pos, **site))

    train: dict[str, Any] = {}
    for opt in h.train:
        if opt.key not in TRAIN_KEYS:
            raise _err(f"unknown train option `{opt.key}`", opt.pos, hint=f"expected one of: {', '.join(TRAIN_KEYS)}")
        if opt.key == "lr":
            if isinstance(opt.value, bool) or not isinstance(opt.value, (int, float)) or opt.value <= 0:
                raise _err(f"`lr` needs a positive number, got {opt.value!r}", opt.pos)
            train["lr"] = float(opt.value)
        elif opt.key == "seeds":
            v = opt.value
            if isinstance(v, list):
                if not v or not all(isinstance(s, int) and not isinstance(s, bool) for s in v):
                    raise _err("`seeds` must be a count or a list of integers", opt.pos)
                train["seeds"] = tuple(v)
            else:
                train["seeds"] = _int(opt)
        elif opt.key == "joint":
            if not isinstance(opt.value, bool):
                raise _err("`joint` needs true or false", opt.pos)
            train["joint"] = opt.value
        else:
            train[opt.key] = _int(opt)
    data: dict[str, Any] = {}
    for opt in h.data:
        if opt.key not in DATA_KEYS:
            raise _err(f"unknown data option `{opt.key}`", opt.pos, hint=f"expected one of: {', '.join(DATA_KEYS)}")
        if opt.key == "balance":
            if not isinstance(opt.value, str):
                raise _err("`balance` needs a variable name", opt.pos)
            data["balance"] = opt.value
        elif opt.key == "informative":
            if not isinstance(opt.value, bool):
                raise _err("`informative` needs true or false", opt.pos)
            data["informative"] = opt.value
        else:
            data[opt.key] = _int(opt)
    search: dict[str, Any] = {}
    for opt in h.search:
        if opt.key not in SEARCH_KEYS:
            raise _err(f"unknown search option `{opt.key}`", opt.pos, hint=f"expected one of: {', '.join(SEARCH_KEYS)}")
        if opt.key == "layer":
            search["layers"] = _layers(opt.value, opt.pos)
        elif opt.key == "component":
            search["component"] = _component(opt.value, opt.pos)
        else:
            v = opt.value
            if isinstance(v, ast.AllValues):
                search["positions"] = "*"
            else:
                items = v if isinstance(v, list) else [v]
                search["positions"] = tuple(_position(x, opt.pos) for x in items)

    for key, value in overrides.items():
        if key in ("samples", "epochs", "batch", "lr", "joint"):
            train[key] = value
        elif key == "seeds":
            train["seeds"] = tuple(value) if isinstance(value, (list, tuple)) else int(value)
        elif key in ("dev", "test", "balance", "informative"):
            data[key] = value
        elif key == "search":
            if not value:
                search = {}
        else:
            raise ValueError(f"unknown override {key!r}")

    seeds = train.pop("seeds", 1)
    if isinstance(seeds, int):
        seeds = tuple(range(seed, seed + seeds))
    tp = TrainPlan(seeds=tuple(seeds), **train)
    held = min(2000, max(200, tp.samples // 10))
    dp = DataPlan(balance=data.get("balance"), informative=data.get("informative", False), dev=data.get("dev", held), test=data.get("test", held))
    return Plan(h.name, tuple(variables), tp, dp, SearchPlan(**search), tuple(h.controls), h.pos)


def check_against_model(plan: Plan, model, h: ast.HypothesisDecl) -> None:
    """Names in options must exist in the causal model (``data balance V``)."""
    if plan.data.balance is not None and plan.data.balance not in model.variables:
        opt = next((o for o in h.data if o.key == "balance"), None)
        raise _err(f"`balance {plan.data.balance}`: model {model.name} has no such variable",
                   opt.pos if opt else h.pos, hint="known: " + ", ".join(model.variables))
