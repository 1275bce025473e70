"""Syntax tree -> checked `CausalModel`s: name resolution, types, domains, cycles.

Everything wrong that can be seen without a solver is reported here as a `SpecError`
pointing at the offending text. Several independent errors are reported together.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import networkx as nx

from ..causal.domains import BOOL, INT, MAX_DOMAIN_SIZE, Domain, Type, Value
from ..causal.expr import Const, Lookup, Op, Table, TExpr, Var
from ..causal.intervals import op_interval
from ..causal.model import CausalModel, Property, Variable
from . import ast
from .errors import SpecError, SpecErrors, did_you_mean
from .parser import parse_file, parse_text, raise_all

BUILTINS = {"min": (2, None), "max": (2, None), "abs": (1, 1)}  # name -> (min arity, max arity)


@dataclass
class Spec:
    """A whole compiled spec file: its causal models and the rest of its declarations."""

    path: str
    text: str
    models: dict[str, CausalModel]
    equivalences: tuple[ast.Equivalent, ...] = ()
    networks: dict[str, ast.NetworkDecl] = field(default_factory=dict)
    hypotheses: tuple[ast.HypothesisDecl, ...] = ()
    plans: dict[str, Any] = field(default_factory=dict)  # hypothesis name -> compiled `hypothesis.Plan`
    network_plans: dict[str, Any] = field(default_factory=dict)  # network name -> `hypothesis.NetworkPlan`

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


def load_spec(path: str | Path) -> Spec:
    """Parse and compile a spec file. Raises `SpecError` (with source excerpt) on any problem."""
    return compile_spec(parse_file(path, strict=False))


def compile_text(text: str, path: str = "<string>") -> Spec:
    return compile_spec(parse_text(text, path, strict=False))


def compile_spec(spec: ast.SpecFile) -> Spec:
    """Compile models, claims, networks and hypotheses; every error found is raised together."""
    from ..hypothesis.compile import compile_hypothesis, compile_networks  # the hypothesis package reads ast
    errors: list[SpecError] = list(spec.problems)
    models: dict[str, CausalModel] = {}
    first_pos: dict[str, ast.Pos] = {}
    for decl in spec.models:
        if decl.name in models or decl.name in first_pos:
            errors.append(SpecError(f"model '{decl.name}' is defined twice", decl.pos,
                                    notes=(("first defined here", first_pos[decl.name]),)))
            continue
        first_pos[decl.name] = decl.pos
        asserts = [a for a in decl.asserts] + [a for a in spec.asserts if a.model == decl.name]
        try:
            models[decl.name] = _ModelCompiler(decl, asserts).compile()
        except SpecErrors as many:
            errors.extend(many.errors)
        except SpecError as err:
            errors.append(err)
    for a in spec.asserts:
        if a.model not in first_pos:
            errors.append(_unknown("model", a.model or "?", a.model_pos if a.model_pos != ast.NOWHERE else a.pos,
                                   first_pos))
    for eq in spec.equivalences:
        for name, pos in ((eq.left, eq.left_pos), (eq.right, eq.right_pos)):
            if name not in first_pos:
                errors.append(_unknown("model", name, pos if pos != ast.NOWHERE else eq.pos, first_pos))
        if eq.left in models and eq.right in models:
            mismatch = interface_mismatch(models[eq.left], models[eq.right])
            if mismatch:
                errors.append(SpecError(f"`equivalent {eq.left}, {eq.right}` compares models with different "
                                        f"interfaces: {mismatch}", eq.pos,
                                        hint="equivalence needs the same inputs (names and domains) and outputs"))
    networks: dict[str, ast.NetworkDecl] = {}
    for net in spec.networks:
        if net.name in networks:
            errors.append(SpecError(f"network '{net.name}' is defined twice", net.pos,
                                    notes=(("first defined here", networks[net.name].pos),)))
        networks.setdefault(net.name, net)
    network_plans = compile_networks(spec.networks, errors)
    seen_h: dict[str, ast.Pos] = {}
    plans: dict[str, Any] = {}
    for h in spec.hypotheses:
        if h.name in seen_h:
            errors.append(SpecError(f"hypothesis '{h.name}' is defined twice", h.pos,
                                    notes=(("first defined here", seen_h[h.name]),)))
        seen_h[h.name] = h.pos
        problems = _check_hypothesis(h, models, first_pos, networks)
        errors.extend(problems)
        if h.model in models and not any(p.pos == h.model_pos for p in problems):
            plan = compile_hypothesis(h, models[h.model], network_plans, errors)
            if plan is not None and h.name not in plans:
                plans[h.name] = plan
    errors.extend(_check_cross(spec.hypotheses, plans))
    if errors:
        raise_all(errors, spec.text)
    return Spec(spec.path, spec.text, models, spec.equivalences, networks, spec.hypotheses, plans, network_plans)


KNOWN_METRICS = {"iia": (1, 1), "cause": (1, 1), "isolate": (2, 2), "joint": (2, 64)}  # (fewest, most) variables
KNOWN_CONTROLS: tuple[str, ...] = ("random_network", "random_rotation")
# the figures a control measures (results: variables[v].controls[c])
CONTROLLED_METRICS: tuple[str, ...] = ("iia", "cause")
# effect sizes (engine/effects.py): means with t intervals, judged by abstract.verify.effects
EFFECT_METRICS = {"logit_diff": (1, 1), "prob": (1, 1), "kl": (1, 1)}
UNBOUNDED_METRICS = ("logit_diff", "kl")  # thresholds and margins not confined to [0, 1] / [-1, 1]
KNOWN_METRICS.update(EFFECT_METRICS)
KNOWN_CONTROLS += ("noise",)
CONTROLLED_METRICS += tuple(EFFECT_METRICS)
JUDGED_OPS = (">=", ">", "<=", "<")


def interface_mismatch(a: CausalModel, b: CausalModel) -> str | None:
    """How two models' inputs or outputs differ (None when they match), for `equivalent`."""
    ins_a = {n: str(a.domain(n)) for n in a.inputs}
    ins_b = {n: str(b.domain(n)) for n in b.inputs}
    if ins_a != ins_b:
        fmt = lambda ins: ", ".join(f"{n}: {d}" for n, d in ins.items()) or "none"  # noqa: E731
        return f"{a.name} has inputs {fmt(ins_a)}; {b.name} has {fmt(ins_b)}"
    if set(a.outputs) != set(b.outputs):
        return f"{a.name} has outputs {', '.join(a.outputs)}; {b.name} has {', '.join(b.outputs)}"
    for o in a.outputs:
        if a.domain(o).type.kind != b.domain(o).type.kind:
            return f"output {o} is {a.domain(o).type} in {a.name} but {b.domain(o).type} in {b.name}"
    return None


