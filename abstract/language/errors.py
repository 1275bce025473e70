"""Errors a user can make in a spec, reported as file:line:col with the line and a caret.

Every problem with the user's input is a `SpecError`; the CLI prints it and exits 2.
A traceback reaching the user is a bug.
"""
from __future__ import annotations

import difflib
import functools
import heapq
from typing import Iterable, Optional

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


@functools.lru_cache(maxsize=4)
def source_lines(source: str) -> tuple[str, ...]:
    """The source split where the parser counts lines: at '\n' only (lark's line numbers).
    `str.splitlines` would also split at \v, \f, U+2028 ... and show the wrong line.
    Cached: one split per source however many errors it has."""
    return tuple(line[:-1] if line.endswith("\r") else line for line in source.split("\n"))


def _excerpt(source: str | None, pos: Pos | None) -> list[str]:
    if not source or not pos or pos.line < 1:
        return []
    src_lines = source_lines(source)
    if pos.line > len(src_lines):
        return []
    text = "".join(" " if ch == "\t" or (not ch.isprintable() and ch != " ") else ch for ch in src_lines[pos.line - 1])
    width = 1
    if pos.end_line == pos.line and pos.end_column and pos.end_column > pos.column:
        width = pos.end_column - pos.column
    column = pos.column
    if len(text) > MAX_EXCERPT:  # a generated one-line spec: show a window around the column
        start = max(0, min(column - 1 - MAX_EXCERPT // 2, len(text) - MAX_EXCERPT))
        cut_end = start + MAX_EXCERPT < len(text)
        text = ("..." if start else "") + text[start:start + MAX_EXCERPT] + ("..." if cut_end else "")
        column = column - start + (3 if start else 0)
        width = min(width, MAX_EXCERPT)
    gutter = f"{pos.line:>5} | "
    return [gutter + text, " " * (len(gutter) - 2) + "| " + " " * (column - 1) + "^" + "~" * (width - 1)]


MAX_EXCERPT = 160  # characters of a source line shown


MAX_CANDIDATES = 50  # names given the (costly) fuzzy comparison per did-you-mean


def did_you_mean(name: str, known: Iterable[str]) -> Optional[str]:
    """The known name closest to `name`, or None.

    Bounded: every known name gets one cheap score (shared prefix and suffix, similar length),
    and only the MAX_CANDIDATES best get difflib's fuzzy comparison. One call is linear in the
    known names, so thousands of unknown names against thousands of known ones stay fast."""
    slack = max(2, len(name) // 2)
    scored = ((_affinity(name, k), k) for k in known if abs(len(k) - len(name)) <= slack)
    cands = [k for _, k in heapq.nlargest(MAX_CANDIDATES, scored, key=lambda sk: sk[0])]
    close = difflib.get_close_matches(name, cands, n=1, cutoff=0.5)
    return close[0] if close else None


def _affinity(a: str, b: str) -> int:
    """Characters shared at the start plus at the end (case-insensitive): typos keep most of both."""
    a, b = a.lower(), b.lower()
    n = min(len(a), len(b))
    pre = 0
    while pre < n and a[pre] == b[pre]:
        pre += 1
    suf = 0
    while suf < n - pre and a[-1 - suf] == b[-1 - suf]:
        suf += 1
    return pre + suf


class SpecErrors(SpecError):
    """Several independent errors found in one pass, reported together."""

    def __init__(self, errors: list[SpecError]) -> None:
        super().__init__(errors[0].message, errors[0].pos)
        self.errors = errors

    MAX_SHOWN = 100  # thousands of errors (a generated spec gone wrong) are summarised

    def render(self) -> str:
        shown = [e.render() for e in self.errors[:self.MAX_SHOWN]]
        more = len(self.errors) - len(shown)
        if more > 0:
            shown.append(f"... and {more:,} more errors")
        return "\n\n".join(shown)
