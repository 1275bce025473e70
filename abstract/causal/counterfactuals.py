"""Counterfactual datasets: (base, sources) pairs labelled by the causal model's interchange.

A network aligned with a hypothesis must produce, under the same neural interchange, the
label computed here. `informativeness` says how many pairs could tell an aligned network
from one that ignores the intervention (pairs whose label the interchange does not change
test nothing).

Pairs are drawn as arrays (:mod:`.vectorized`): candidates in large batches, labels by array
interchange, and the filters (held-out keys, informative, label balance) as masks; only the
pairs kept become :class:`CounterfactualExample` objects.
"""
from __future__ import annotations

import contextlib
import gc
import operator
from dataclasses import dataclass
from typing import Collection, Hashable, Iterator, Mapping, Optional, Sequence

import numpy as np

from .domains import Value
from .model import CausalModel
from .sampling import GIVE_UP_FACTOR, MIN_ROUND, QuotaFill, draw_balanced_inputs
from .vectorized import ArrayModel, array_model, to_python

SEARCH_FACTOR = 64  # candidate pairs drawn per wanted pair before a draw gives up (filters too strict)


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


# ---------------------------------------------------------------- pairs as arrays
@dataclass
class PairArrays:
    """Counterfactual pairs as arrays: input rows are domain indices (``ArrayModel``)."""

    variables: tuple[str, ...]  # interchanged, each from its own source rows
    base: np.ndarray  # [N, n_inputs]
    sources: dict[str, np.ndarray]  # variable -> [N, n_inputs] (one array object when shared)
    base_out: dict[str, np.ndarray]  # output -> values on the base
    cf_out: dict[str, np.ndarray]  # output -> values under the interchange

    def __len__(self) -> int:
        return len(self.base)

    @property
    def key_vars(self) -> tuple[str, ...]:
        """The interchanged variables in :func:`pair_keys` order (sorted, like ``data.pair_key``)."""
        return tuple(sorted(self.variables))

    def changed(self) -> np.ndarray:
        """Rows whose interchange changes some output."""
        out = np.zeros(len(self), dtype=bool)
        for o, v in self.cf_out.items():
            out |= np.asarray(v != self.base_out[o], dtype=bool)
        return out

    def take(self, idx: np.ndarray) -> "PairArrays":
        shared: dict[int, np.ndarray] = {}  # a source array shared by several variables stays shared
        for s in self.sources.values():
            if id(s) not in shared:
                shared[id(s)] = s[idx]
        sources = {v: shared[id(s)] for v, s in self.sources.items()}
        return PairArrays(self.variables, self.base[idx], sources,
                          {o: a[idx] for o, a in self.base_out.items()}, {o: a[idx] for o, a in self.cf_out.items()})

    def examples(self, am: ArrayModel) -> list[CounterfactualExample]:
        """The pairs as plain examples (Python values, inputs in ``model.inputs`` order).

        Each example carries its pair identity precomputed (``example_key``): the engine
        hashes every drawn pair to hold it out, and equal input rows share that work here."""
        bases = am.python_rows(self.base)
        rows: dict[int, list[dict[str, Value]]] = {}  # a source array shared by several variables
        for s in self.sources.values():
            if id(s) not in rows:
                rows[id(s)] = am.python_rows(s)
        sources = {v: rows[id(s)] for v, s in self.sources.items()}
        items: dict[int, tuple] = {}  # id of a (shared) input dict -> its items

        def items_of(d: dict[str, Value]) -> tuple:
            t = items.get(id(d))
            if t is None:
                t = items[id(d)] = tuple(d.items())
            return t

        def outputs(arrays: dict[str, np.ndarray]) -> list[dict[str, Value]]:
            cols = [to_python(am.type_of(o), arrays[o]) for o in am.outputs]
            memo: dict[tuple, dict[str, Value]] = {}  # few distinct outputs: one dict each
            return [memo.get(row) or memo.setdefault(row, dict(zip(am.outputs, row))) for row in zip(*cols)]

        base_out, cf_out = outputs(self.base_out), outputs(self.cf_out)
        variables, key_vars = self.variables, self.key_vars
        out = []
        with gc_paused():
            for i, b in enumerate(bases):
                ex = CounterfactualExample(dict(b), {v: dict(sources[v][i]) for v in variables},
                                           dict(base_out[i]), dict(cf_out[i]))
                object.__setattr__(ex, KEY_ATTR, (items_of(b), tuple((v, items_of(sources[v][i])) for v in key_vars)))
                out.append(ex)
        return out


