"""Syntax tree of a spec file: plain dataclasses that remember where they came from.

Every node carries a `Pos` so that the compiler, the solver and the verifier can point
the user at the exact line and column of whatever they complain about.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


from ..positions import NOWHERE, Pos  # noqa: F401  (re-exported: ast.Pos)


# ----------------------------------------------------------------- domains
@dataclass(frozen=True)
class RangeDomain:
    low: int
    high: int
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class EnumDomain:
    members: tuple[str, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class BoolDomain:
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class NamedDomain:
    name: str
    pos: Pos = field(default=NOWHERE, compare=False)


DomainExpr = Union[RangeDomain, EnumDomain, BoolDomain, NamedDomain]


# ----------------------------------------------------------------- expressions
@dataclass(frozen=True)
class Num:
    value: int
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class BoolLit:
    value: bool
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Name:
    """A variable, or an enum member (the compiler decides which)."""

    id: str
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "not"
    operand: "Expr"
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Binary:
    op: str  # + - * // % and or == != < <= > >=
    left: "Expr"
    right: "Expr"
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class IfThenElse:
    cond: "Expr"
    then: "Expr"
    orelse: "Expr"
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Call:
    """min/max/abs or a table lookup `Table(x, y)`."""

    func: str
    args: tuple["Expr", ...]
    pos: Pos = field(default=NOWHERE, compare=False)


Expr = Union[Num, BoolLit, Name, Unary, Binary, IfThenElse, Call]

ARITHMETIC_OPS = ("+", "-", "*", "//", "%")
COMPARISON_OPS = ("==", "!=", "<", "<=", ">", ">=")
BOOLEAN_OPS = ("and", "or")


# ----------------------------------------------------------------- model items
Literal = Union[int, bool, str]  # str = enum member name


@dataclass(frozen=True)
class DomainDecl:
    name: str
    domain: DomainExpr
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class InputDecl:
    names: tuple[str, ...]
    domain: DomainExpr
    pos: Pos = field(default=NOWHERE, compare=False)
    name_pos: tuple[Pos, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class VarDecl:
    name: str
    domain: DomainExpr | None
    expr: Expr
    is_output: bool = False
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class TableDecl:
    name: str
    key_domains: tuple[DomainExpr, ...]
    value_domain: DomainExpr
    entries: tuple[tuple[tuple[Literal, ...], Literal], ...]
    default: Literal | None = None
    pos: Pos = field(default=NOWHERE, compare=False)
    entry_pos: tuple[Pos, ...] = field(default=(), compare=False)  # one per entry, for errors
    default_pos: Pos = field(default=NOWHERE, compare=False)

    def where(self, i: int) -> Pos:
        """Where entry ``i`` is written (the table's name when not known)."""
        return self.entry_pos[i] if i < len(self.entry_pos) else self.pos


@dataclass(frozen=True)
class Assert:
    expr: Expr
    model: str | None = None  # None: the enclosing (or most recent) model
    text: str = ""
    pos: Pos = field(default=NOWHERE, compare=False)
    model_pos: Pos = field(default=NOWHERE, compare=False)  # where `assert Model:` names it


@dataclass(frozen=True)
class Equivalent:
    left: str
    right: str
    pos: Pos = field(default=NOWHERE, compare=False)
    left_pos: Pos = field(default=NOWHERE, compare=False)
    right_pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class ModelDecl:
    name: str
    domains: tuple[DomainDecl, ...]
    inputs: tuple[InputDecl, ...]
    variables: tuple[VarDecl, ...]
    tables: tuple[TableDecl, ...]
    asserts: tuple[Assert, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


# ----------------------------------------------------------------- networks and hypotheses
@dataclass(frozen=True)
class Range:
    """`0..3` used as an option value (inclusive at both ends)."""

    low: int
    high: int


@dataclass(frozen=True)
class AllValues:
    """`*` used as an option value: every layer / position."""


@dataclass(frozen=True)
class CallValue:
    """`das(dim=8)`: a named thing with arguments (positional ones under keys 0, 1, ...)."""

    name: str
    args: tuple[tuple[str, "Value"], ...] = ()
    pos: Pos = field(default=NOWHERE, compare=False)
    arg_pos: tuple[Pos, ...] = field(default=(), compare=False)  # one per argument, for errors

    def kwargs(self) -> dict[str, "Value"]:
        return dict(self.args)


class SpelledFloat(float):
    """A decimal literal that remembers its spelling: in `heads [9.10]` the text says layer 9,
    head 10, which the float 9.1 cannot."""

    text: str

    def __new__(cls, text: str) -> "SpelledFloat":
        obj = float.__new__(cls, text)
        obj.text = str(text)
        return obj


Value = Union[int, float, str, bool, Range, AllValues, CallValue, list]


@dataclass(frozen=True)
class Option:
    key: str
    value: Value
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class NetworkDecl:
    name: str
    kind: str  # "torch" or "hf"
    source: str
    options: tuple[Option, ...] = ()
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Align:
    variable: str
    site: tuple[Option, ...] = ()
    intervention: CallValue | None = None
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class Against:
    """The right-hand side of a relative expectation: the figure the left side must beat.

    ``kind`` is ``"do_nothing"`` (the left figure's own do-nothing baseline), ``"control"``
    (``name`` is the control; the same figure under it), ``"metric"`` (``name`` is the metric,
    ``args`` its variables, of ``hypothesis`` -- None: the same hypothesis), or ``"name"`` (a bare
    name that is none of these: an error the compiler reports). ``margin`` is the signed number
    after it (``+ 0.2``), 0 when none is written."""

    kind: str
    name: str = ""
    args: tuple[str, ...] = ()
    hypothesis: str | None = None
    margin: float = 0.0
    pos: Pos = field(default=NOWHERE, compare=False)
    arg_pos: tuple[Pos, ...] = field(default=(), compare=False)  # one per argument, for errors
    margin_pos: Pos = field(default=NOWHERE, compare=False)
    owners: tuple[str | None, ...] = ()  # the hypothesis each argument names (`other.w`), None when bare

    def text(self) -> str:
        """``control(random_rotation)``, ``iia(other.w)``: the figure, without the margin."""
        if self.kind == "do_nothing":
            return "do_nothing"
        if self.kind == "control":
            return f"control({self.name})"
        if self.kind == "metric":
            owners = self.owners if len(self.owners) == len(self.args) else (self.hypothesis,) * len(self.args)
            return f"{self.name}({', '.join((f'{o}.' if o else '') + a for o, a in zip(owners, self.args))})"
        return self.name


@dataclass(frozen=True)
class Expectation:
    """``metric(args) op threshold``, or, with ``against``, ``metric(args) op FIGURE + margin``
    (then ``threshold`` holds the margin)."""

    metric: str
    args: tuple[str, ...]
    op: str
    threshold: float
    text: str = ""
    pos: Pos = field(default=NOWHERE, compare=False)
    against: Against | None = None


@dataclass(frozen=True)
class Hold:
    """``hold component attn_out, layer 10..11``: sites kept at their base-run values while the
    intervention is applied (path patching); the options are read by ``hypothesis/holds.py``."""

    options: tuple[Option, ...]
    pos: Pos = field(default=NOWHERE, compare=False)


@dataclass(frozen=True)
class HypothesisDecl:
    name: str
    model: str
    network: str
    aligns: tuple[Align, ...] = ()
    search: tuple[Option, ...] = ()
    train: tuple[Option, ...] = ()
    data: tuple[Option, ...] = ()
    expects: tuple[Expectation, ...] = ()
    controls: tuple[str, ...] = ()
    pos: Pos = field(default=NOWHERE, compare=False)
    model_pos: Pos = field(default=NOWHERE, compare=False)
    network_pos: Pos = field(default=NOWHERE, compare=False)
    control_pos: tuple[Pos, ...] = field(default=(), compare=False)  # one per control
    holds: tuple[Hold, ...] = ()


@dataclass(frozen=True)
class SpecFile:
    path: str
    text: str
    models: tuple[ModelDecl, ...] = ()
    asserts: tuple[Assert, ...] = ()
    equivalences: tuple[Equivalent, ...] = ()
    networks: tuple[NetworkDecl, ...] = ()
    hypotheses: tuple[HypothesisDecl, ...] = ()
    problems: tuple = field(default=(), compare=False)  # SpecErrors found while parsing, for the compiler