def _check_hypothesis(h: ast.HypothesisDecl, models: dict[str, CausalModel], model_pos: dict,
                      networks: dict[str, ast.NetworkDecl]) -> list[SpecError]:
    """Names used by a hypothesis must exist (its options are read by `hypothesis.compile` after this)."""
    errors: list[SpecError] = []
    if h.model not in model_pos:
        return [_unknown("model", h.model, h.model_pos, model_pos)]
    if h.network not in networks:
        errors.append(_unknown("network", h.network, h.network_pos, networks))
    model = models.get(h.model)
    if model is None:  # the model itself had errors, already reported
        return errors
    aligned, rejected = set(), set()
    for a in h.aligns:
        if a.variable not in model.variables:
            errors.append(_unknown(f"variable of model {model.name}", a.variable, a.pos, model.variables))
            rejected.add(a.variable)
        elif a.variable in aligned:
            errors.append(SpecError(f"variable '{a.variable}' is aligned twice", a.pos))
        aligned.add(a.variable)
    if not h.aligns:
        errors.append(SpecError(f"hypothesis '{h.name}' aligns no variable", h.pos,
                                hint="add e.g. `align left to layer 1 via das(dim=8)`"))
    for e in h.expects:
        if e.metric not in KNOWN_METRICS:
            errors.append(_unknown("metric", e.metric, e.pos, KNOWN_METRICS))
            continue
        low, high = KNOWN_METRICS[e.metric]
        if not low <= len(e.args) <= high:
            count = f"{low}" if low == high else f"at least {low}"
            plural = "s" if low > 1 else ""
            errors.append(SpecError(f"{e.metric}(...) takes {count} variable{plural}, got {len(e.args)}", e.pos))
        if len(set(e.args)) < len(e.args):
            errors.append(SpecError(f"`{e.text}` names a variable twice", e.pos))
        for arg in e.args:
            if arg in rejected:  # already reported at its align line
                continue
            if arg not in aligned:
                errors.append(SpecError(f"'{arg}' in `{e.text}` is not aligned in hypothesis '{h.name}'", e.pos,
                                        hint=f"aligned variables: {', '.join(sorted(aligned - rejected)) or 'none'}"))
        if e.op not in JUDGED_OPS:
            errors.append(SpecError(f"`{e.op}` cannot be judged with an interval", e.pos,
                                    hint="compare with >=, >, <= or <"))
        if e.against is not None:
            errors.extend(_check_against(h, e, e.against, aligned, rejected))
        elif e.metric not in UNBOUNDED_METRICS and not 0.0 <= e.threshold <= 1.0:
            errors.append(SpecError(f"threshold {e.threshold} is not between 0 and 1", e.pos))
    for i, c in enumerate(h.controls):
        if c not in KNOWN_CONTROLS:
            errors.append(_unknown("control", c, h.control_pos[i] if i < len(h.control_pos) else h.pos, KNOWN_CONTROLS))
    return errors


