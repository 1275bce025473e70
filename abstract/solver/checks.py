"""The symbolic checks of a spec: acyclic, total, in_domain, effective, assert, equivalent.

Each check is one bounded z3 query (a fresh solver with an `rlimit`), so a hard nonlinear
model yields `unknown` instead of hanging. Counterexamples come back as the user's values.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterable, Optional

import networkx as nx
import z3

from ..causal.domains import Value
from ..causal.expr import MechanismUndefined, compile_expr, free_vars
from ..causal.model import CausalModel, Property
from ..positions import Pos
from .encode import ModelEncoding, all_of, decode, encode_expr, fresh, in_domain
from .verdicts import COUNTEREXAMPLE, PROVED, UNKNOWN, CheckResult

DEFAULT_RLIMIT = 5_000_000  # z3 resource units per query: milliseconds-to-seconds of work


MAX_RLIMIT = 2**32 - 1  # z3 keeps rlimit in 32 bits: a larger value would wrap round (2**32 -> 0, "no limit")
TIME_SPENT = "time budget spent"


@dataclass(frozen=True)
class Bound:
    """What bounds each query: z3's resource limit, and an optional whole-run deadline
    (``time.monotonic()`` seconds) that caps each query's z3 timeout to the time left."""

    rlimit: int = DEFAULT_RLIMIT
    deadline: Optional[float] = None
    budget: Optional[float] = None  # the whole-run budget in seconds, for messages

    def __post_init__(self) -> None:
        if not 1 <= int(self.rlimit) <= MAX_RLIMIT:
            raise ValueError(f"rlimit must be between 1 and {MAX_RLIMIT:,}, got {self.rlimit}")

    @staticmethod
    def of(rlimit: int = DEFAULT_RLIMIT, timeout: Optional[float] = None) -> "Bound":
        deadline = None if timeout is None else time.monotonic() + timeout
        return Bound(rlimit, deadline, timeout)

    def left_ms(self) -> Optional[int]:
        if self.deadline is None:
            return None
        return max(0, int((self.deadline - time.monotonic()) * 1000))

    def solve(self, *constraints: z3.BoolRef) -> tuple[str, z3.ModelRef | None, str]:
        """One bounded satisfiability query: ("sat", model, "") | ("unsat", None, "") | ("unknown", None, why)."""
        left = self.left_ms()
        if left is not None and left < 1:
            return "unknown", None, TIME_SPENT
        s = z3.Solver()
        s.set("rlimit", int(self.rlimit))
        if left is not None:
            s.set("timeout", min(left, MAX_RLIMIT))
        s.add(*constraints)
        r = s.check()
        if r == z3.sat:
            return "sat", s.model(), ""
        if r == z3.unsat:
            return "unsat", None, ""
        why = s.reason_unknown()
        if left is not None and self.left_ms() == 0:
            why = TIME_SPENT
        return "unknown", None, why

    def explain(self, why: str) -> str:
        if why == TIME_SPENT:
            return (f"not decided: the run's time budget (--timeout {self.budget:g} s) was spent before z3 could "
                    "decide this; raise --timeout")
        return (f"z3 could not decide this within its resource bound (rlimit={self.rlimit:,}; {why}); "
                "raise the bound (--rlimit) or simplify the model")


def _fmt(v: Any) -> str:
    return str(v).lower() if isinstance(v, bool) else str(v)


def _show(values: dict[str, Value]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())


# ------------------------------------------------------------------ one model
def check_model(model: CausalModel, rlimit: int = DEFAULT_RLIMIT, bound: Optional[Bound] = None,
                render_only: Iterable[str] = ()) -> list[CheckResult]:
    """All checks of one model: acyclic, then total, in_domain, effective per variable, then asserts.
    ``render_only``: variables a network's prompt renders and no output is meant to depend on
    (the `render_only` network option): not held to the `effective` check."""
    bound = bound or Bound(rlimit)
    enc = ModelEncoding(model)
    computed = [n for n, v in model.variables.items() if v.mechanism is not None]
    results = [_acyclic(model)]
    results += [_total(model, enc, n, bound) for n in computed]
    results += [_in_domain(model, enc, n, bound) for n in computed if model.variables[n].declared_domain]
    exempt = set(render_only)
    results += [_effective(model, enc, n, bound) for n in model.intermediates if n not in exempt]
    results += [_assert(model, enc, p, bound) for p in model.properties]
    return results


