"""A causal model evaluated over arrays of inputs (numpy), for drawing counterfactual data fast.

Why: counterfactual datasets need tens of thousands of evaluations and interchanges; one
Python call per example was most of a hypothesis's run time. Here every mechanism is compiled
to numpy code over whole columns, so drawing 100,000 candidate pairs is a handful of array
operations. The result is exactly the plain model's (``CausalModel.evaluate``): tests compare
the two on every input of the shipped models.

Representation: an input assignment is a row of *domain indices* (one column per input, in
``model.inputs`` order). A variable's values are an array in its type's representation: ints
as int64 (Python ints in an object array when an expression could leave int64), bools as
bool, enum members as their index in the enum. A mechanism whose integers could overflow
int64, or anything else the array code does not cover, is evaluated row by row by the plain
closure (``compile_expr``), so the semantics never differ. A mechanism that is undefined on a
drawn input (division by zero, a missing table key) is replayed through the plain model, which
raises its own located error.
"""
from __future__ import annotations

import weakref
from typing import Callable, Mapping, Optional, Sequence

import numpy as np

from .domains import Domain, Type, Value
from .expr import Const, Lookup, MechanismUndefined, Op, TExpr, Var, compile_expr, free_vars
from .intervals import op_interval

Arrays = dict[str, np.ndarray]
# A compiled mechanism: (environment of arrays, row count) -> (values, undefined mask or None)
ArrayFn = Callable[[Arrays, int], tuple[np.ndarray, Optional[np.ndarray]]]

SAFE_INT = 2 ** 62  # integer bounds at or beyond this are evaluated with Python ints


def to_python(t: Type, arr: np.ndarray) -> list[Value]:
    """Plain Python values (int, bool, enum member name) of an array in ``t``'s representation."""
    if t.kind == "enum":
        return np.asarray(t.members, dtype=object)[np.asarray(arr, dtype=np.int64)].tolist()
    if t.kind == "bool":
        return np.asarray(arr, dtype=bool).tolist()
    return [int(v) for v in arr.tolist()] if arr.dtype == object else arr.tolist()


def from_python(t: Type, values: Sequence[Value]) -> np.ndarray:
    """The array representation of plain values of type ``t``."""
    if t.kind == "enum":
        pos: dict[Value, int] = {m: i for i, m in enumerate(t.members)}
        return np.fromiter((pos[v] for v in values), dtype=np.int64, count=len(values))
    if t.kind == "bool":
        return np.fromiter((bool(v) for v in values), dtype=bool, count=len(values))
    ints = [int(v) for v in values]
    if all(-SAFE_INT < v < SAFE_INT for v in ints):
        return np.fromiter(ints, dtype=np.int64, count=len(ints))
    return np.array(ints, dtype=object)


def const_repr(t: Type, value: Value) -> object:
    if t.kind == "enum":
        return np.int64(t.members.index(value))
    if t.kind == "bool":
        return np.bool_(value)
    return np.int64(value) if -SAFE_INT < int(value) < SAFE_INT else int(value)


def _or(a: Optional[np.ndarray], b: Optional[np.ndarray]) -> Optional[np.ndarray]:
    if a is None:
        return b
    return a if b is None else a | b