def _check_against(h: ast.HypothesisDecl, e: ast.Expectation, a: ast.Against, aligned: set[str],
                   rejected: set[str]) -> list[SpecError]:
    """The right-hand side of a relative expectation, as far as this hypothesis alone tells:
    a known baseline or control that the hypothesis runs, a metric with aligned variables
    (another hypothesis's are checked by `_check_cross`), a margin in [-1, 1]."""
    errors: list[SpecError] = []
    where = a.margin_pos if a.margin_pos != ast.NOWHERE else a.pos
    if e.metric not in UNBOUNDED_METRICS and not -1.0 <= a.margin <= 1.0:
        errors.append(SpecError(f"margin {a.margin:g} is not between -1 and 1", where,
                                hint="the margin is the difference the left side must clear, e.g. `+ 0.2`"))
    if a.kind == "name":
        close = did_you_mean(a.name, ("do_nothing",))
        errors.append(SpecError(f"unknown figure '{a.name}' to compare `{e.metric}(...)` with", a.pos,
                                hint=f"did you mean '{close}'?" if close else
                                "write a number, `do_nothing`, `control(NAME)` or a metric such as `iia(v)` "
                                "or `iia(other_hypothesis.v)`"))
    elif a.kind == "control":
        where = a.arg_pos[0] if a.arg_pos else a.pos
        if a.name not in KNOWN_CONTROLS:
            errors.append(_unknown("control", a.name, where, KNOWN_CONTROLS))
        elif a.name not in h.controls:
            errors.append(SpecError(f"`{e.text}` compares with control {a.name}, which hypothesis '{h.name}' does "
                                    "not run", where, hint=f"add `control {a.name}` to the hypothesis"))
        if e.metric not in CONTROLLED_METRICS:
            errors.append(SpecError(f"controls are measured for {', '.join(m + '(v)' for m in CONTROLLED_METRICS)}"
                                    f" only, not {e.metric}(...)", a.pos))
    elif a.kind == "metric":
        if a.name not in KNOWN_METRICS:
            errors.append(_unknown("metric", a.name, a.pos, KNOWN_METRICS))
            return errors
        low, high = KNOWN_METRICS[a.name]
        if not low <= len(a.args) <= high:
            count = f"{low}" if low == high else f"at least {low}"
            errors.append(SpecError(f"{a.name}(...) takes {count} variable{'s' if low > 1 else ''}, got {len(a.args)}",
                                    a.pos))
        owners = {o or h.name for o in a.owners} or {h.name}
        if len(owners) > 1:
            errors.append(SpecError(f"`{a.text()}` mixes variables of several hypotheses", a.pos,
                                    hint="every variable of a figure belongs to one hypothesis"))
        elif owners == {h.name}:  # this hypothesis's own figure
            for i, arg in enumerate(a.args):
                if arg not in aligned and arg not in rejected:
                    errors.append(SpecError(f"'{arg}' in `{e.text}` is not aligned in hypothesis '{h.name}'",
                                            a.arg_pos[i] if i < len(a.arg_pos) else a.pos,
                                            hint="aligned variables: "
                                                 + (", ".join(sorted(aligned - rejected)) or "none")))
            if a.name == e.metric and set(a.args) == set(e.args):
                errors.append(SpecError(f"`{e.text}` compares a figure with itself", a.pos))
        if (a.name in EFFECT_METRICS or e.metric in EFFECT_METRICS) and a.name != e.metric:
            errors.append(SpecError(f"`{e.text}` compares {e.metric}(...) with {a.name}(...): an effect size is "
                                    "compared only with the same effect size", a.pos))
    return errors


