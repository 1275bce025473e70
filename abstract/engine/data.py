"""Counterfactual examples -> encoded tensors, split into train / dev / test.

Held-out means held out: dev and test pairs are drawn first, and train pairs with the same
(base, source) inputs are excluded, so IIA on test is never measured on a trained pair.
Counterfactual labels are balanced over the output's values (a constant guess scores chance).
Drawing is vectorised (``causal.counterfactuals.draw_pair_arrays``); every draw has its own
named seed stream (``abstract.seeds``). A split that the filters could not fill records it:
``split.wanted`` (a :class:`PairList`) is how many pairs were asked for, ``len(split)`` how
many were found; :func:`shortfalls` lists the short ones for a warning.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Collection, Iterable, Mapping, Optional, Sequence, Union

import numpy as np
import torch

from ..causal import CausalModel, CounterfactualExample, informativeness
from ..causal.counterfactuals import (PairArrays, concat_pairs, draw_pair_arrays, example_key, gc_paused,
                                      keys_from_examples, keys_of, member, pair_keys)
from ..causal.domains import Value
from ..causal.sampling import QuotaFill
from ..causal.vectorized import array_model
from ..seeds import SeedStreams


class PairList(list):
    """The examples of one split, and how many were wanted (``len`` is how many were found)."""

    def __init__(self, items: Iterable[CounterfactualExample] = (), wanted: Optional[int] = None) -> None:
        super().__init__(items)
        self.wanted = len(self) if wanted is None else wanted

    @property
    def shortfall(self) -> int:
        """Wanted pairs the filters (held-out, informative) left undrawn."""
        return max(0, self.wanted - len(self))


def shortfalls(splits: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """``{split: (found, wanted)}`` for every split of ``make_splits``/``make_joint_splits``
    (or of a dict of those) that came back short."""
    out: dict[str, tuple[int, int]] = {}
    for name, value in splits.items():
        if isinstance(value, PairList) and value.shortfall:
            out[name] = (len(value), value.wanted)
        elif isinstance(value, dict):
            out.update({f"{name}/{k}": v for k, v in shortfalls(value).items()})
    return out


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


class MemoizedModel(CausalModel):
    """A view of a compiled model whose ``evaluate`` remembers its results (see :func:`memoized`)."""

    def __init__(self, model: CausalModel) -> None:
        # no CausalModel.__init__: the view shares the model's compiled state (a shallow copy), not a recompile
        self.__dict__.update(model.__dict__)
        self._memo: dict[tuple, dict[str, Value]] = {}
        self._input_values = {n: list(model.variables[n].domain.values()) for n in model.inputs}

    def evaluate(self, inputs: Mapping[str, Value], do: Mapping[str, Value] | None = None) -> dict[str, Value]:
        try:
            key = (tuple(inputs.items()), tuple(sorted(do.items())) if do else ())
            hit = self._memo.get(key)
        except TypeError:  # unhashable values: no memo
            return super().evaluate(inputs, do)
        if hit is None:
            if len(self._memo) >= MEMO_LIMIT:
                self._memo.clear()
            hit = self._memo[key] = super().evaluate(inputs, do)
        return dict(hit)

    def sample_input(self, rng: random.Random) -> dict[str, Value]:  # the same draws as CausalModel.sample_input
        return {n: rng.choice(self._input_values[n]) for n in self.inputs}


def memoized(model: CausalModel) -> CausalModel:
    """A copy of ``model`` whose ``evaluate`` remembers its results.

    Why: drawing tens of thousands of counterfactual pairs (with informative filtering and
    label balancing) evaluates the same few inputs over and over; in pure Python that was most
    of a hypothesis's run time. The random draws are untouched, so the data are identical."""
    if isinstance(model, MemoizedModel):
        return model
    return MemoizedModel(model)


def pair_key(ex: CounterfactualExample) -> tuple:
    """Identity of a (base, sources) pair, for holding pairs out of training (drawn examples
    carry it precomputed)."""
    return example_key(ex)


def encode_pairs(examples: list[CounterfactualExample], var: str, encoder) -> PairSet:
    """Encode bases and the ``var`` sources of ``examples`` (labels from the causal model)."""
    bases = [ex.base for ex in examples]
    base_x = encoder.encode(bases)
    source_x = encoder.encode([ex.sources[var] for ex in examples])
    label = torch.tensor([encoder.classes.index(ex.counterfactual_output) for ex in examples], dtype=torch.long)
    base_label = torch.tensor([encoder.classes.index(ex.base_output) for ex in examples], dtype=torch.long)
    return PairSet(examples, base_x, source_x, label, base_label, encoder.logit_positions(base_x), (var,))


class Held:
    """Held-out pair keys (``counterfactuals.pair_keys``) per interchanged-variable set."""

    def __init__(self) -> None:
        self.keys: dict[tuple[str, ...], set] = {}

    def add(self, model: CausalModel, pairs: PairArrays) -> None:
        self.keys.setdefault(pairs.key_vars, set()).update(keys_of(array_model(model), pairs))

    def add_examples(self, model: CausalModel, keys: Collection, only: Optional[Sequence[str]] = None) -> None:
        """Add ``pair_key`` tuples (from examples drawn elsewhere); ``only``: of these variables."""
        wanted = tuple(sorted(only)) if only is not None else None
        for names, ks in keys_from_examples(array_model(model), keys, wanted).items():
            self.keys.setdefault(names, set()).update(ks)

    def of(self, variables: Sequence[str]) -> set:
        return self.keys.get(tuple(sorted(variables)), set())


