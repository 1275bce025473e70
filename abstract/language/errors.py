"""Errors a user can make in a spec, reported as file:line:col with the line and a caret.

Every problem with the user's input is a `SpecError`; the CLI prints it and exits 2.
A traceback reaching the user is a bug.
"""
from __future__ import annotations

from .ast import Pos


class SpecError(Exception):
    """A problem in a spec file, pointing at where it is and saying what was expected."""

    def __init__(self, message: str, pos: Pos | None = None, *, source: str | None = None,
                 hint: str | None = None, notes: tuple[tuple[str, Pos], ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos
        self.source = source
        self.hint = hint
        self.notes = notes

    def with_source(self, source: str) -> "SpecError":
        if self.source is None:
            self.source = source
        return self

    def location(self) -> str | None:
        return str(self.pos) if self.pos else None

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        """The full human message: location, line of source with a caret, hint, notes."""
        head = f"{self.pos}: error: {self.message}" if self.pos else f"error: {self.message}"
        lines = [head]
        lines += _excerpt(self.source, self.pos)
        if self.hint:
            lines.append(f"  = {self.hint}")
        for text, pos in self.notes:
            lines.append(f"{pos}: note: {text}")
            lines += _excerpt(self.source, pos)
        return "\n".join(lines)


def _excerpt(source: str | None, pos: Pos | None) -> list[str]:
    if not source or not pos or pos.line < 1:
        return []
    src_lines = source.splitlines()
    if pos.line > len(src_lines):
        return []
    text = src_lines[pos.line - 1].replace("\t", " ")
    width = 1
    if pos.end_line == pos.line and pos.end_column and pos.end_column > pos.column:
        width = pos.end_column - pos.column
    gutter = f"{pos.line:>5} | "
    return [gutter + text, " " * (len(gutter) - 2) + "| " + " " * (pos.column - 1) + "^" + "~" * (width - 1)]


class SpecErrors(SpecError):
    """Several independent errors found in one pass, reported together."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__(errors[0].message, errors[0].pos)
        self.errors = errors

    def render(self) -> str:
        return "\n\n".join(e.render() for e in self.errors)
