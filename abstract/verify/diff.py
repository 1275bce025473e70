"""Compare two results documents: what flipped, what moved, what appeared or went away.

Why: a claim verified once can be guarded across model checkpoints or code changes only if CI
can tell a real change from noise. A verdict that went from pass to fail is a regression; a
figure *moved* only when its two Wilson intervals (``abstract.verify.stats``) do not overlap,
so sampling noise between two runs is not reported as a change. Documents of different specs
are refused unless the caller allows it (``allow_spec_change``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from .stats import fmt_ci, wilson_interval
from .validity import do_nothing, metric_counts


class DiffError(ValueError):
    """The two documents cannot be compared (different specs, unmatched specs of a set)."""


@dataclass(frozen=True)
class Moved:
    """A figure whose intervals in the two runs do not overlap."""
    spec: str
    where: str          # "both_equalities: iia(left)"
    old: tuple[float, float, float, int]   # value, ci_low, ci_high, n
    new: tuple[float, float, float, int]

    @property
    def direction(self) -> str:
        return "up" if self.new[0] > self.old[0] else "down"

    def text(self) -> str:
        o, n = self.old, self.new
        return (f"{self.spec}: {self.where}: {o[0]:.3f} {fmt_ci(o[1], o[2])} n={o[3]} -> "
                f"{n[0]:.3f} {fmt_ci(n[1], n[2])} n={n[3]} ({self.direction})")


@dataclass
class Diff:
    """What changed from OLD to NEW; ``regression`` decides the exit code."""
    regressions: list[str] = field(default_factory=list)     # pass -> fail (expectations, checks)
    improvements: list[str] = field(default_factory=list)    # fail -> pass
    moved: list[Moved] = field(default_factory=list)
    added: list[str] = field(default_factory=list)           # hypotheses, expectations, checks, specs
    removed: list[str] = field(default_factory=list)
    new_errors: list[str] = field(default_factory=list)
    fixed_errors: list[str] = field(default_factory=list)
    spec_changes: list[str] = field(default_factory=list)    # allowed differences of spec path / sha256

    @property
    def regression(self) -> bool:
        """A verdict went from pass to fail, or the new run has an error the old one did not."""
        return bool(self.regressions or self.new_errors)

    @property
    def unchanged(self) -> bool:
        return not (self.regressions or self.improvements or self.moved or self.added or self.removed
                    or self.new_errors or self.fixed_errors)


def _spec(doc: Mapping[str, Any]) -> tuple[str, str | None]:
    spec = doc.get("spec") or {}
    return str(spec.get("path") or "?"), spec.get("sha256")


def spec_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """How the two documents' specs differ (path, sha256), as lines; empty when the same."""
    (op, osha), (np_, nsha) = _spec(old), _spec(new)
    out = []
    if op != np_:
        out.append(f"spec path differs: {op} vs {np_}")
    if osha != nsha:
        out.append(f"spec {np_} sha256 differs: {str(osha)[:12]} vs {str(nsha)[:12]} (the spec text changed)")
    return out


def pair_documents(old: list[dict[str, Any]], new: list[dict[str, Any]],
                   allow_spec_change: bool = False) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], Diff]:
    """Match the documents of two runs by spec path (one against one is matched whatever the
    paths when allowed). Raises DiffError when the specs differ and that is not allowed."""
    diff = Diff()
    if len(old) == 1 and len(new) == 1 and (allow_spec_change or _spec(old[0])[0] == _spec(new[0])[0]):
        pairs = [(old[0], new[0])]
    else:
        by_path = {_spec(d)[0]: d for d in new}
        pairs, unmatched_old = [], []
        for d in old:
            other = by_path.pop(_spec(d)[0], None)
            if other is None:
                unmatched_old.append(d)
            else:
                pairs.append((d, other))
        lines = ([f"spec {_spec(d)[0]} is only in OLD" for d in unmatched_old]
                 + [f"spec {p} is only in NEW" for p in by_path])
        if lines and not allow_spec_change:
            raise DiffError("the documents are of different specs: " + "; ".join(lines))
        diff.removed += [f"spec {_spec(d)[0]}" for d in unmatched_old]
        diff.added += [f"spec {p}" for p in by_path]
    for a, b in pairs:
        changes = spec_differences(a, b)
        if changes and not allow_spec_change:
            raise DiffError("the documents are of different specs: " + "; ".join(changes))
        diff.spec_changes += changes
    return pairs, diff