KEY_ATTR = "_pair_key"


def example_key(ex: CounterfactualExample) -> tuple:
    """Identity of a (base, sources) pair: ``(base items, ((variable, source items), ...))`` with
    the variables sorted. Drawn examples carry it; others compute it."""
    key = getattr(ex, KEY_ATTR, None)  # not ex.__dict__: that would materialise a dict per example
    if key is None:
        key = (tuple(ex.base.items()), tuple((v, tuple(s.items())) for v, s in sorted(ex.sources.items())))
    return key


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Python's cyclic GC off while a draw builds its examples (also a decorator).

    Why: a draw creates hundreds of thousands of small containers; each generational
    collection rescans every one of them, which cost more than the drawing itself. They hold
    no cycles; collection resumes afterwards."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def concat_pairs(parts: Sequence[PairArrays], variables: tuple[str, ...], am: ArrayModel) -> PairArrays:
    """Rows of several draws of the same variables, in order."""
    if not parts:
        empty = np.zeros((0, len(am.inputs)), dtype=np.int64)
        none = {o: np.zeros(0, dtype=np.int64) for o in am.outputs}
        return PairArrays(variables, empty, {v: empty for v in variables}, none, dict(none))
    shared = all(len({id(s) for s in p.sources.values()}) == 1 for p in parts) and len(variables) > 1
    base = np.concatenate([p.base for p in parts])
    if shared:
        one = np.concatenate([p.sources[variables[0]] for p in parts])
        sources = {v: one for v in variables}
    else:
        sources = {v: np.concatenate([p.sources[v] for p in parts]) for v in variables}
    return PairArrays(variables, base, sources,
                      {o: np.concatenate([p.base_out[o] for p in parts]) for o in am.outputs},
                      {o: np.concatenate([p.cf_out[o] for p in parts]) for o in am.outputs})


def pair_keys(am: ArrayModel, base: np.ndarray, sources: Sequence[np.ndarray]) -> list[Hashable]:
    """One hashable per row identifying (base, sources) -- sources in sorted-variable order.

    Keys of pairs over the same variables compare equal exactly when the pairs are the same;
    held-out sets hold these (built from arrays, not from example dicts)."""
    parts = [base, *sources]
    codes = [c for c in map(am.codes, parts) if c is not None]
    if len(codes) < len(parts):  # no codes: the input space exceeds int64
        return list(map(tuple, np.concatenate(parts, axis=1).tolist()))
    if am.space ** len(parts) < 2 ** 62:
        code = np.zeros(len(base), dtype=np.int64)
        for c in codes:
            code = code * am.space + c
        return code.tolist()
    return list(zip(*(c.tolist() for c in codes)))


def keys_of(am: ArrayModel, pairs: PairArrays) -> list[Hashable]:
    return pair_keys(am, pairs.base, [pairs.sources[v] for v in pairs.key_vars])


def keys_from_examples(am: ArrayModel, keys: Collection,
                       only: Optional[tuple[str, ...]] = None) -> dict[tuple[str, ...], set]:
    """Held-out sets of :func:`pair_keys` per interchanged-variable set, from ``data.pair_key``
    tuples ``(base items, ((variable, source items), ...))``; keys outside the domains are dropped
    (no drawn pair can equal them). ``only``: the one (sorted) variable set wanted."""
    seen: dict[tuple, int] = {}  # distinct input item-tuples -> their row (few, in small spaces)
    groups: dict[tuple[str, ...], list[list[int]]] = {}
    first = operator.itemgetter(0)
    for base_items, srcs in keys:
        names = tuple(map(first, srcs))
        if only is not None and names != only:
            continue
        row = [seen.setdefault(base_items, len(seen))]
        row += [seen.setdefault(items, len(seen)) for _, items in srcs]
        groups.setdefault(names, []).append(row)
    if not seen:
        return {}
    X, ok = am.index_rows([dict(items) for items in seen])
    out: dict[tuple[str, ...], set] = {}
    for names, rows in groups.items():
        idx = np.array(rows, dtype=np.int64)
        idx = idx[ok[idx].all(axis=1)]
        out[names] = set(pair_keys(am, X[idx[:, 0]], [X[idx[:, j + 1]] for j in range(len(names))]))
    return out