def _acyclic(model: CausalModel) -> CheckResult:
    """Structural; the compiler already rejects cycles, listed so that reports show it was checked."""
    ok = nx.is_directed_acyclic_graph(model.graph)
    return CheckResult(model.name, "causal graph is acyclic", "acyclic", PROVED if ok else COUNTEREXAMPLE,
                       "" if ok else f"cycle: {nx.find_cycle(model.graph)}", None, model.pos)


def _context(model: CausalModel, enc: ModelEncoding, m: z3.ModelRef, names: Iterable[str]) -> dict[str, Value]:
    """The input, then the values of the (non-input) variables `names` in topological order."""
    wanted = set(names)
    extra = [n for n in model.variables if n in wanted and n not in model.inputs]
    return {**enc.decode_inputs(m), **enc.decode_values(m, extra)}


def _total(model: CausalModel, enc: ModelEncoding, name: str, bound: Bound) -> CheckResult:
    var = model.variables[name]
    assert var.mechanism is not None, f"{name} is an input: it has no mechanism to be total"
    title = f"mechanism of {name} is total"
    if z3.is_true(enc.own_defined[name]):
        return CheckResult(model.name, title, "total", PROVED, "no division, modulo or partial table", None, var.pos)
    parents = list(model.graph.predecessors(name))
    status, m, why = bound.solve(enc.input_constraints(), *[enc.defined[p] for p in parents],
                            z3.Not(enc.own_defined[name]))
    if status == "unsat":
        return CheckResult(model.name, title, "total", PROVED, "defined for every input", None, var.pos)
    if status == "unknown":
        return CheckResult(model.name, title, "total", UNKNOWN, bound.explain(why), None, var.pos)
    cex = _context(model, enc, m, parents)
    try:  # let plain evaluation name the reason (division by zero, missing key)
        compile_expr(var.mechanism)(cex)
        reason = "undefined"
    except MechanismUndefined as err:
        reason = str(err)
    return CheckResult(model.name, title, "total", COUNTEREXAMPLE,
                       f"{name} = {model.mechanism_text(name)} is undefined ({reason}) when {_show(cex)}",
                       cex, var.pos)


def _in_domain(model: CausalModel, enc: ModelEncoding, name: str, bound: Bound) -> CheckResult:
    var = model.variables[name]
    title = f"{name} stays in its domain {var.domain}"
    if var.domain.kind != "int":  # bools and enum members cannot escape: the compiler checked the type
        return CheckResult(model.name, title, "in_domain", PROVED, "by its type", None, var.pos)
    status, m, why = bound.solve(enc.input_constraints(), enc.defined[name],
                            z3.Not(in_domain(enc.values[name], var.domain)))
    if status == "unsat":
        return CheckResult(model.name, title, "in_domain", PROVED, "for every input", None, var.pos)
    if status == "unknown":
        return CheckResult(model.name, title, "in_domain", UNKNOWN, bound.explain(why), None, var.pos)
    cex = _context(model, enc, m, [*model.graph.predecessors(name), name])
    return CheckResult(model.name, title, "in_domain", COUNTEREXAMPLE,
                       f"{name} = {model.mechanism_text(name)} is {cex[name]}, outside {var.domain.describe()}",
                       cex, var.pos)