def draw_arrays(model: CausalModel, variables: Sequence[str], n: int, seed: int, balance: Optional[str],
                informative: bool, held: Optional[Held]) -> PairArrays:
    """Pairs as arrays (see ``draw_pair_arrays``), none of them among ``held``'s."""
    return draw_pair_arrays(model, variables, n, np.random.default_rng(seed), input_balance=balance,
                            informative=informative, exclude=held.of(variables) if held else frozenset())


def as_examples(model: CausalModel, pairs: PairArrays, wanted: int) -> PairList:
    """The drawn pairs as a split: examples, and how many were wanted."""
    return PairList(pairs.examples(array_model(model)), wanted)


@gc_paused()
def draw_pairs(model: CausalModel, var: Union[str, Sequence[str]], n: int, seed: int, balance: Optional[str],
               informative: bool, exclude: Collection) -> PairList:
    """``n`` examples whose :func:`pair_key` is not in ``exclude``, labels balanced over the first
    output's values; with ``informative`` only label-changing ones. Several variables: each
    interchanged from its own source (multi-source examples, for joint training)."""
    variables = [var] if isinstance(var, str) else list(var)
    held = Held()
    held.add_examples(model, exclude, only=variables)
    return as_examples(model, draw_arrays(model, variables, n, seed, balance, informative, held), n)


@gc_paused()
def make_splits(model: CausalModel, var: str, n_train: int, n_dev: int, n_test: int, seed: int,
                balance: Optional[str] = None, informative: bool = False) -> dict[str, Any]:
    """Disjoint train/dev/test counterfactual examples for interchanging ``var``.

    When the input space is too small to hold pairs out (``disjoint`` False in the result),
    train and dev are drawn without excluding the test pairs. Each split is a
    :class:`PairList` (``wanted`` says how many were asked for).

    ``informative``: keep only pairs whose interchange changes the label (on the rest, any
    alignment that ignores the source is scored right, and two hypotheses that agree there
    cannot be told apart)."""
    streams = SeedStreams(seed)
    vs = [var]
    test = draw_arrays(model, vs, n_test, streams.seed("data/test", var), balance, informative, None)
    held = Held()
    held.add(model, test)
    dev = draw_arrays(model, vs, n_dev, streams.seed("data/dev", var), balance, informative, held)
    held.add(model, dev)
    train = draw_arrays(model, vs, n_train, streams.seed("data/train", var), balance, informative, held)
    disjoint = True
    if len(train) < n_train // 2 or (n_dev > 0 and not len(dev)):  # input space too small to hold pairs out
        if not len(dev):
            dev = draw_arrays(model, vs, n_dev, streams.seed("data/dev", var), balance, informative, None)
        train = draw_arrays(model, vs, n_train, streams.seed("data/train", var), balance, informative, None)
        disjoint = False
    return {"train": as_examples(model, train, n_train), "dev": as_examples(model, dev, n_dev),
            "test": as_examples(model, test, n_test), "disjoint": disjoint}


@gc_paused()
def isolate_pairs(model: CausalModel, a: str, b: str, n: int, seed: int, exclude: frozenset | set = frozenset(),
                  max_tries: int = 200) -> PairList:
    """(base, source) pairs where interchanging ``a`` and interchanging ``b`` from the same
    source predict different outputs; each example is labelled with the ``a``-only
    counterfactual. On these pairs, an intervention on ``a``'s site that also moved ``b``
    would be wrong (RAVEL's isolate). ``exclude``: keys (:func:`pair_key`) of the pairs ``a``
    was trained on -- an ``a``-only pair has the same label there, so it is held out here too.
    At most ``n * max_tries`` candidates are drawn."""
    for v in (a, b):
        if v not in model.variables:
            raise KeyError(f"model {model.name} has no variable '{v}'")
    am = array_model(model)
    rng = np.random.default_rng(SeedStreams(seed).seed("data/isolate", a, b))
    held = Held()
    held.add_examples(model, exclude, only=[a])
    excluded = held.of([a])
    fill = QuotaFill(np.array([n]), budget=n * max_tries, give_up=n * max_tries)
    kept = []
    while size := fill.next_size():
        base, src = am.uniform(size, rng), am.uniform(size, rng)
        base_vals = am.evaluate(base)
        via_a, via_b = am.interchange(base, {a: src}), am.interchange(base, {b: src})
        ok = np.zeros(size, dtype=bool)
        for o in am.outputs:
            ok |= np.asarray(via_a[o] != via_b[o], dtype=bool)
        if excluded:
            rows = np.flatnonzero(ok)
            ok[rows[member(pair_keys(am, base[rows], [src[rows]]), excluded)]] = False
        taken, _ = fill.accept(np.zeros(size, dtype=np.int64), ok, size)
        kept.append(PairArrays((a,), base[taken], {a: src[taken]}, {o: base_vals[o][taken] for o in am.outputs},
                               {o: via_a[o][taken] for o in am.outputs}))
    return as_examples(model, concat_pairs(kept, (a,), am), n)


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