def diff_documents(old: list[dict[str, Any]], new: list[dict[str, Any]], allow_spec_change: bool = False) -> Diff:
    """The differences between two runs (each a list of ``abstract.results/1`` documents)."""
    pairs, diff = pair_documents(old, new, allow_spec_change)
    for a, b in pairs:
        _diff_one(a, b, diff)
    return diff


def _diff_one(old: Mapping[str, Any], new: Mapping[str, Any], diff: Diff) -> None:
    spec = _spec(new)[0]
    prefix = f"{spec}: "
    _diff_verdicts(prefix, _check_verdicts(old), _check_verdicts(new), diff)
    _diff_verdicts(prefix, _expectation_verdicts(old), _expectation_verdicts(new), diff)
    old_h, new_h = _by_name(old.get("hypotheses")), _by_name(new.get("hypotheses"))
    diff.removed += [f"{prefix}hypothesis {h}" for h in old_h if h not in new_h]
    diff.added += [f"{prefix}hypothesis {h}" for h in new_h if h not in old_h]
    old_f = dict(_figures(old))
    for where, counts in _figures(new):
        before = old_f.get(where)
        if before is None:
            continue
        moved = _moved(before, counts)
        if moved is not None:
            diff.moved.append(Moved(spec, where, *moved))
    old_e, new_e = _errors(old), _errors(new)
    diff.new_errors += [f"{prefix}{e}" for e in new_e if e not in old_e]
    diff.fixed_errors += [f"{prefix}{e}" for e in old_e if e not in new_e]


def _by_name(items: Any) -> dict[str, Mapping[str, Any]]:
    return {str(h.get("name")): h for h in items or [] if isinstance(h, Mapping)}


def _unique(items: list[tuple[str, bool]]) -> dict[str, bool]:
    """Keyed by label; a label seen again (the same check twice in a model) gets ``#2``, ``#3`` ..."""
    out: dict[str, bool] = {}
    seen: dict[str, int] = {}
    for label, passed in items:
        seen[label] = seen.get(label, 0) + 1
        out[label if seen[label] == 1 else f"{label} #{seen[label]}"] = passed
    return out


def _check_verdicts(doc: Mapping[str, Any]) -> dict[str, bool]:
    return _unique([(f"check {c.get('model')}: {c.get('name')}", c.get("verdict") == "proved")
                    for c in doc.get("checks") or [] if isinstance(c, Mapping)])


def _expectation_verdicts(doc: Mapping[str, Any]) -> dict[str, bool]:
    return _unique([(f"{h.get('name')}: expect {e.get('text')}", bool(e.get("passed")))
                    for h in doc.get("hypotheses") or [] if isinstance(h, Mapping)
                    for e in h.get("expectations") or [] if isinstance(e, Mapping)])


def _diff_verdicts(prefix: str, old: dict[str, bool], new: dict[str, bool], diff: Diff) -> None:
    for key, passed in new.items():
        if key not in old:
            diff.added.append(f"{prefix}{key} ({'pass' if passed else 'fail'})")
        elif old[key] and not passed:
            diff.regressions.append(f"{prefix}{key}: pass -> fail")
        elif passed and not old[key]:
            diff.improvements.append(f"{prefix}{key}: fail -> pass")
    diff.removed += [f"{prefix}{key} (was {'pass' if old[key] else 'fail'})" for key in old if key not in new]


def _errors(doc: Mapping[str, Any]) -> list[str]:
    out = []
    for e in doc.get("errors") or []:
        if isinstance(e, Mapping):
            who = f"hypothesis {e['hypothesis']}: " if e.get("hypothesis") else ""
            out.append(f"error: {who}{str(e.get('message', '')).splitlines()[0] if e.get('message') else ''}")
    return out


def _counts(entry: Any) -> tuple[int, int] | None:
    """(correct, n) of a figure, when it has counts (a control's older form: iia and n)."""
    value, correct, n = metric_counts(entry)
    if not isinstance(n, int) or isinstance(n, bool) or n <= 0:
        return None
    if not isinstance(correct, int) or isinstance(correct, bool):
        if value is None:
            return None
        correct = round(value * n)
    return (correct, n) if 0 <= correct <= n else None


