"""The compiled high-level causal model: a DAG of finite variables with mechanisms.

This is what a hypothesis is about. It evaluates, intervenes (do), and computes
interchange interventions: the counterfactual labels that a neural network must match.
"""
from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Sequence, TypeVar

import networkx as nx

from ..positions import NOWHERE, Pos
from .domains import Domain, Value
from .expr import Env, TExpr, compile_expr, free_vars, show

Inputs = Mapping[str, Value]
_T = TypeVar("_T")  # what _balanced draws


@dataclass(frozen=True)
class Variable:
    name: str
    kind: str  # "input" | "intermediate" | "output"
    domain: Domain
    mechanism: TExpr | None = None  # None for inputs
    declared_domain: bool = True  # False: inferred from the mechanism (solver skips the in-domain check)
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Property:
    """A user `assert`: a boolean expression over the model's variables that must hold for every input."""

    expr: TExpr
    text: str
    pos: Pos = field(default=NOWHERE, compare=False)


class CausalModel:
    """A finite causal model compiled to a networkx DiGraph (edge u->v: v's mechanism reads u)."""

    def __init__(self, name: str, variables: Sequence[Variable], properties: Sequence[Property] = (),
                 pos: Pos = NOWHERE) -> None:
        self.name = name
        self.pos = pos
        self.graph = nx.DiGraph()
        by_name = {v.name: v for v in variables}
        for v in variables:
            self.graph.add_node(v.name, kind=v.kind, domain=v.domain)
        for v in variables:
            if v.mechanism is not None:
                for parent in sorted(free_vars(v.mechanism)):
                    self.graph.add_edge(parent, v.name)
        if not nx.is_directed_acyclic_graph(self.graph):
            raise ValueError(f"model {name} has a cycle: {nx.find_cycle(self.graph)}")
        order = list(nx.lexicographical_topological_sort(self.graph))
        self.variables: dict[str, Variable] = {n: by_name[n] for n in order}
        self.properties = tuple(properties)
        self.inputs = tuple(v.name for v in variables if v.kind == "input")
        self.outputs = tuple(v.name for v in variables if v.kind == "output")
        self.intermediates = tuple(v.name for v in variables if v.kind == "intermediate")
        self._fns: dict[str, Callable[[Env], Value]] = {
            n: compile_expr(v.mechanism) for n, v in self.variables.items() if v.mechanism is not None}

    def __repr__(self) -> str:
        return f"<CausalModel {self.name}: inputs {list(self.inputs)}, outputs {list(self.outputs)}>"

    def domain(self, name: str) -> Domain:
        return self.variables[name].domain

    def mechanism_text(self, name: str) -> str | None:
        m = self.variables[name].mechanism
        return show(m) if m is not None else None

    # ------------------------------------------------------------ evaluation
    def evaluate(self, inputs: Inputs, do: Mapping[str, Value] | None = None) -> dict[str, Value]:
        """Values of every variable for `inputs`, with the variables in `do` held fixed (an intervention)."""
        do = do or {}
        self._check_assignment(do, "intervention")
        values: dict[str, Value] = {}
        for name, var in self.variables.items():
            if name in do:
                values[name] = do[name]
            elif var.kind == "input":
                if name not in inputs:
                    raise KeyError(f"model {self.name}: input '{name}' has no value")
                values[name] = inputs[name]
            else:
                values[name] = self._fns[name](values)
        self._check_assignment({k: inputs[k] for k in self.inputs if k not in do}, "input")
        return values

    intervene = evaluate

    def run(self, inputs: Inputs, do: Mapping[str, Value] | None = None) -> dict[str, Value]:
        """The output values only."""
        values = self.evaluate(inputs, do)
        return {o: values[o] for o in self.outputs}

    def interchange(self, base: Inputs, sources: Mapping[str, Inputs]) -> dict[str, Value]:
        """Interchange intervention: each variable V in `sources` takes the value it has on its own
        source input; everything else runs on `base`. Returns all variable values of the result.

        Several entries make a multi-source interchange (each variable with its own source)."""
        fixed = {var: self.evaluate(src)[var] for var, src in sources.items()}
        return self.evaluate(base, do=fixed)

    def _check_assignment(self, values: Mapping[str, Value], what: str) -> None:
        for name, value in values.items():
            if name not in self.variables:
                raise KeyError(f"model {self.name} has no variable '{name}'")
            domain = self.variables[name].domain
            if value not in domain:
                raise ValueError(f"{what} {name} = {value!r} is outside its domain {domain}")

    # ------------------------------------------------------------ input space
    def input_space_size(self) -> int:
        size = 1
        for name in self.inputs:
            size *= len(self.variables[name].domain)
        return size

    def enumerate_inputs(self) -> Iterator[dict[str, Value]]:
        """Every input assignment, in a fixed order (product of the input domains)."""
        domains = [self.variables[n].domain.values() for n in self.inputs]
        for combo in itertools.product(*domains):
            yield dict(zip(self.inputs, combo))

    def sample_input(self, rng: random.Random) -> dict[str, Value]:
        return {n: rng.choice(self.variables[n].domain.values()) for n in self.inputs}

    def sample_inputs(self, n: int, seed: int | random.Random = 0, balance: str | None = None,
                      max_tries: int = 200) -> list[dict[str, Value]]:
        """`n` inputs drawn uniformly; with `balance=V`, drawn so V's values are (near) equally frequent.

        Balancing matters: with domain 0..3, `a == b` holds a quarter of the time, and an
        unbalanced training set lets a network (or an alignment) win by guessing."""
        rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        if balance is None:
            return [self.sample_input(rng) for _ in range(n)]
        return _balanced(n, rng, lambda: self.sample_input(rng), lambda x: self.evaluate(x)[balance],
                         self.variables[balance].domain, max_tries)


def _balanced(n: int, rng: random.Random, draw: Callable[[], _T], key: Callable[[_T], Value],
              domain: Domain, max_tries: int) -> list[_T]:
    """Rejection sampling toward equal counts per key value.

    Values that are rare or unreachable leave their quota unfilled; the rest is then topped
    up with plain draws so that exactly `n` items come back."""
    buckets: dict[Value, list[_T]] = {v: [] for v in domain.values()}
    quota = -(-n // len(buckets))
    filled = 0
    for _ in range(n * max_tries):
        if filled >= n:
            break
        item = draw()
        bucket = buckets[key(item)]
        if len(bucket) < quota:
            bucket.append(item)
            filled += 1
    items = [x for b in buckets.values() for x in b]
    while len(items) < n:
        items.append(draw())
    rng.shuffle(items)
    return items[:n]