class ArrayModel:
    """Array evaluation of one ``CausalModel`` (build with :func:`array_model`, which caches it)."""

    def __init__(self, model) -> None:
        self.model = model
        self.inputs: tuple[str, ...] = tuple(model.inputs)
        self.outputs: tuple[str, ...] = tuple(model.outputs)
        self.domains: dict[str, Domain] = {n: v.domain for n, v in model.variables.items()}
        self.sizes = np.array([len(self.domains[n]) for n in self.inputs], dtype=np.int64)
        self.space = 1  # number of input assignments (a Python int: may exceed int64)
        for s in self.sizes.tolist():
            self.space *= int(s)
        self._strides = None
        if self.space < SAFE_INT:
            strides = np.ones(len(self.inputs), dtype=np.int64)
            for i in range(len(self.inputs) - 2, -1, -1):
                strides[i] = strides[i + 1] * self.sizes[i + 1]
            self._strides = strides
        self._bounds: dict[str, tuple[int, int]] = {}
        self._fns: dict[str, ArrayFn] = {}
        for name, var in model.variables.items():
            if var.mechanism is None:
                self._bounds[name] = self._domain_bounds(var.domain)
                continue
            try:
                lo, hi = self._interval(var.mechanism)
                safe = -SAFE_INT < lo and hi < SAFE_INT
            except _Unbounded:
                lo, hi, safe = 0, 0, False
            d_lo, d_hi = self._domain_bounds(var.domain)
            self._bounds[name] = (min(lo, d_lo), max(hi, d_hi))
            self._fns[name] = self._compile(var.mechanism) if safe else self._rowwise(var.mechanism)

    # ------------------------------------------------------------ types and values
    def type_of(self, name: str) -> Type:
        return self.domains[name].type

    @staticmethod
    def _domain_bounds(d: Domain) -> tuple[int, int]:
        return (d.low, d.high) if d.kind == "int" else (0, 1)

    def input_values(self, X: np.ndarray) -> Arrays:
        """The inputs' values (array representation) of rows of domain indices."""
        out: Arrays = {}
        for i, name in enumerate(self.inputs):
            d = self.domains[name]
            col = X[:, i]
            out[name] = col.astype(bool) if d.kind == "bool" else (col + d.low if d.kind == "int" else col)
        return out

    def class_index(self, name: str, arr: np.ndarray) -> np.ndarray:
        """Each value's position in ``name``'s domain (its class index); -1 outside the domain."""
        d = self.domains[name]
        if d.kind == "bool":
            return np.asarray(arr, dtype=np.int64)
        if d.kind == "enum":
            return np.asarray(arr, dtype=np.int64)
        inside = np.asarray((arr >= d.low) & (arr <= d.high), dtype=bool)
        return np.where(inside, arr - d.low, -1).astype(np.int64)

    def python_rows(self, X: np.ndarray) -> list[dict[str, Value]]:
        """Rows of domain indices as input dicts (in ``model.inputs`` order).

        Equal rows share one dict (copy before changing one): a small input space has few
        distinct rows, so most of the work is a lookup."""
        codes = self.codes(X)
        if codes is not None and len(X) > 64:
            uniq, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
            rows = self._rows(X[first])
            return [rows[i] for i in np.asarray(inverse).reshape(-1).tolist()]
        return self._rows(X)

    def _rows(self, X: np.ndarray) -> list[dict[str, Value]]:
        cols = [to_python(self.type_of(n), v) for n, v in self.input_values(X).items()]
        return [dict(zip(self.inputs, row)) for row in zip(*cols)] if cols else [{} for _ in range(len(X))]

    def index_rows(self, rows: Sequence[Mapping[str, Value]]) -> tuple[np.ndarray, np.ndarray]:
        """Domain indices of input dicts, and which rows are complete and inside every domain."""
        X = np.zeros((len(rows), len(self.inputs)), dtype=np.int64)
        ok = np.ones(len(rows), dtype=bool)
        for j, name in enumerate(self.inputs):
            d = self.domains[name]
            members = {m: i for i, m in enumerate(d.members)}  # empty unless d is an enum
            for i, row in enumerate(rows):
                v = row.get(name)
                if d.kind == "int":
                    idx = v - d.low if type(v) is int else -1
                    good = 0 <= idx <= d.high - d.low
                elif d.kind == "bool":
                    good, idx = type(v) is bool, int(bool(v))
                else:
                    idx = members.get(v, -1) if isinstance(v, str) else -1
                    good = idx >= 0
                if good:
                    X[i, j] = idx
                else:
                    ok[i] = False
        return X, ok

    def uniform(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` input rows drawn uniformly from the input space."""
        if not self.inputs:
            return np.zeros((n, 0), dtype=np.int64)
        return rng.integers(0, self.sizes, size=(n, len(self.inputs)), dtype=np.int64)

    def codes(self, X: np.ndarray) -> Optional[np.ndarray]:
        """One integer per input row (mixed radix), or None when the input space exceeds int64."""
        return None if self._strides is None else X @ self._strides

    # ------------------------------------------------------------ evaluation
    def evaluate(self, X: np.ndarray, do: Optional[Mapping[str, np.ndarray]] = None) -> Arrays:
        """Every variable's values on the input rows ``X``, with the variables in ``do`` held at
        the given values (one per row). Raises what the plain model raises on the first row it
        would raise on (a value outside its domain, an undefined mechanism)."""
        do = do or {}
        n = len(X)
        self._check_domains(X, do)
        values: Arrays = {}
        inputs = self.input_values(X)
        undefined: Optional[np.ndarray] = None
        for name in self.domains:
            if name in do:
                values[name] = do[name]
            elif name in inputs:
                values[name] = inputs[name]
            else:
                val, undef = self._fns[name](values, n)
                if np.ndim(val) == 0:  # a constant mechanism
                    val = np.full(n, val, dtype=object) if type(val) is int else np.full(n, val)
                values[name] = val
                undefined = _or(undefined, undef)
        if undefined is not None and undefined.any():
            self._replay(X, do, int(np.flatnonzero(undefined)[0]))
        return values

    def interchange(self, X: np.ndarray, sources: Mapping[str, np.ndarray]) -> Arrays:
        """Interchange intervention on rows: each variable in ``sources`` takes its value on its
        own source rows; everything else runs on ``X`` (``CausalModel.interchange``)."""
        cache: dict[int, Arrays] = {}  # a source array shared by several variables is evaluated once
        fixed = {}
        for var, src in sources.items():
            if id(src) not in cache:
                cache[id(src)] = self.evaluate(src)
            fixed[var] = cache[id(src)][var]
        return self.evaluate(X, do=fixed)

    def _check_domains(self, X: np.ndarray, do: Mapping[str, np.ndarray]) -> None:
        for name, arr in do.items():
            if name not in self.domains:
                raise KeyError(f"model {self.model.name} has no variable '{name}'")
            bad = self.class_index(name, arr) < 0
            if bad.any():
                self._replay(X, do, int(np.flatnonzero(bad)[0]))

    def _replay(self, X: np.ndarray, do: Mapping[str, np.ndarray], row: int) -> None:
        """Run one row through the plain model so that it raises its own error."""
        inputs = self.python_rows(X[row:row + 1])[0]
        fixed = {k: to_python(self.type_of(k), np.asarray(v)[row:row + 1])[0] for k, v in do.items()}
        self.model.evaluate(inputs, do=fixed)
        raise MechanismUndefined(f"model {self.model.name}: a mechanism is undefined on {inputs} (do {fixed})")

    # ------------------------------------------------------------ compilation
    def _interval(self, e: TExpr) -> tuple[int, int]:
        """Bounds of an int expression (anything else: 0..1), to decide whether int64 is safe."""
        if e.type.kind != "int":
            for a in getattr(e, "args", ()):
                self._interval(a)
            return 0, 1
        if isinstance(e, Const):
            return int(e.value), int(e.value)
        if isinstance(e, Var):
            return self._bounds[e.name]
        if isinstance(e, Lookup):
            for a in e.args:
                self._interval(a)
            return self._domain_bounds(e.table.value_domain)
        assert isinstance(e, Op)
        ivs = [self._interval(a) for a in e.args]
        try:
            return op_interval(e.op, ivs)
        except ValueError:
            raise _Unbounded(e.op) from None

    def _rowwise(self, e: TExpr) -> ArrayFn:
        """The plain closure applied row by row (exact Python ints; the rare fallback)."""
        fn, names, t = compile_expr(e), sorted(free_vars(e)), e.type

        def run(env: Arrays, n: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
            cols = {k: to_python(self.type_of(k), env[k]) for k in names}
            undef = np.zeros(n, dtype=bool)
            out: list[Value] = []
            for i in range(n):
                try:
                    out.append(fn({k: cols[k][i] for k in names}))
                except MechanismUndefined:
                    undef[i] = True
                    out.append(_placeholder(t))
            return from_python(t, out), undef

        return run

    def _compile(self, e: TExpr) -> ArrayFn:
        if isinstance(e, Const):
            c = const_repr(e.type, e.value)
            return lambda env, n: (c, None)  # type: ignore[return-value]
        if isinstance(e, Var):
            name = e.name
            return lambda env, n: (env[name], None)
        if isinstance(e, Lookup):
            return self._compile_lookup(e)
        assert isinstance(e, Op)
        fns = [self._compile(a) for a in e.args]
        op = e.op
        if op in ("neg", "not", "abs"):
            (f,) = fns
            unary = {"neg": np.negative, "not": np.logical_not, "abs": np.abs}[op]

            def apply1(env: Arrays, n: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
                v, u = f(env, n)
                return unary(v), u
            return apply1
        if op in ("and", "or"):
            f, g = fns
            is_and = op == "and"

            def logic(env: Arrays, n: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
                (a, ua), (b, ub) = f(env, n), g(env, n)
                val = np.logical_and(a, b) if is_and else np.logical_or(a, b)
                # short circuit: the right side matters only where the left does not decide
                reach = a if is_and else np.logical_not(a)
                return val, _or(ua, None if ub is None else reach & ub)
            return logic
        if op == "ite":
            c, t, o = fns

            def ite(env: Arrays, n: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
                (cv, uc), (tv, ut), (ov, uo) = c(env, n), t(env, n), o(env, n)
                undef = None
                if ut is not None or uo is not None:
                    z = np.zeros(n, dtype=bool)
                    undef = np.where(cv, z if ut is None else ut, z if uo is None else uo)
                return np.where(cv, tv, ov), _or(uc, undef)
            return ite
        if op in ("min", "max"):
            red = np.minimum if op == "min" else np.maximum

            def minmax(env: Arrays, n: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
                vals = [f(env, n) for f in fns]
                out, undef = vals[0]
                for v, u in vals[1:]:
                    out, undef = red(out, v), _or(undef, u)
                return out, undef
            return minmax
        if op in ("//", "%"):
            f, g = fns
            div = np.floor_divide if op == "//" else np.remainder  # both follow Python's signs

            def divide(env: Arrays, n: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
                (a, ua), (b, ub) = f(env, n), g(env, n)
                zero = np.asarray(b == 0)
                if zero.ndim == 0:  # a constant divisor
                    return div(a, b if not zero else 1), _or(_or(ua, ub), np.full(n, True) if zero else None)
                return div(a, np.where(zero, 1, b)), _or(_or(ua, ub), zero)
            return divide
        binary = {"+": np.add, "-": np.subtract, "*": np.multiply, "==": np.equal, "!=": np.not_equal,
                  "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[op]
        f, g = fns

        def apply(env: Arrays, n: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
            (a, ua), (b, ub) = f(env, n), g(env, n)
            return binary(a, b), _or(ua, ub)
        return apply

    def _compile_lookup(self, e: Lookup) -> ArrayFn:
        """A table lookup: each distinct key is looked up once (``Table.lookup``), then indexed."""
        fns = [self._compile(a) for a in e.args]
        arg_types = [a.type for a in e.args]
        table, t = e.table, e.type

        def lookup(env: Arrays, n: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
            if n == 0:
                return from_python(t, []), None
            vals = [f(env, n) for f in fns]
            undef: Optional[np.ndarray] = None
            for _, u in vals:
                undef = _or(undef, u)
            cols = [np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)) for v, _ in vals]
            keys = np.stack(cols, axis=1) if cols else np.zeros((n, 0), dtype=np.int64)
            rows = np.flatnonzero(~undef) if undef is not None else np.arange(n)
            uniq, inverse = np.unique(keys[rows], axis=0, return_inverse=True)
            inverse = np.asarray(inverse).reshape(-1)
            py_keys = list(zip(*[to_python(at, uniq[:, j]) for j, at in enumerate(arg_types)])) \
                if arg_types else [()] * len(uniq)
            found: list[Value] = []
            missing = np.zeros(len(uniq), dtype=bool)
            for i, key in enumerate(py_keys):
                try:
                    found.append(table.lookup(key))
                except MechanismUndefined:
                    missing[i] = True
                    found.append(_placeholder(t))
            per_key = from_python(t, found)
            out = np.zeros(n, dtype=per_key.dtype) if t.kind != "int" or per_key.dtype != object \
                else np.zeros(n, dtype=object)
            out[rows] = per_key[inverse]
            miss = np.zeros(n, dtype=bool)
            miss[rows] = missing[inverse]
            return out, _or(undef, miss)
        return lookup


def _placeholder(t: Type) -> Value:
    """A value of type ``t`` for rows that are undefined anyway (they are replayed and raise)."""
    return t.members[0] if t.kind == "enum" else (False if t.kind == "bool" else 0)


class _Unbounded(Exception):
    """An operator the interval bound does not know: use the row-by-row evaluation."""


_CACHE: "weakref.WeakKeyDictionary[object, ArrayModel]" = weakref.WeakKeyDictionary()


def array_model(model) -> ArrayModel:
    """The array evaluation of ``model``, compiled once per model object (kept beside it, not
    on it, so that the model stays picklable)."""
    cached = _CACHE.get(model)
    if cached is None:
        cached = _CACHE[model] = ArrayModel(model)
    return cached
