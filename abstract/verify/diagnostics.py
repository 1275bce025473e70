"""Reading the training diagnostics of a results document (console warnings, HTML report).

The engine records, per reported seed of every variable and of every jointly trained group,
``diagnostics = {"loss", "steps", "dev_loss", "train_iia", "converged", "why"}`` (rule in
``abstract.engine.diagnostics``) and per variable ``failing_pairs``. All are optional (older
documents lack them); these readers return empty lists for what is absent.
"""
from __future__ import annotations

from typing import Any, Mapping


def seed_diagnostics(hypothesis: Mapping[str, Any]) -> list[tuple[str, Any, Mapping[str, Any]]]:
    """(what was trained, seed, diagnostics) for every seed that has them: ``variable v`` for a
    variable's seeds, ``group A,B`` for a jointly trained group's."""
    out: list[tuple[str, Any, Mapping[str, Any]]] = []
    owners: list[tuple[str, Any]] = [(f"variable {name}", v) for name, v in _items(hypothesis.get("variables"))]
    multi = hypothesis.get("multi")
    joint = multi.get("joint") if isinstance(multi, Mapping) else None
    owners += [(f"group {key}", g) for key, g in _items(joint)]
    for label, entry in owners:
        seeds = entry.get("seeds") if isinstance(entry, Mapping) else None
        for s in seeds if isinstance(seeds, list) else []:
            d = s.get("diagnostics") if isinstance(s, Mapping) else None
            if isinstance(d, Mapping):
                out.append((label, s.get("seed"), d))
    return out


def unconverged(hypothesis: Mapping[str, Any]) -> list[str]:
    """One warning per seed whose training did not converge (``converged`` is ``false``)."""
    return [f"{label} seed {seed}: training has not converged: {d.get('why') or 'see its loss curve'}"
            for label, seed, d in seed_diagnostics(hypothesis) if d.get("converged") is False]


def failing_pairs(variable: Any) -> list[Mapping[str, Any]]:
    """The variable's sample of failing test pairs (empty when absent)."""
    pairs = variable.get("failing_pairs") if isinstance(variable, Mapping) else None
    return [p for p in pairs if isinstance(p, Mapping)] if isinstance(pairs, list) else []


def _items(table: Any) -> list[tuple[str, Any]]:
    return list(table.items()) if isinstance(table, Mapping) else []