def _check_cross(hypotheses: tuple[ast.HypothesisDecl, ...], plans: dict[str, Any]) -> list[SpecError]:
    """Expectations that compare with another hypothesis's figure (`iia(other.v)`): the other
    hypothesis exists and aligns those variables, and both draw their test pairs by the same
    rule (the same `data balance` and `informative`), so that the two figures are measured on
    pairs of the same kind (docs/language.md, "Comparing with a control, doing nothing or another
    hypothesis")."""
    errors: list[SpecError] = []
    by_name: dict[str, ast.HypothesisDecl] = {}
    for h in hypotheses:
        by_name.setdefault(h.name, h)
    for h in hypotheses:
        for e in h.expects:
            a = e.against
            if a is None or a.kind != "metric" or a.name not in KNOWN_METRICS or not a.hypothesis:
                continue
            owners = {o or h.name for o in a.owners}
            if len(owners) > 1 or a.hypothesis == h.name:
                continue
            other = by_name.get(a.hypothesis)
            first = next((i for i, o in enumerate(a.owners) if o), 0)
            if other is None:
                where = a.arg_pos[first] if first < len(a.arg_pos) else a.pos
                errors.append(_unknown("hypothesis", a.hypothesis, where, by_name))
                continue
            aligned = {al.variable for al in other.aligns}
            for i, arg in enumerate(a.args):
                if arg not in aligned:
                    errors.append(SpecError(f"'{arg}' in `{e.text}` is not aligned in hypothesis '{other.name}'",
                                            a.arg_pos[i] if i < len(a.arg_pos) else a.pos,
                                            hint=f"aligned there: {', '.join(sorted(aligned)) or 'none'}"))
            mine, theirs = plans.get(h.name), plans.get(other.name)
            if mine is None or theirs is None:
                continue
            for key in ("balance", "informative"):
                x, y = getattr(mine.data, key), getattr(theirs.data, key)
                if x != y:
                    show = lambda v: "none" if v is None else str(v).lower()  # noqa: E731
                    errors.append(SpecError(
                        f"`{e.text}` compares figures measured on pairs drawn differently: `data {key}` is "
                        f"{show(x)} in '{h.name}' but {show(y)} in '{other.name}'", a.pos,
                        hint="give both hypotheses the same `data balance` and `informative`", notes=(
                            (f"hypothesis '{other.name}' is here", other.pos),)))
    return errors