def _effective(model: CausalModel, enc: ModelEncoding, name: str, bound: Bound) -> CheckResult:
    """Satisfiable = effective (a witness exists); unsat = inert. Note the reversed polarity."""
    var = model.variables[name]
    title = f"{name} is causally effective on an output"
    inert = f"no intervention on {name} changes any output; an alignment of {name} would be vacuous"
    outputs = [o for o in model.outputs if o in nx.descendants(model.graph, name)]
    if not outputs:
        return CheckResult(model.name, title, "effective", COUNTEREXAMPLE, inert + " (no output depends on it)",
                           None, var.pos)
    if len(var.domain) < 2:
        return CheckResult(model.name, title, "effective", COUNTEREXAMPLE,
                           inert + f" (its domain {var.domain} has a single value)", None, var.pos)
    v1, v2 = fresh(f"{name}!do1", var.domain.type), fresh(f"{name}!do2", var.domain.type)
    e1 = ModelEncoding(model, inputs=enc.inputs, do={name: v1})
    e2 = ModelEncoding(model, inputs=enc.inputs, do={name: v2})
    differ = z3.Or(*[e1.values[o] != e2.values[o] for o in outputs])
    status, m, why = bound.solve(enc.input_constraints(), in_domain(v1, var.domain), in_domain(v2, var.domain),
                            e1.all_defined(), e2.all_defined(), differ)
    if status == "unsat":
        return CheckResult(model.name, title, "effective", COUNTEREXAMPLE, inert, None, var.pos)
    if status == "unknown":
        return CheckResult(model.name, title, "effective", UNKNOWN, bound.explain(why), None, var.pos)
    t = var.domain.type
    x1, x2 = decode(m, v1, t), decode(m, v2, t)
    inputs = enc.decode_inputs(m)
    o1, o2 = e1.decode_values(m, outputs), e2.decode_values(m, outputs)
    changed = next(o for o in outputs if o1[o] != o2[o])
    return CheckResult(model.name, title, "effective", PROVED,
                       f"on input {_show(inputs)}, do({name}={_fmt(x1)}) gives {changed}={_fmt(o1[changed])} "
                       f"but do({name}={_fmt(x2)}) gives {changed}={_fmt(o2[changed])}", None, var.pos)


def _assert(model: CausalModel, enc: ModelEncoding, prop: Property, bound: Bound) -> CheckResult:
    """The property over every input where the model is defined (the `total` checks flag the rest)."""
    title = f"assert {prop.text}"
    p = encode_expr(prop.expr, enc.values)
    defined = enc.all_defined()
    status, m, why = bound.solve(enc.input_constraints(), defined, z3.Not(all_of(p.defined, p.value)))
    if status == "unsat":
        where = "every input" if z3.is_true(defined) else "every input where the model is defined"
        return CheckResult(model.name, title, "assert", PROVED,
                           f"holds for {where} ({model.input_space_size():,} inputs)", None, prop.pos)
    if status == "unknown":
        return CheckResult(model.name, title, "assert", UNKNOWN, bound.explain(why), None, prop.pos)
    assert m is not None  # "sat" always comes with its model
    cex = _context(model, enc, m, free_vars(prop.expr))
    undefined = z3.is_false(m.eval(p.defined, model_completion=True))
    return CheckResult(model.name, title, "assert", COUNTEREXAMPLE,
                       f"the assert is {'undefined' if undefined else 'false'} when {_show(cex)}", cex, prop.pos)


