"""Counterfactual examples -> encoded tensors, split into train / dev / test.

Held-out means held out: dev and test pairs are drawn first, and train pairs with the same
(base, source) inputs are dropped, so IIA on test is never measured on a trained pair.
Counterfactual labels are balanced over the output's values (a constant guess scores chance).
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Union

import torch

from ..causal import CausalModel, CounterfactualExample, counterfactual_dataset, informativeness


@dataclass
class PairSet:
    """One split of (base, source) pairs for one variable, encoded for the network."""

    examples: list[CounterfactualExample]
    base_x: Any
    source_x: Any
    label: torch.Tensor  # class index of the counterfactual output
    base_label: torch.Tensor  # class index of the base output (no intervention)
    logit_pos: Optional[torch.Tensor]  # LMs: last real token of each base prompt
    source_vars: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def changed(self) -> torch.Tensor:
        return self.label != self.base_label

    @property
    def bases(self) -> list[dict]:
        return [ex.base for ex in self.examples]

    def sources(self, var: str) -> list[dict]:
        return [ex.sources[var] for ex in self.examples]


MEMO_LIMIT = 500_000  # cached evaluations per model view before the memo is cleared


def memoized(model: CausalModel) -> CausalModel:
    """A copy of ``model`` whose ``evaluate`` remembers its results.

    Why: drawing tens of thousands of counterfactual pairs (with informative filtering and
    label balancing) evaluates the same few inputs over and over; in pure Python that was most
    of a hypothesis's run time. The random draws are untouched, so the data are identical."""
    if getattr(model, "_memoized", False):
        return model
    view = copy.copy(model)
    memo: dict = {}
    evaluate = model.evaluate

    def cached(inputs, do=None):
        try:
            key = (tuple(inputs.items()), tuple(sorted(do.items())) if do else ())
            hit = memo.get(key)
        except TypeError:  # unhashable values: no memo
            return evaluate(inputs, do)
        if hit is None:
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            hit = memo[key] = evaluate(inputs, do)
        return dict(hit)

    values = {n: list(model.variables[n].domain.values()) for n in model.inputs}

    def sample_input(rng: random.Random) -> dict:  # the same draws as CausalModel.sample_input
        return {n: rng.choice(values[n]) for n in model.inputs}

    view.evaluate = cached
    view.sample_input = sample_input
    view._memoized = True
    return view


def pair_key(ex: CounterfactualExample) -> tuple:
    """Identity of a (base, sources) pair, for holding pairs out of training."""
    return (tuple(ex.base.items()), tuple((v, tuple(s.items())) for v, s in sorted(ex.sources.items())))


def encode_pairs(examples: list[CounterfactualExample], var: str, encoder) -> PairSet:
    """Encode bases and the ``var`` sources of ``examples`` (labels from the causal model)."""
    bases = [ex.base for ex in examples]
    base_x = encoder.encode(bases)
    source_x = encoder.encode([ex.sources[var] for ex in examples])
    label = torch.tensor([encoder.classes.index(ex.counterfactual_output) for ex in examples], dtype=torch.long)
    base_label = torch.tensor([encoder.classes.index(ex.base_output) for ex in examples], dtype=torch.long)
    return PairSet(examples, base_x, source_x, label, base_label, encoder.logit_positions(base_x), (var,))


