"""Source positions, shared by the language (which makes them) and everything that reports them.

A leaf module, so that `abstract.causal` can carry positions without importing the parser.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pos:
    """A source span: 1-based line and column of the first character."""

    file: str
    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NOWHERE = Pos("<builtin>", 0, 0)