def _unknown(what: str, name: str, pos: ast.Pos, known, suggest: bool = True) -> SpecError:
    close = did_you_mean(name, known) if suggest else None
    hint = f"did you mean '{close}'?" if close else (
        f"known: {', '.join(sorted(map(str, known)))}" if known and len(known) <= 12 else None)
    return SpecError(f"unknown {what} '{name}'", pos, hint=hint)


MAX_SUGGESTED = 100  # unknown names per model given a did-you-mean; past that, a spec is not a typo away


class _ModelCompiler:
    """Compiles one model block."""

    def __init__(self, decl: ast.ModelDecl, asserts: list[ast.Assert]) -> None:
        self.decl = decl
        self.asserts = asserts
        self.errors: list[SpecError] = []
        self.domains: dict[str, Domain] = {}
        self.tables: dict[str, Table] = {}
        self.var_types: dict[str, Type] = {}
        self.var_domains: dict[str, Domain] = {}
        self.var_pos: dict[str, ast.Pos] = {}
        self.enum_members: dict[str, Type] = {}
        self.bad_tables: set[str] = set()  # tables whose declaration failed (already reported)
        self.unknown_names = 0  # did-you-means given (bounded: MAX_SUGGESTED)

    def fail(self, message: str, pos: ast.Pos, **kw) -> None:
        self.errors.append(SpecError(message, pos, **kw))

    def compile(self) -> CausalModel:
        d = self.decl
        for dd in d.domains:
            if dd.name in self.domains:
                self.fail(f"domain '{dd.name}' is defined twice", dd.pos)
            dom = self.domain(dd.domain, dd.name)
            if dom is not None:
                self.domains[dd.name] = dom
        variables: list[Variable] = []
        declared: dict[str, tuple] = {}
        for inp in d.inputs:
            dom = self.domain(inp.domain)
            for name, pos in zip(inp.names, inp.name_pos or (inp.pos,) * len(inp.names)):
                if self._declare(name, pos) and dom is not None:
                    self.var_types[name] = dom.type
                    declared[name] = ("input", dom, None, pos)
        for v in d.variables:
            dom = self.domain(v.domain) if v.domain is not None else None
            if self._declare(v.name, v.pos):
                declared[v.name] = ("output" if v.is_output else "intermediate", dom, v, v.pos)
        for t in d.tables:
            self.table(t)
        self._check_name_clashes()
        if not any(k == "output" for k, *_ in declared.values()):
            self.fail(f"model '{d.name}' has no output", d.pos, hint="declare one with `output name = expression`")
        if not any(k == "input" for k, *_ in declared.values()) and not any(i.names for i in d.inputs):
            self.fail(f"model '{d.name}' has no input", d.pos, hint="declare inputs with `input a, b : 0..9`")
        order = self._order(declared)
        for name in order:
            kind, dom, v, pos = declared[name]
            if kind == "input":
                self.var_domains[name] = dom
                variables.append(Variable(name, "input", dom, None, True, pos))
                continue
            expr = self.expr(v.expr)
            if expr is None:
                continue
            if dom is not None and expr.type != dom.type:
                self.fail(f"'{name}' is declared {dom.describe()} but its mechanism is of type {expr.type}", v.expr.pos)
                continue
            if dom is None:
                dom = self.infer_domain(expr, v.expr.pos)
                if dom is None:
                    continue
            self.var_types[name] = dom.type
            self.var_domains[name] = dom
            variables.append(Variable(name, kind, dom, expr, v.domain is not None, pos))
        properties = []
        for a in self.asserts:
            expr = self.expr(a.expr)
            if expr is not None and expr.type != BOOL:
                self.fail(f"an assert must be a boolean condition, this is of type {expr.type}", a.expr.pos)
            elif expr is not None:
                properties.append(Property(expr, a.text, a.pos))
        if self.errors:
            raise SpecErrors(self.errors) if len(self.errors) > 1 else self.errors[0]
        return CausalModel(d.name, variables, properties, d.pos)

    # ------------------------------------------------------------ declarations
    def _declare(self, name: str, pos: ast.Pos) -> bool:
        if name in self.var_pos:
            self.fail(f"variable '{name}' is defined twice", pos, notes=(("first defined here", self.var_pos[name]),))
            return False
        if name in BUILTINS or name in ("true", "false"):
            self.fail(f"'{name}' is a built-in name and cannot be a variable", pos)
            return False
        self.var_pos[name] = pos
        return True

    def _check_name_clashes(self) -> None:
        for name, pos in self.var_pos.items():
            if name in self.enum_members:
                self.fail(f"'{name}' is both a variable and a member of enum {self.enum_members[name]}", pos)
            if name in self.tables:
                self.fail(f"'{name}' is both a variable and a table", pos)

    def _order(self, declared: dict[str, tuple]) -> list[str]:
        """Variables in dependency order; a cycle is reported with its path."""
        g = nx.DiGraph()
        g.add_nodes_from(declared)
        for name, (_kind, _dom, v, _pos) in declared.items():
            if v is not None:
                for ref in _names_in(v.expr):
                    if ref in declared:
                        g.add_edge(ref, name)
        try:
            cycle = nx.find_cycle(g)
        except nx.NetworkXNoCycle:
            return list(nx.lexicographical_topological_sort(g))
        path = [u for u, _ in cycle] + [cycle[0][0]]
        first = path[0]
        self.fail("the mechanisms form a cycle: " + " -> ".join(path), declared[first][3],
                  hint="a causal model must be acyclic: some variable has to be computed from the others first")
        raise SpecErrors(self.errors) if len(self.errors) > 1 else self.errors[0]

    def domain(self, d: ast.DomainExpr, name: str | None = None) -> Domain | None:
        if isinstance(d, ast.NamedDomain):
            if d.name in self.domains:
                return self.domains[d.name]
            self.errors.append(_unknown("domain", d.name, d.pos, self.domains))
            return None
        if isinstance(d, ast.BoolDomain):
            return Domain.boolean()
        if isinstance(d, ast.RangeDomain):
            if d.high < d.low:
                self.fail(f"the domain {d.low}..{d.high} is empty", d.pos, hint="a range low..high needs low <= high")
                return None
            size = d.high - d.low + 1
            if size > MAX_DOMAIN_SIZE:
                self.fail(f"the domain {d.low}..{d.high} has {size:,} values; "
                          f"at most {MAX_DOMAIN_SIZE:,} are supported", d.pos)
                return None
            return Domain.int_range(d.low, d.high, name)
        assert isinstance(d, ast.EnumDomain)
        if len(set(d.members)) != len(d.members):
            dup = next(m for m in d.members if d.members.count(m) > 1)
            self.fail(f"enum member '{dup}' is listed twice", d.pos)
            return None
        dom = Domain.enum(d.members, name)
        for m in d.members:
            if m in self.enum_members and self.enum_members[m] != dom.type:
                self.fail(f"enum member '{m}' belongs to two different enums, so it would be ambiguous", d.pos)
                return None
            if m in ("true", "false") or m in BUILTINS:
                self.fail(f"'{m}' cannot be an enum member", d.pos)
                return None
            self.enum_members[m] = dom.type
        return dom

    def table(self, t: ast.TableDecl) -> None:
        n_errors = len(self.errors)
        self._table(t)
        if len(self.errors) > n_errors and t.name not in self.tables:
            self.bad_tables.add(t.name)

    def _table(self, t: ast.TableDecl) -> None:
        maybe_keys = [self.domain(k) for k in t.key_domains]
        keys = [k for k in maybe_keys if k is not None]
        value_dom = self.domain(t.value_domain)
        if len(keys) < len(maybe_keys) or value_dom is None:
            return
        if t.name in self.tables or t.name in BUILTINS:
            self.fail(f"table '{t.name}' is defined twice or shadows a built-in", t.pos)
            return
        entries: dict[tuple, Value] = {}
        for i, (key, value) in enumerate(t.entries):
            if len(key) != len(keys):
                self.fail(f"table '{t.name}' takes {len(keys)} key(s), an entry has {len(key)}", t.where(i))
                return
            for k, dom in zip(key, keys):
                if k not in dom:
                    self.fail(f"table '{t.name}': key {k!r} is not in the key domain {dom}", t.where(i))
                    return
            if value not in value_dom:
                self.fail(f"table '{t.name}': value {value!r} is not in the value domain {value_dom}", t.where(i))
                return
            entries[tuple(key)] = value
        if t.default is not None and t.default not in value_dom:
            self.fail(f"table '{t.name}': default {t.default!r} is not in the value domain {value_dom}",
                      t.default_pos if t.default_pos != ast.NOWHERE else t.pos)
            return
        self.tables[t.name] = Table(t.name, tuple(keys), value_dom, entries, t.default, t.pos)

    # ------------------------------------------------------------ expressions
    def expr(self, e: ast.Expr) -> TExpr | None:
        """Typed version of `e`, or None after recording errors."""
        if isinstance(e, ast.Num):
            return Const(e.value, INT, e.pos)
        if isinstance(e, ast.BoolLit):
            return Const(e.value, BOOL, e.pos)
        if isinstance(e, ast.Name):
            if e.id in ("true", "false"):
                return Const(e.id == "true", BOOL, e.pos)
            if e.id in self.var_types:
                return Var(e.id, self.var_types[e.id], e.pos)
            if e.id in self.enum_members:
                return Const(e.id, self.enum_members[e.id], e.pos)
            if e.id in self.var_pos:  # declared, but its own definition failed: already reported
                return None
            self.unknown_names += 1
            known = list(self.var_pos) + list(self.enum_members)
            self.errors.append(_unknown("name", e.id, e.pos, known, suggest=self.unknown_names <= MAX_SUGGESTED))
            return None
        if isinstance(e, ast.Unary):
            a = self.expr(e.operand)
            if a is None:
                return None
            want = INT if e.op == "-" else BOOL
            if a.type != want:
                self.fail(f"'{e.op}' needs {'an int' if want == INT else 'a bool'}, got {a.type}", e.operand.pos)
                return None
            return Op("neg" if e.op == "-" else "not", (a,), want, e.pos)
        if isinstance(e, ast.Binary):
            return self.binary(e)
        if isinstance(e, ast.IfThenElse):
            c, t, o = self.expr(e.cond), self.expr(e.then), self.expr(e.orelse)
            if c is None or t is None or o is None:
                return None
            if c.type != BOOL:
                self.fail(f"the condition of if-then-else must be a bool, got {c.type}", e.cond.pos)
                return None
            if t.type != o.type:
                self.fail(f"the branches of if-then-else differ in type: {t.type} and {o.type}", e.pos)
                return None
            return Op("ite", (c, t, o), t.type, e.pos)
        assert isinstance(e, ast.Call)
        return self.call(e)

    def binary(self, e: ast.Binary) -> TExpr | None:
        a, b = self.expr(e.left), self.expr(e.right)
        if a is None or b is None:
            return None
        if e.op in ast.ARITHMETIC_OPS or e.op in ("<", "<=", ">", ">="):
            for side, node in ((a, e.left), (b, e.right)):
                if side.type != INT:
                    self.fail(f"'{e.op}' needs ints, but this is {side.type}", node.pos)
                    return None
            return Op(e.op, (a, b), INT if e.op in ast.ARITHMETIC_OPS else BOOL, e.pos)
        if e.op in ("and", "or"):
            for side, node in ((a, e.left), (b, e.right)):
                if side.type != BOOL:
                    self.fail(f"'{e.op}' needs bools, but this is {side.type}", node.pos)
                    return None
            return Op(e.op, (a, b), BOOL, e.pos)
        if a.type != b.type:
            self.fail(f"cannot compare {a.type} with {b.type}", e.pos)
            return None
        return Op(e.op, (a, b), BOOL, e.pos)

    def call(self, e: ast.Call) -> TExpr | None:
        maybe_args = [self.expr(a) for a in e.args]
        args = [a for a in maybe_args if a is not None]
        if len(args) < len(maybe_args):
            return None
        if e.func in self.tables:
            table = self.tables[e.func]
            if len(args) != len(table.key_domains):
                self.fail(f"table '{e.func}' takes {len(table.key_domains)} argument(s), got {len(args)}", e.pos)
                return None
            for a, dom, node in zip(args, table.key_domains, e.args):
                if a.type != dom.type:
                    self.fail(f"table '{e.func}' expects a key of type {dom.type}, got {a.type}", node.pos)
                    return None
            return Lookup(table, tuple(args), table.value_domain.type, e.pos)
        if e.func in self.bad_tables:  # its declaration failed: already reported
            return None
        if e.func not in BUILTINS:
            self.errors.append(_unknown("function or table", e.func, e.pos, list(BUILTINS) + list(self.tables)))
            return None
        low, high = BUILTINS[e.func]
        if len(args) < low or (high is not None and len(args) > high):
            want = f"{low}" if low == high else f"at least {low}"
            self.fail(f"{e.func}() takes {want} argument(s), got {len(args)}", e.pos)
            return None
        for a, node in zip(args, e.args):
            if a.type != INT:
                self.fail(f"{e.func}() needs ints, got {a.type}", node.pos)
                return None
        return Op(e.func, tuple(args), INT, e.pos)

    # ------------------------------------------------------------ inferred domains
    def infer_domain(self, e: TExpr, pos: ast.Pos) -> Domain | None:
        if e.type == BOOL:
            return Domain.boolean()
        if e.type.kind == "enum":
            return Domain.enum(e.type.members, e.type.name)
        low, high = self.interval(e)
        if high - low + 1 > MAX_DOMAIN_SIZE:
            self.fail(f"this mechanism can take {high - low + 1:,} values (about {low}..{high}); "
                      f"at most {MAX_DOMAIN_SIZE:,} are supported", pos,
                      hint="declare a smaller domain, e.g. `x : 0..99 = ...`")
            return None
        return Domain.int_range(low, high)

    def interval(self, e: TExpr) -> tuple[int, int]:
        """A sound over-approximation of the values an int expression can take."""
        if isinstance(e, Const):
            return int(e.value), int(e.value)
        if isinstance(e, Var):
            d = self.var_domains[e.name]
            return d.low, d.high
        if isinstance(e, Lookup):  # the values it can return: its entries and default (no domain enumerated)
            vals = [int(v) for v in e.table.entries.values()]
            if e.table.default is not None:
                vals.append(int(e.table.default))
            if not vals:
                return e.table.value_domain.low, e.table.value_domain.high
            return min(vals), max(vals)
        ivs = [self.interval(a) if a.type == INT else (0, 0) for a in e.args]
        return op_interval(e.op, ivs)



def _names_in(e: ast.Expr) -> set[str]:
    if isinstance(e, ast.Name):
        return {e.id}
    if isinstance(e, ast.Unary):
        return _names_in(e.operand)
    if isinstance(e, ast.Binary):
        return _names_in(e.left) | _names_in(e.right)
    if isinstance(e, ast.IfThenElse):
        return _names_in(e.cond) | _names_in(e.then) | _names_in(e.orelse)
    if isinstance(e, ast.Call):
        out: set[str] = set()
        for a in e.args:
            out |= _names_in(a)
        return out
    return set()
