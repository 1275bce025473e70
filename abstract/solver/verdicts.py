"""What a symbolic check concludes, in a form the CLI, JSON, JUnit and HTML all share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..positions import Pos

PROVED, COUNTEREXAMPLE, UNKNOWN = "proved", "counterexample", "unknown"


@dataclass(frozen=True)
class CheckResult:
    """One check on one model. `counterexample` is a concrete input (and the values it leads to)."""

    model: str
    name: str  # e.g. "mechanism of label is total", "assert label == ..."
    kind: str  # acyclic | total | in_domain | effective | assert | equivalent
    verdict: str  # proved | counterexample | unknown
    message: str = ""
    counterexample: dict[str, Any] | None = None
    pos: Pos | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.verdict == PROVED

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "name": self.name, "kind": self.kind, "verdict": self.verdict,
                "message": self.message, "counterexample": self.counterexample,
                "location": str(self.pos) if self.pos else None}
