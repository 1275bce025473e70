"""The one error the engine raises for problems a user can fix in the spec.

Why a dedicated type: the engine used to turn *any* ValueError or IndexError into "cannot
align ..." shown as a spec error, so an internal bug read like a typo. Now a problem the user
can fix (a layer past the network's depth, a `dim` wider than the site, a position the
prompt does not have) is an :class:`AlignmentError` located at the spec line that asked for
it; anything else propagates as what it is, a bug.
"""
from __future__ import annotations

from typing import Optional

from ..language import ast
from ..language.errors import SpecError


class AlignmentError(SpecError):
    """An alignment the spec asks for that this network cannot provide, located at the line
    that asks (rendered like every SpecError: file:line:col, the line, a caret)."""

    def __init__(self, message: str, pos: Optional[ast.Pos] = None, *, hint: Optional[str] = None) -> None:
        super().__init__(message, pos, hint=hint)