# ------------------------------------------------------------------ two models
def check_equivalence(a: CausalModel, b: CausalModel, pos: Pos | None = None,
                      rlimit: int = DEFAULT_RLIMIT, bound: Optional[Bound] = None) -> CheckResult:
    """Same inputs (names and domains), and every same-named output equal for every input.

    Where one model is undefined and the other is not, they differ too."""
    bound = bound or Bound(rlimit)
    title, label = f"equivalent {a.name}, {b.name}", f"{a.name}, {b.name}"

    def fail(message: str, cex: dict[str, Any] | None = None) -> CheckResult:
        return CheckResult(label, title, "equivalent", COUNTEREXAMPLE, message, cex, pos)

    ins_a = {n: a.domain(n) for n in a.inputs}
    ins_b = {n: b.domain(n) for n in b.inputs}
    same = lambda d1, d2: (d1.kind, d1.low, d1.high, d1.members) == (d2.kind, d2.low, d2.high, d2.members)
    if ins_a.keys() != ins_b.keys() or any(not same(ins_a[n], ins_b[n]) for n in ins_a):
        fmt = lambda ins: ", ".join(f"{n}: {d}" for n, d in ins.items()) or "none"
        return fail(f"the models have different inputs: {a.name} has {fmt(ins_a)}; {b.name} has {fmt(ins_b)}")
    if set(a.outputs) != set(b.outputs):
        only_a = sorted(set(a.outputs) - set(b.outputs)) or ["none"]
        only_b = sorted(set(b.outputs) - set(a.outputs)) or ["none"]
        return fail(f"the models have different outputs: only in {a.name}: {', '.join(only_a)}; "
                    f"only in {b.name}: {', '.join(only_b)}")
    equal = []
    for o in a.outputs:
        ta, tb = a.domain(o).type, b.domain(o).type
        if ta.kind != tb.kind:
            return fail(f"output {o} is {ta} in {a.name} but {tb} in {b.name}")
    ea = ModelEncoding(a)
    eb = ModelEncoding(b, inputs=ea.inputs)
    for o in a.outputs:
        ta, tb = a.domain(o).type, b.domain(o).type
        va, vb = ea.values[o], eb.values[o]
        if ta.kind == "enum" and ta.members != tb.members:  # compare enum values by member name
            common = [m for m in ta.members if m in tb.members]
            equal.append(z3.Or(*[z3.And(va == ta.members.index(m), vb == tb.members.index(m)) for m in common])
                         if common else z3.BoolVal(False))
        else:
            equal.append(va == vb)
    da, db = ea.all_defined(), eb.all_defined()
    differ = z3.Or(da != db, z3.And(da, db, z3.Not(all_of(*equal))))
    status, m, why = bound.solve(ea.input_constraints(), differ)
    if status == "unsat":
        return CheckResult(label, title, "equivalent", PROVED,
                           f"same outputs ({', '.join(a.outputs)}) for all {a.input_space_size():,} inputs", None, pos)
    if status == "unknown":
        return CheckResult(label, title, "equivalent", UNKNOWN, bound.explain(why), None, pos)
    assert m is not None  # "sat" always comes with its model
    cex: dict[str, Any] = ea.decode_inputs(m)
    def_a, def_b = z3.is_true(m.eval(da, model_completion=True)), z3.is_true(m.eval(db, model_completion=True))
    for enc, model, ok in ((ea, a, def_a), (eb, b, def_b)):
        outs = enc.decode_values(m, model.outputs) if ok else {o: "undefined" for o in model.outputs}
        cex.update({f"{model.name}.{o}": v for o, v in outs.items()})
    inputs = _show({n: cex[n] for n in a.inputs})
    if def_a != def_b:
        message = f"on input {inputs}, {(b if def_a else a).name} is undefined but {(a if def_a else b).name} is not"
    else:
        o = next(o for o in a.outputs if cex[f"{a.name}.{o}"] != cex[f"{b.name}.{o}"])
        message = (f"on input {inputs}, {a.name} gives {o}={_fmt(cex[f'{a.name}.{o}'])} "
                   f"but {b.name} gives {o}={_fmt(cex[f'{b.name}.{o}'])}")
    return fail(message, cex)


def check_spec(spec: Any, rlimit: int = DEFAULT_RLIMIT, timeout: Optional[float] = None,
               bound: Optional[Bound] = None) -> list[CheckResult]:
    """Every model's checks, then every `equivalent A, B` claim, in declaration order.

    ``timeout``: a time budget in seconds for the whole call (or pass one ``bound`` shared over
    several specs); checks left undecided when it runs out are `unknown`, saying why."""
    bound = bound or Bound.of(rlimit, timeout)
    results: list[CheckResult] = []
    render_only = {n for plan in (getattr(spec, "network_plans", None) or {}).values()
                   for n in getattr(plan, "render_only", ())}
    for model in spec.models.values():
        results += check_model(model, bound=bound, render_only=render_only)
    for eq in spec.equivalences:
        results.append(check_equivalence(spec.models[eq.left], spec.models[eq.right], pos=eq.pos, bound=bound))
    return results