def draw_pairs(model: CausalModel, var: Union[str, Sequence[str]], n: int, seed: int, balance: Optional[str],
          informative: bool, exclude: set) -> list[CounterfactualExample]:
    """``n`` examples not in ``exclude``; with ``informative`` only label-changing ones, re-balanced
    over the counterfactual label (filtering undoes the sampler's balance). Several variables:
    each interchanged from its own source (multi-source examples, for joint training)."""
    variables = [var] if isinstance(var, str) else list(var)
    out_var = model.outputs[0]
    quota = n if not informative else -(-n // len(model.domain(out_var)))
    buckets: dict = {}
    out: list[CounterfactualExample] = []
    for attempt in range(8):  # top up what the filters removed; tiny input spaces may leave fewer
        want = n - len(out)
        if want <= 0:
            break
        factor = 1.2 if not informative else 4.0
        draw = counterfactual_dataset(model, variables, int(want * factor) + 8, seed=seed + 100 * attempt,
                                      input_balance=balance)
        for e in draw:
            if len(out) >= n:
                break
            if pair_key(e) in exclude or (informative and not e.changed):
                continue
            b = buckets.setdefault(e.counterfactual_output[out_var], [])
            if len(b) < quota or attempt >= 6:
                b.append(e)
                out.append(e)
    random.Random(seed).shuffle(out)
    return out


def make_splits(model: CausalModel, var: str, n_train: int, n_dev: int, n_test: int, seed: int,
                balance: Optional[str] = None, informative: bool = False) -> dict[str, list[CounterfactualExample]]:
    """Disjoint train/dev/test counterfactual examples for interchanging ``var``.

    When the input space is too small to hold pairs out (``disjoint`` False in the result),
    train and dev are drawn without excluding the test pairs.

    ``informative``: keep only pairs whose interchange changes the label (on the rest, any
    alignment that ignores the source is scored right, and two hypotheses that agree there
    cannot be told apart)."""
    test = draw_pairs(model, var, n_test, seed * 1000 + 1, balance, informative, set())
    held = {pair_key(e) for e in test}
    dev = draw_pairs(model, var, n_dev, seed * 1000 + 2, balance, informative, held)
    held |= {pair_key(e) for e in dev}
    train = draw_pairs(model, var, n_train, seed * 1000 + 3, balance, informative, held)
    disjoint = True
    if len(train) < n_train // 2 or not dev:  # input space too small to hold pairs out
        dev = dev or draw_pairs(model, var, n_dev, seed * 1000 + 2, balance, informative, set())
        train = draw_pairs(model, var, n_train, seed * 1000 + 3, balance, informative, set())
        disjoint = False
    return {"train": train, "dev": dev, "test": test, "disjoint": disjoint}


def isolate_pairs(model: CausalModel, a: str, b: str, n: int, seed: int, exclude: frozenset | set = frozenset(),
                  max_tries: int = 200) -> list[CounterfactualExample]:
    """(base, source) pairs where interchanging ``a`` and interchanging ``b`` from the same
    source predict different outputs; each example is labelled with the ``a``-only
    counterfactual. On these pairs, an intervention on ``a``'s site that also moved ``b``
    would be wrong (RAVEL's isolate). ``exclude``: keys (:func:`pair_key`) of the pairs ``a``
    was trained on -- an ``a``-only pair has the same label there, so it is held out here too."""
    from ..causal.counterfactuals import make_example
    rng = random.Random(seed)
    out: list[CounterfactualExample] = []
    for _ in range(n * max_tries):
        if len(out) >= n:
            break
        base, src = model.sample_input(rng), model.sample_input(rng)
        ex_a = make_example(model, base, {a: src})
        if exclude and pair_key(ex_a) in exclude:
            continue
        ex_b = model.interchange(base, {b: src})
        if any(ex_b[o] != ex_a.counterfactual_output[o] for o in model.outputs):
            out.append(ex_a)
    return out


def dataset_summary(splits: dict[str, dict[str, list]]) -> dict[str, Any]:
    """Sizes (of the first variable; all have the same) and mean test informativeness."""
    first = next(iter(splits.values()))
    info = [informativeness(s["test"]) for s in splits.values()]
    return {"train": len(first["train"]), "dev": len(first["dev"]), "test": len(first["test"]),
            "informativeness": round(sum(info) / len(info), 4) if info else 0.0,
            "held_out": all(s.get("disjoint", True) for s in splits.values())}


def minibatches(n: int, batch: int, gen: torch.Generator) -> list[torch.Tensor]:
    """A shuffled partition of ``range(n)`` into batches (last one may be short)."""
    perm = torch.randperm(n, generator=gen)
    return [perm[i:i + batch] for i in range(0, n, batch)]


def take(x: Any, idx: torch.Tensor) -> Any:
    """Rows ``idx`` of a tensor or of every tensor in a dict of encoded inputs."""
    if torch.is_tensor(x):
        return x[idx.to(x.device)]
    if isinstance(x, dict):
        return {k: take(v, idx) for k, v in x.items()}
    raise TypeError(f"cannot index encoded inputs of type {type(x).__name__}")


def size(x: Any) -> int:
    return int(x.shape[0]) if torch.is_tensor(x) else int(next(iter(x.values())).shape[0])


