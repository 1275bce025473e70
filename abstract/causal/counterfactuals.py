"""Counterfactual datasets: (base, sources) pairs labelled by the causal model's interchange.

A network aligned with a hypothesis must produce, under the same neural interchange, the
label computed here. `informativeness` says how many pairs could tell an aligned network
from one that ignores the intervention (pairs whose label the interchange does not change
test nothing).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Mapping, Sequence

from .domains import Value
from .model import CausalModel, _balanced


@dataclass(frozen=True)
class CounterfactualExample:
    base: dict[str, Value]
    sources: dict[str, dict[str, Value]]  # variable -> the source input it takes its value from
    base_output: dict[str, Value]
    counterfactual_output: dict[str, Value]

    @property
    def changed(self) -> bool:
        """Does the interchange change any output? (If not, this pair tests nothing.)"""
        return self.base_output != self.counterfactual_output


def make_example(model: CausalModel, base: Mapping[str, Value],
                 sources: Mapping[str, Mapping[str, Value]]) -> CounterfactualExample:
    result = model.interchange(base, sources)
    return CounterfactualExample(
        base=dict(base), sources={v: dict(s) for v, s in sources.items()},
        base_output=model.run(base), counterfactual_output={o: result[o] for o in model.outputs})


def counterfactual_dataset(model: CausalModel, variables: Sequence[str], n: int, seed: int = 0,
                           balance: bool = True, shared_source: bool = False,
                           input_balance: str | None = None) -> list[CounterfactualExample]:
    """`n` examples interchanging `variables` (each its own source unless `shared_source`).

    With `balance`, the counterfactual label of the first output is drawn near uniform over its
    domain, so that a constant guess cannot score well. `input_balance` (a variable name)
    balances that variable's value on base and source inputs, e.g. `left` so that equal pairs
    are as common as unequal ones."""
    for v in variables:
        if v not in model.variables:
            raise KeyError(f"model {model.name} has no variable '{v}'")
    rng = random.Random(seed)

    balance_values = model.variables[input_balance].domain.values() if input_balance is not None else ()

    def draw_input() -> dict[str, Value]:
        if input_balance is None:
            return model.sample_input(rng)
        # Pick the balanced variable's value first, then draw an input that has it (rejection);
        # a value that is rare or unreachable falls back to a plain draw.
        target = rng.choice(balance_values)
        for _ in range(200):
            x = model.sample_input(rng)
            if model.evaluate(x)[input_balance] == target:
                return x
        return x

    def draw() -> CounterfactualExample:
        base = draw_input()
        if shared_source:
            src = draw_input()
            sources = {v: src for v in variables}
        else:
            sources = {v: draw_input() for v in variables}
        return make_example(model, base, sources)

    if not balance:
        return [draw() for _ in range(n)]
    out = model.outputs[0]
    return _balanced(n, rng, draw, lambda ex: ex.counterfactual_output[out], model.variables[out].domain, 200)


def informativeness(examples: Sequence[CounterfactualExample]) -> float:
    """Share of examples whose label the interchange changes (0.0 for an empty set)."""
    if not examples:
        return 0.0
    return sum(ex.changed for ex in examples) / len(examples)


def distinguishing_rate(examples: Sequence[CounterfactualExample], other: CausalModel,
                        variable_map: Mapping[str, str]) -> float:
    """Share of examples on which `other` (with its variables named by `variable_map`) predicts a
    different counterfactual label: 0.0 means this dataset cannot tell the two hypotheses apart."""
    if not examples:
        return 0.0
    differ = 0
    for ex in examples:
        theirs = other.interchange(ex.base, {variable_map[v]: s for v, s in ex.sources.items()})
        differ += any(theirs.get(o) != val for o, val in ex.counterfactual_output.items())
    return differ / len(examples)
