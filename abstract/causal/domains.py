"""Finite domains of causal-model variables: integer ranges, enums and bool.

Values are plain Python objects: `int` for ranges, `bool` for bool, `str` (the member name)
for enums. A domain knows its values in a fixed order, which is also the class order used
when a network's output is read as one of these values.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator, Union

Value = Union[int, bool, str]

MAX_DOMAIN_SIZE = 1_000_000  # larger domains are rejected: nothing here enumerates them sensibly


@dataclass(frozen=True)
class Domain:
    """A finite, ordered set of values of one type."""

    kind: str  # "int" | "bool" | "enum"
    low: int = 0  # int ranges only
    high: int = -1
    members: tuple[str, ...] = ()  # enums only
    name: str | None = None  # the declared name, for messages

    @staticmethod
    def int_range(low: int, high: int, name: str | None = None) -> "Domain":
        return Domain("int", low=low, high=high, name=name)

    @staticmethod
    def boolean() -> "Domain":
        return Domain("bool")

    @staticmethod
    def enum(members: tuple[str, ...], name: str | None = None) -> "Domain":
        return Domain("enum", members=tuple(members), name=name)

    @property
    def type(self) -> "Type":
        if self.kind == "enum":
            return Type("enum", self.members, self.name)
        return Type(self.kind)

    def __len__(self) -> int:
        if self.kind == "int":
            return max(0, self.high - self.low + 1)
        if self.kind == "bool":
            return 2
        return len(self.members)

    @property
    def size(self) -> int:
        return len(self)

    def values(self) -> tuple[Value, ...]:
        if self.kind == "int":
            return _int_values(self.low, self.high)
        if self.kind == "bool":
            return (False, True)
        return self.members

    def __iter__(self) -> Iterator[Value]:
        return iter(self.values())

    def __contains__(self, value: object) -> bool:
        if self.kind == "int":
            return type(value) is int and self.low <= value <= self.high
        if self.kind == "bool":
            return type(value) is bool
        return isinstance(value, str) and value in self.members

    def index(self, value: Value) -> int:
        """Position of `value` in `values()`: the class index of that value."""
        if value not in self:
            raise ValueError(f"{value!r} is not in domain {self}")
        if self.kind == "int":
            return int(value) - self.low
        if self.kind == "bool":
            return int(value)
        return self.members.index(value)

    def value_at(self, index: int) -> Value:
        """The value at class index `index` (int ranges are not enumerated for it)."""
        if self.kind == "int":
            if not 0 <= index < len(self):
                raise IndexError(f"index {index} out of range for domain {self}")
            return self.low + index
        return self.values()[index]

    def __str__(self) -> str:
        if self.kind == "int":
            return f"{self.low}..{self.high}"
        if self.kind == "bool":
            return "bool"
        return "{" + ", ".join(self.members) + "}"

    def describe(self) -> str:
        return f"{self.name} = {self}" if self.name and self.kind != "bool" else str(self)


def _int_values(low: int, high: int) -> tuple[int, ...]:
    """Small ranges are built once (sampling draws from them thousands of times); big ones are
    built per call, not kept: a cache of 256 tuples of 10^6 ints would hold gigabytes."""
    return _small_int_values(low, high) if high - low < CACHED_RANGE else tuple(range(low, high + 1))


CACHED_RANGE = 10_000


@functools.lru_cache(maxsize=256)
def _small_int_values(low: int, high: int) -> tuple[int, ...]:
    return tuple(range(low, high + 1))


@dataclass(frozen=True)
class Type:
    """The type of an expression: int, bool, or one enum (identified by its members)."""

    kind: str
    members: tuple[str, ...] = ()
    name: str | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Type) and self.kind == other.kind and self.members == other.members

    def __hash__(self) -> int:
        return hash((self.kind, self.members))

    def __str__(self) -> str:
        if self.kind == "enum":
            return self.name or ("{" + ", ".join(self.members) + "}")
        return self.kind


INT = Type("int")
BOOL = Type("bool")