def member(keys: Sequence[Hashable], held: Collection) -> np.ndarray:
    """Which keys are in ``held`` (a set lookup per key: hashing is all it costs)."""
    if not held:
        return np.zeros(len(keys), dtype=bool)
    return np.fromiter(map(held.__contains__, keys), dtype=bool, count=len(keys))


def draw_pair_arrays(model: CausalModel, variables: Sequence[str], n: int, rng: np.random.Generator, *,
                     label_balance: bool = True, input_balance: Optional[str] = None, informative: bool = False,
                     exclude: Collection = frozenset(), shared_source: bool = False) -> PairArrays:
    """Up to ``n`` pairs interchanging ``variables`` (each from its own source unless
    ``shared_source``), labelled by the model's interchange.

    ``label_balance``: the first output's counterfactual value near uniform over its domain
    (equal quotas; unreachable values' quotas go to the others). ``input_balance``: bases and
    sources drawn so that variable's values are equally frequent. ``informative``: only pairs
    whose interchange changes an output. ``exclude``: :func:`pair_keys` of pairs not to draw.
    Fewer than ``n`` come back only when the filters leave too few pairs."""
    variables = tuple(variables)
    for v in variables:
        if v not in model.variables:
            raise KeyError(f"model {model.name} has no variable '{v}'")
    am = array_model(model)
    out = model.outputs[0]
    n_labels = len(model.domain(out)) + 1  # the last bucket: values outside the declared domain (spares only)
    if label_balance:
        quota = np.full(n_labels, -(-n // (n_labels - 1)), dtype=np.int64)
        quota[-1] = 0
    else:
        quota = np.zeros(n_labels, dtype=np.int64)
        quota[0] = n
    fill = QuotaFill(quota, budget=SEARCH_FACTOR * n + 4 * MIN_ROUND, give_up=GIVE_UP_FACTOR * n + 4 * MIN_ROUND)
    kept: list[PairArrays] = []
    spare: list[PairArrays] = []
    key_vars = tuple(sorted(variables))
    while size := fill.next_size():
        base = draw_balanced_inputs(am, size, rng, input_balance)
        if shared_source:
            one = draw_balanced_inputs(am, size, rng, input_balance)
            sources = {v: one for v in variables}
        else:
            sources = {v: draw_balanced_inputs(am, size, rng, input_balance) for v in variables}
        base_vals = am.evaluate(base)
        cf = am.interchange(base, sources)
        batch = PairArrays(variables, base, sources, {o: base_vals[o] for o in am.outputs},
                           {o: cf[o] for o in am.outputs})
        ok = batch.changed() if informative else np.ones(size, dtype=bool)
        if exclude:
            rows = np.flatnonzero(ok)
            ok[rows[member(pair_keys(am, base[rows], [sources[v][rows] for v in key_vars]), exclude)]] = False
        if label_balance:
            label = am.class_index(out, cf[out])
            label = np.where(label < 0, n_labels - 1, label)
        else:
            label = np.zeros(size, dtype=np.int64)
        taken, extra = fill.accept(label, ok, size)
        kept.append(batch.take(taken))
        if sum(map(len, spare)) < n:
            spare.append(batch.take(extra))
    pairs = concat_pairs(kept + spare, variables, am)
    # kept rows first; spares (labels over quota) only top up what the quotas could not fill
    pairs = pairs.take(np.arange(min(n, len(pairs))))
    return pairs.take(rng.permutation(len(pairs)))


# ---------------------------------------------------------------- public datasets
@gc_paused()
def counterfactual_dataset(model: CausalModel, variables: Sequence[str], n: int, seed: int = 0,
                           balance: bool = True, shared_source: bool = False,
                           input_balance: str | None = None) -> list[CounterfactualExample]:
    """`n` examples interchanging `variables` (each its own source unless `shared_source`).

    With `balance`, the counterfactual label of the first output is drawn near uniform over its
    domain, so that a constant guess cannot score well. `input_balance` (a variable name)
    balances that variable's value on base and source inputs, e.g. `left` so that equal pairs
    are as common as unequal ones."""
    pairs = draw_pair_arrays(model, variables, n, np.random.default_rng(seed), label_balance=balance,
                             input_balance=input_balance, shared_source=shared_source)
    return pairs.examples(array_model(model))


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
