"""A hypothesis's align/search/train/data options, read into a typed, validated plan.

The compiler only checks names; what the options *mean* is decided here. Every unknown
option or bad value is a `SpecError` pointing at the option (or the `align` line), so a
typo fails before any network is loaded.

Options understood (defaults in brackets):

* ``align V [to layer L component C position P] [via I]`` -- I is ``das(dim=k)`` [k=1],
  ``lowrank(dim=k)``, ``boundless()``, ``full()``, ``neurons(i, j, ...)``, ``pca(dim=k)``,
  ``sae("file.safetensors", features=[...])``, ``mask(l0=x, gate=sigmoid|hard_concrete)``.
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

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Union

from ..language import ast
from ..language.errors import SpecError, SpecErrors
from .holds import HoldPlan, read_holds
from .heads import align_head_checks, search_head_checks
from .network import NetworkPlan
from .options import (COMPONENTS_BY_KIND, DATA, DEFAULT_INTERVENTION, INTERVENTION, INTERVENTION_ALIASES,
                      INTERVENTIONS, LM, SEARCH, SITE, TRAIN, OptionSpec, options, parse_value,
                      read_options, suggest, unknown_hint)
from .options import describe_kind as _describe_kind

Position = Union[int, str, None]

__all__ = ["DataPlan", "InterventionPlan", "Plan", "SearchPlan", "TrainPlan", "VariablePlan", "build_plan",
           "INTERVENTIONS", "TRAIN_KEYS", "DATA_KEYS", "SEARCH_KEYS", "SITE_KEYS"]

TRAIN_KEYS = tuple(options(TRAIN))
DATA_KEYS = tuple(options(DATA))
SEARCH_KEYS = tuple(options(SEARCH))
SITE_KEYS = tuple(options(SITE))
POSITION_WORDS = ("last", "first")


@dataclass(frozen=True)
class InterventionPlan:
    kind: str
    dim: Optional[int] = None
    neurons: tuple[int, ...] = ()
    # featurizer options beyond dim/neurons (sae: path, features; mask: l0, gate), as written
    options: tuple[tuple[str, Any], ...] = ()
    pos: ast.Pos = field(default=ast.NOWHERE, compare=False)  # the `via` clause, for run-time errors

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "dim": self.dim}
        if self.kind == "neurons":
            out["neurons"] = list(self.neurons)
        for key, value in self.options:
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


@dataclass(frozen=True)
class VariablePlan:
    name: str
    intervention: InterventionPlan
    layer: Optional[int] = None
    component: Optional[str] = None
    position: Position = None
    pos: ast.Pos = ast.NOWHERE
    head: Optional[int] = None  # head components: the head (k/v: the key-value head)
    heads: Optional[tuple[tuple[int, int], ...]] = None  # a head group: ((layer, head), ...), one vector


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
    min_accuracy: float = 0.8


@dataclass(frozen=True)
class SearchPlan:
    layers: Any = None  # None (no grid), "*" or tuple of ints
    positions: Any = None  # None, "*" or tuple of positions
    component: Optional[str] = None
    heads: Any = None  # None (every head, for a head component), "*" or tuple of head indices
    prescreen: Optional[int] = None  # train only the K cells the attribution pre-screen ranks best


@dataclass(frozen=True)
class Plan:
    hypothesis: str
    variables: tuple[VariablePlan, ...]
    train: TrainPlan
    data: DataPlan
    search: SearchPlan
    controls: tuple[str, ...] = ()
    pos: ast.Pos = ast.NOWHERE
    network_kind: Optional[str] = None  # TORCH | LM when the network declaration was compiled with it
    holds: tuple[HoldPlan, ...] = ()  # `hold` lines: sites kept at their base values (path patching)

    def to_json(self) -> dict[str, Any]:
        """A plain summary (for `check --json`)."""
        return {"hypothesis": self.hypothesis, "network_kind": self.network_kind,
                "variables": [{"name": v.name, "intervention": v.intervention.to_json(), "layer": v.layer,
                               "component": v.component, "position": v.position,
                               **({"head": v.head} if v.head is not None else {}),
                               **({"heads": [list(x) for x in v.heads]} if v.heads else {})}
                              for v in self.variables],
                "train": {**self.train.__dict__, "seeds": list(self.train.seeds)}, "data": dict(self.data.__dict__),
                "search": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.search.__dict__.items()},
                "controls": list(self.controls), "holds": [x.to_json() for x in self.holds]}


def held_out_size(samples: int) -> int:
    """The default dev/test size: a tenth of the training pairs, between 200 and 2000."""
    return min(2000, max(200, samples // 10))


# ------------------------------------------------------------------ interventions
def _intervention_options(kind: str) -> list[OptionSpec]:
    return [o for o in options(INTERVENTION).values() if kind in o.kinds]


def _arg_pos(call: ast.CallValue, i: int, fallback: ast.Pos, key_only: bool = False) -> ast.Pos:
    pos = call.arg_pos[i] if i < len(call.arg_pos) else fallback
    key = call.args[i][0]
    if key_only and not key.isdigit() and pos.line > 0:
        return ast.Pos(pos.file, pos.line, pos.column, pos.line, pos.column + len(key))
    return pos


def _intervention(call: Optional[ast.CallValue], pos: ast.Pos, errors: list[SpecError]) -> Optional[InterventionPlan]:
    """Read `via NAME(args)` through the options table; None after recording errors."""
    if call is None:
        return InterventionPlan(DEFAULT_INTERVENTION, 1)
    where = call.pos if call.pos.line > 0 else pos
    name = INTERVENTION_ALIASES.get(call.name.lower(), call.name.lower())
    if name not in INTERVENTIONS:
        close = suggest(call.name.lower(), INTERVENTIONS + tuple(INTERVENTION_ALIASES))
        hint = f"did you mean `{close}`?" if close else f"expected one of: {', '.join(INTERVENTIONS)}"
        errors.append(SpecError(f"unknown intervention `{call.name}`", where, hint=hint))
        return None
    accepted = _intervention_options(name)
    by_name = {o.name: o for o in accepted}
    all_names = options(INTERVENTION)
    positional = [o for o in accepted if o.positional]
    raw: dict[str, list] = {}
    n_errors = len(errors)
    for i, (key, value) in enumerate(call.args):
        if key.isdigit():  # positional argument
            if not positional:
                errors.append(SpecError(f"{name}() takes no arguments", _arg_pos(call, i, where)))
                continue
            spec = positional[0]
            if spec.type != "indices" and int(key) >= len(positional):
                errors.append(SpecError(f"{name}() takes at most {len(positional)} positional argument(s)",
                                        _arg_pos(call, i, where)))
                continue
            if spec.type != "indices":
                spec = positional[int(key)]
        elif key in by_name:
            spec = by_name[key]
        elif key in all_names:
            owners = ", ".join(all_names[key].kinds)
            takes = ", ".join(f"`{o.name}`" for o in accepted) or "no options"
            errors.append(SpecError(f"`{key}` is not an option of {name}(); it applies to {owners}",
                                    _arg_pos(call, i, where, key_only=True), hint=f"{name}() takes {takes}"))
            continue
        else:
            errors.append(SpecError(f"unknown option `{key}` of {name}()", _arg_pos(call, i, where, key_only=True),
                                    hint=unknown_hint(key, by_name) if by_name else f"{name}() takes no options"))
            continue
        if spec.name in raw and spec.type != "indices":
            errors.append(SpecError(f"{name}() is given `{spec.name}` twice", _arg_pos(call, i, where)))
            continue
        raw.setdefault(spec.name, []).append((value, _arg_pos(call, i, where)))
    values: dict[str, Any] = {}
    for key, given in raw.items():
        spec = by_name[key]
        try:
            if spec.type == "indices":
                flat = [x for v, _ in given for x in (v if isinstance(v, list) else [v])]
                values[key] = parse_value(spec, flat, given[0][1])
            else:
                values[key] = parse_value(spec, given[0][0], given[0][1])
        except SpecError as e:
            errors.append(e)
    if len(errors) > n_errors:
        return None
    if name == "neurons":
        if "indices" not in values:
            errors.append(SpecError("neurons(...) needs non-negative neuron indices, e.g. neurons(0, 1, 2)", where))
            return None
        chosen = tuple(sorted(set(values["indices"])))
        return InterventionPlan("neurons", len(chosen), chosen)
    dim = values.get("dim", by_name["dim"].default) if "dim" in by_name else None
    if name in FEATURIZER_KINDS:
        return _featurizer(name, dim, values, by_name, where, errors)
    return InterventionPlan(name, dim)


FEATURIZER_KINDS = ("pca", "sae", "mask")


def _featurizer(name: str, dim: Optional[int], values: dict[str, Any], by_name: dict[str, OptionSpec],
                where: ast.Pos, errors: list[SpecError]) -> Optional[InterventionPlan]:
    """pca/sae/mask: their options (defaults filled in) kept on the plan with the `via` clause's
    position, where a problem found at run time (a missing or misshapen SAE file) is reported."""
    if name == "sae":
        missing = [k for k in ("path", "features") if k not in values]
        if missing:
            errors.append(SpecError(f"sae(...) needs {' and '.join(missing)}", where,
                                    hint='e.g. sae("sae.safetensors", features=[3, 17])'))
            return None
        dim = len(values["features"]) or None
    given = {**{k: o.default for k, o in by_name.items() if o.default is not None and k != "dim"}, **values}
    given.pop("dim", None)
    return InterventionPlan(name, dim, options=tuple(sorted(given.items())), pos=where)


# ------------------------------------------------------------------ the plan
def _site_checks(component: Optional[str], position: Any, opts: tuple[ast.Option, ...], kind: Optional[str],
                 network: Optional[NetworkPlan], errors: list[SpecError]) -> None:
    """What the network kind can honour: components, and prompt-slot position names."""
    def at(key: str) -> ast.Pos:
        return next((o.pos for o in opts if o.key == key), ast.NOWHERE)

    if kind is not None and component is not None and component not in COMPONENTS_BY_KIND[kind]:
        allowed = ", ".join(COMPONENTS_BY_KIND[kind])
        errors.append(SpecError(f"component `{component}` cannot be used on {_describe_kind(kind)}", at("component"),
                                hint=f"use {allowed} (or leave `component` out)"))
    if network is None or network.kind != LM or not network.prompt:
        return
    items = position if isinstance(position, tuple) else (position,)
    for p in items:
        if isinstance(p, str) and p != "*" and p not in POSITION_WORDS and p not in network.prompt_slots:
            known = POSITION_WORDS + network.prompt_slots
            errors.append(SpecError(f"position `{p}` is not `last`, `first` or a slot of network "
                                    f"'{network.name}''s prompt", at("position"), hint=unknown_hint(p, known)))


def build_plan(h: ast.HypothesisDecl, overrides: Mapping[str, Any] | None = None, seed: int = 0, *,
               model: Any = None, network: Optional[NetworkPlan] = None) -> Plan:
    """Read ``h`` into a :class:`Plan` through the options table (``options.py``).

    ``overrides`` (flat train/data keys, e.g. ``{"samples": 200}``, or ``"search": False`` to
    drop the grid) win over the spec; a seed count S means seeds ``seed .. seed+S-1``.
    ``model`` (a CausalModel) and ``network`` (the compiled declaration) add the checks that need
    them: variable names in options, prompt slots, what the network kind can honour. Every
    problem found is raised at once (a `SpecErrors` when there are several)."""
    errors: list[SpecError] = []
    kind = network.kind if network is not None else None
    variables = []
    for a in h.aligns:
        site = read_options(SITE, a.site, errors, kind=kind, what="site")
        align_head_checks(site, a.site, a.pos, errors)
        _site_checks(site.get("component"), site.get("position"), a.site, kind, network, errors)
        interv = _intervention(a.intervention, a.pos, errors)
        if interv is not None:
            variables.append(VariablePlan(a.variable, interv, pos=a.pos, **site))
    train = read_options(TRAIN, h.train, errors)
    data = read_options(DATA, h.data, errors)
    search = read_options(SEARCH, h.search, errors, kind=kind)
    _site_checks(search.get("component"), search.get("positions"), h.search, kind, network, errors)
    search_head_checks(search, variables, h.search, h.pos, errors)
    if model is not None:
        _model_checks(h, data, network, model, errors)
    _control_checks(h, variables, errors)
    holds = read_holds(h, kind, network, variables, search, errors)

    for key, value in (overrides or {}).items():
        if key in TRAIN_KEYS:
            train[key] = tuple(value) if key == "seeds" and isinstance(value, (list, tuple)) else value
        elif key in DATA_KEYS:
            data[key] = value
        elif key == "search":
            if not value:
                search = {}
        elif key == "prescreen":
            search["prescreen"] = value
        else:
            raise ValueError(f"unknown override {key!r}")
    if errors:
        if len(errors) == 1:
            raise errors[0]
        errors.sort(key=lambda e: (e.pos.line, e.pos.column) if e.pos else (0, 0))
        raise SpecErrors(errors)

    defaults = {o.target: o.default for o in options(TRAIN).values() if o.default is not None}
    train = {**defaults, **train}
    seeds = train.pop("seeds")
    if isinstance(seeds, int):
        seeds = tuple(range(seed, seed + seeds))
    tp = TrainPlan(seeds=tuple(seeds), **train)
    held = held_out_size(tp.samples)
    dp = DataPlan(balance=data.get("balance"), informative=data.get("informative", False),
                  dev=data.get("dev", held), test=data.get("test", held),
                  min_accuracy=float(data.get("min_accuracy", 0.8)))
    return Plan(h.name, tuple(variables), tp, dp, SearchPlan(**search), tuple(h.controls), h.pos, kind,
                holds=holds)


def _control_checks(h: ast.HypothesisDecl, variables: list[VariablePlan], errors: list[SpecError]) -> None:
    """A control must be matched to every alignment it sits beside: an untrained random rotation
    of the alignment's size has no matched form for `full()` (a full-width rotation swaps the
    whole vector, i.e. *is* the alignment)."""
    if "random_rotation" not in h.controls:
        return
    full = [v.name for v in variables if v.intervention.kind == "full"]
    if full:
        i = h.controls.index("random_rotation")
        pos = h.control_pos[i] if i < len(h.control_pos) else h.pos
        errors.append(SpecError(f"control random_rotation has no matched form for {', '.join(full)} via full(): a "
                                "random rotation of the whole vector swaps it whole, exactly as full() does", pos,
                                hint="random_network is full()'s matched control; or align via das/lowrank/neurons"))


def _model_checks(h: ast.HypothesisDecl, data: dict[str, Any], network: Optional[NetworkPlan], model: Any,
                  errors: list[SpecError]) -> None:
    """Names in options and templates must exist in the causal model."""
    balance = data.get("balance")
    if balance is not None and balance not in model.variables:
        opt = next((o for o in h.data if o.key == "balance"), None)
        errors.append(SpecError(f"`balance {balance}`: model {model.name} has no such variable",
                                opt.pos if opt else h.pos, hint=unknown_hint(balance, model.variables)))
    if network is None or network.kind != LM:
        return
    where = h.network_pos if h.network_pos.line > 0 else h.pos
    note = (("the network is declared here", network.pos),)
    for slot in network.prompt_slots:
        if slot not in model.variables:
            errors.append(SpecError(f"prompt slot {{{slot}}} of network '{network.name}' is not a variable of model "
                                    f"{model.name}", where, hint=unknown_hint(slot, model.variables), notes=note))
    for slot in network.answer_slots:
        if slot not in model.outputs:
            errors.append(SpecError(f"answer slot {{{slot}}} of network '{network.name}' is not an output of model "
                                    f"{model.name}: the answer renders the values the network must predict", where,
                                    hint="outputs: " + ", ".join(model.outputs), notes=note))