def _figures(doc: Mapping[str, Any]) -> Iterator[tuple[str, tuple[int, int]]]:
    """Every figure with counts: per variable its IIA, do-nothing and controls (IIA and cause);
    the several-variable figures (cause, isolate, joint) and their do-nothing."""
    def with_base(label: str, entry: Any) -> Iterator[tuple[str, tuple[int, int]]]:
        c = _counts(entry)
        if c is not None:
            yield label, c
        base = _counts(do_nothing(entry))
        if base is not None:
            yield f"{label} do-nothing", base

    for h in doc.get("hypotheses") or []:
        if not isinstance(h, Mapping):
            continue
        name = h.get("name")
        for var, v in (h.get("variables") or {}).items():
            if not isinstance(v, Mapping):
                continue
            yield from with_base(f"{name}: iia({var})", v.get("iia"))
            for control, c in (v.get("controls") or {}).items():
                if isinstance(c, Mapping):
                    counts = _counts(c)
                    if counts is not None:
                        yield f"{name}: control({control}) iia({var})", counts
                    cause = _counts(c.get("cause"))
                    if cause is not None:
                        yield f"{name}: control({control}) cause({var})", cause
        for metric, table in (h.get("multi") or {}).items():
            for key, entry in (table or {}).items() if isinstance(table, Mapping) else []:
                args = ", ".join(str(key).split(","))
                yield from with_base(f"{name}: {metric}({args})", entry)


def _moved(old: tuple[int, int], new: tuple[int, int]) -> tuple[tuple[float, float, float, int],
                                                                 tuple[float, float, float, int]] | None:
    """Both figures with their intervals, when the intervals do not overlap; else None."""
    (oc, on), (nc, nn) = old, new
    olo, ohi = wilson_interval(oc, on)
    nlo, nhi = wilson_interval(nc, nn)
    if nlo > ohi or nhi < olo:
        return (oc / on, olo, ohi, on), (nc / nn, nlo, nhi, nn)
    return None


# ------------------------------------------------------------------ rendering
def format_diff(diff: Diff, old_name: str = "OLD", new_name: str = "NEW") -> str:
    """The console text: one section per kind of change, the verdict last."""
    lines = [f"abstract diff {old_name} -> {new_name}"]
    for title, items in _sections(diff):
        if items:
            lines.append(f"{title} ({len(items)}):")
            lines += [f"  {x}" for x in items]
    lines.append(_verdict(diff))
    return "\n".join(lines)


def format_markdown(diff: Diff, old_name: str = "OLD", new_name: str = "NEW") -> str:
    """A summary for a pull-request comment or a CI job summary (GitHub-flavoured Markdown)."""
    icon = "❌" if diff.regression else ("✅" if not diff.unchanged else "➖")
    out = [f"## {icon} abstract diff", "", f"`{old_name}` → `{new_name}`: **{_verdict(diff)}**", ""]
    if diff.moved:
        out += ["### Figures that moved beyond their 95% intervals", "",
                "| spec | figure | old | new | |", "|---|---|---|---|---|"]
        for m in diff.moved:
            fig = m.where.replace("|", "\\|")
            out.append(f"| `{m.spec}` | {fig} | {m.old[0]:.3f} {fmt_ci(m.old[1], m.old[2])} n={m.old[3]} | "
                       f"{m.new[0]:.3f} {fmt_ci(m.new[1], m.new[2])} n={m.new[3]} | "
                       f"{'▲' if m.direction == 'up' else '▼'} {m.direction} |")
        out.append("")
    for title, items in _sections(diff):
        if items and title != "Moved beyond their intervals":
            out += [f"### {title}", ""] + [f"- {_md(x)}" for x in items] + [""]
    return "\n".join(out).rstrip() + "\n"


def _md(text: str) -> str:
    return text.replace("->", "→").replace("|", "\\|").replace("<", "&lt;")


def _sections(diff: Diff) -> list[tuple[str, list[str]]]:
    return [("Spec changes (allowed)", diff.spec_changes),
            ("Regressions", diff.regressions),
            ("New errors", diff.new_errors),
            ("Improvements", diff.improvements),
            ("Fixed errors", diff.fixed_errors),
            ("Moved beyond their intervals", [m.text() for m in diff.moved]),
            ("Added", diff.added),
            ("Removed", diff.removed)]


def _verdict(diff: Diff) -> str:
    if diff.regression:
        return (f"REGRESSION: {len(diff.regressions)} verdict(s) pass -> fail, "
                f"{len(diff.new_errors)} new error(s)")
    if diff.unchanged:
        return "UNCHANGED: no verdict flipped, no figure moved beyond its interval"
    return (f"OK: no regression ({len(diff.improvements)} improvement(s), "
            f"{len(diff.moved)} figure(s) moved)")


def write_markdown(diff: Diff, path: str | Path, old_name: str = "OLD", new_name: str = "NEW") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_markdown(diff, old_name, new_name), encoding="utf-8")
    return path
