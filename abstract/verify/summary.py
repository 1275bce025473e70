"""The console summary `abstract verify` prints: what passed, what failed and why, in a glance.

Plain text with aligned columns and PASS/FAIL words (the ✓/✗ marks are extra, and dropped where
the terminal cannot encode them), so it reads the same in a terminal, a CI log or an e-mail.
"""
from __future__ import annotations

import re
import sys
import textwrap
from pathlib import Path
from typing import Any, Sequence

from .featurizer_text import featurizer_text
from .stats import fmt_ci, fmt_value, judged_iia
from .effects import effect_rows
from .validity import (TRIVIAL_MEANING, against, against_text, better_site_text, do_nothing, expectation_do_nothing,
                       is_trivial, metric_counts, preflight_text, shortfall_text, site_label, trivial_sites)

CONTROL_SHORT = {"random_network": "untrained", "random_rotation": "rand.rot"}
CONTROL_SHORT["noise"] = "noise"


def _can_unicode() -> bool:
    try:
        "✓✗—".encode(getattr(sys.stdout, "encoding", None) or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def table(rows: Sequence[Sequence[Any]], indent: str = "  ", right: Sequence[int] = ()) -> list[str]:
    """Rows as lines with columns padded to their widest cell (columns in `right` right-aligned)."""
    cells = [[str(c) for c in r] for r in rows]
    if not cells:
        return []
    widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(len(r) for r in cells))]
    lines = []
    for r in cells:
        parts = [c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(r)]
        lines.append((indent + "  ".join(parts)).rstrip())
    return lines


def _clip(s: str, width: int) -> str:
    return s if len(s) <= width else s[: max(0, width - 1)] + "…"


def _short(location: str) -> str:
    """'specs/x.causal:42:5' -> 'x.causal:42:5': the folder is in the header already."""
    return Path(str(location)).name


def check_reason(check: dict[str, Any]) -> str:
    """A failed check's message without the counterexample it restates, so that readers which
    print the counterexample themselves show it once: ``the assert is false when a=0, b=1`` ->
    ``the assert is false``; ``on input a=0, M is undefined but N is not`` -> ``M is undefined
    but N is not``. Empty when nothing is left; the whole message when there is no counterexample."""
    message = str(check.get("message") or "")
    cex = check.get("counterexample")
    if not isinstance(cex, dict) or not cex:
        return message
    shown = ", ".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in cex.items())
    message = message.replace(f" when {shown}", "")
    m = re.fullmatch(r"on input (.+?), (\S+ (?:is|gives) .*)", message, flags=re.S)
    if m and shown.startswith(m.group(1)):
        message = m.group(2)
    return "" if shown in message else message


def _cex(cex: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} = {str(v).lower() if isinstance(v, bool) else v}" for k, v in (cex or {}).items())


def checks_headline(checks: Sequence[dict[str, Any]]) -> str:
    """``Symbolic checks: 10/12 proved``: the line `verify` prints and the pytest plugin repeats."""
    proved = sum(1 for c in checks if c.get("verdict") == "proved")
    return f"Symbolic checks: {proved}/{len(checks)} proved"


def format_summary(doc: dict[str, Any], *, width: int = 100, unicode: bool | None = None,
                   judge: bool = True) -> str:
    """A short, aligned plain-text summary of one results document.

    ``judge=False`` (`abstract align`): the same measurements without a verdict: no PASS/FAIL
    marks and a last line that says what was measured, since align exits 0 unless a run errs."""
    uni = _can_unicode() if unicode is None else unicode
    ok_mark, bad_mark = ("✓ PASS", "✗ FAIL") if uni else ("PASS", "FAIL")
    if not judge:
        ok_mark = bad_mark = "-"
    dash = "—" if uni else "-"

    def clip(s: str) -> str:
        if not uni:
            s = s.replace("…", "...").replace("—", "-")
            return s if len(s) <= width else s[: max(0, width - 3)] + "..."
        return _clip(s, width)

    def wrap(s: str, indent: int = 6) -> list[str]:  # details (reasons, counterexamples) are worth reading whole
        return [clip(x) for x in textwrap.wrap(s, width, initial_indent=" " * indent,
                                               subsequent_indent=" " * (indent + 2))]

    spec, run = doc.get("spec") or {}, doc.get("run") or {}
    checks = doc.get("checks") or []
    hyps = doc.get("hypotheses") or []
    exps = [e for h in hyps for e in h.get("expectations") or []]
    bad_checks = [c for c in checks if c.get("verdict") != "proved"]
    bad_exps = [e for e in exps if not e.get("passed")]
    errors = doc.get("errors") or []
    passed = not bad_checks and not bad_exps
    seconds = run.get("seconds")
    head = [Path(spec.get("path") or "spec").name, f"sha256 {str(spec.get('sha256') or '')[:12]}",
            str(run.get("device") or ""), f"{seconds:.1f} s" if isinstance(seconds, (int, float)) else "",
            "cached" if run.get("cached") else ""]
    out = [clip("  ".join(x for x in head if x))]

    out.append("")
    out.append(checks_headline(checks))
    per_model: dict[str, list[int]] = {}
    for c in checks:
        per_model.setdefault(str(c.get("model")), [0, 0])[c.get("verdict") == "proved"] += 1
    out += table([[m, f"{ok} proved", f"{bad} not" if bad else ""] for m, (bad, ok) in per_model.items()])
    for c in bad_checks:
        mark = ((bad_mark if judge else "COUNTEREXAMPLE") if c.get("verdict") == "counterexample"
                else ("? UNKNOWN" if uni and judge else "UNKNOWN"))
        out.append(clip(f"  {mark}  {c.get('model')}: {c.get('name')}"))
        reason = check_reason(c)
        detail = (f"counterexample {_cex(c.get('counterexample'))}" + (f" ({reason})" if reason else "")
                  if c.get("counterexample") else c.get("message", ""))
        out += wrap((f"{_short(c['location'])}: " if c.get("location") else "") + detail)

    for h in hyps:
        h_ok = all(e.get("passed") for e in h.get("expectations") or [])
        head_mark = (ok_mark if h_ok else bad_mark) + "  " if judge else ""
        out += ["", clip(f"{head_mark}hypothesis {h.get('name')}  ({h.get('model')} ~ {h.get('network')})")]
        if (h.get("dataset") or {}).get("held_out") is False:
            out += wrap("WARNING: test pairs overlap the training pairs (the input space is too small to hold "
                        "them out): the figures measure fit, not generalisation")
        short = shortfall_text(h.get("dataset"))
        if short:
            out += wrap(f"WARNING: {short}")
        pre = preflight_text(h.get("preflight"))
        if pre:
            out += wrap(f"preflight: {pre}", indent=2)
        variables = h.get("variables") or {}
        out += [clip(x) for x in _figures(h, variables)]
        effects = effect_rows(variables, CONTROL_SHORT)
        out += [clip(x) for x in table(effects, right=tuple(range(1, len(effects[0]) if effects else 0)))]
        trivial = []
        for name, v in variables.items():
            note = better_site_text(v)
            if note:
                out += wrap(f"NOTE: {name}: {note}")
            basis = featurizer_text(v.get("intervention"))
            if basis:
                out += wrap(f"{name}: {basis}", indent=2)
            site = v.get("site") or {}
            trivial += [f"{name} {site_label(t)}" for t in trivial_sites(v.get("grid"))
                        if (t["layer"], t["position"], t.get("head")) !=
                        (site.get("layer"), site.get("position"), site.get("head"))]
        for ce in h.get("cell_errors") or []:  # sweep cells an executor gave up on (left out; the rest ran)
            out += wrap(f"CELL ERROR: {ce.get('variable')} {', '.join(ce.get('sites') or [])} seed {ce.get('seed')} "
                        f"(failed {ce.get('attempts')} times, left out): {ce.get('error')}")
        if trivial:
            out += wrap(f"trivial grid sites ({TRIVIAL_MEANING}; a search skips them unless named): "
                        + ", ".join(trivial))
        erows = []
        relative = any(against(e) for e in h.get("expectations") or [])
        for e in h.get("expectations") or []:
            dn = expectation_do_nothing(h, e)
            versus = against_text(e)
            if versus and (against(e) or {}).get("kind") == "do_nothing":
                dn = None  # the right-hand figure is the baseline itself
            base = f"do-nothing {fmt_value(dn['value'])}" if dn else ""
            erows.append([ok_mark if e.get("passed") else bad_mark, e.get("text", ""), fmt_value(e.get("value")),
                          fmt_ci(e.get("ci_low"), e.get("ci_high")).replace("—", dash), f"n={e.get('n', 0)}"]
                         + ([versus or ""] if relative else [])
                         + ([f"({base})"] if base else []))
        out += [clip(x) for x in table(erows, right=(2, 4))]
        for e in h.get("expectations") or [] if judge else []:
            if not e.get("passed"):
                out += wrap((f"{_short(e['location'])}: " if e.get("location") else "") + str(e.get("reason")))

    for err in errors:  # the whole message: a spec error's excerpt and caret are the point
        first, *rest = str(err.get("message") or "error").splitlines() or ["error"]
        out.append(f"  ERROR  {first}")
        out += ["    " + line for line in rest]

    out.append("")
    if errors:
        verdict = f"ERROR: {len(errors)} error(s)"
    elif not judge:
        verdict = (f"MEASURED: {len(hyps)} hypothesis(es) aligned, {len(checks)} check(s) run; "
                   "expectations not judged (`abstract verify` judges them)")
    elif passed:
        verdict = f"PASS: {len(checks)} check(s) proved, {len(exps)} expectation(s) met"
    else:
        why = []
        if bad_checks:
            why.append(f"{len(bad_checks)} check(s) not proved")
        if bad_exps:
            why.append(f"{len(bad_exps)} of {len(exps)} expectation(s) not met")
        verdict = "FAIL: " + ", ".join(why)
    out.append(verdict)
    return "\n".join(out)


def _figures(h: dict[str, Any], variables: dict[str, Any]) -> list[str]:
    """The table of measured figures: one row per variable (site, IIA, n, mean over seeds), then
    cause / isolate / joint; beside each, what doing nothing scores and the controls."""
    multi = h.get("multi") or {}
    extra = [(f"{metric}({key.replace(',', ', ')})", entry)
             for metric in ("cause", "isolate") for key, entry in (multi.get(metric) or {}).items()]
    joints = list((multi.get("joint") or {}).items())
    if not variables and not extra and not joints:
        return []
    ctl_names = list(dict.fromkeys(k for v in variables.values() for k in (v.get("controls") or {})))
    entries = ([v.get("iia") for v in variables.values()] + [e for _, e in extra] + [j for _, j in joints])
    show_base = any(do_nothing(e) for e in entries)

    def base(entry: Any) -> list[str]:
        b = do_nothing(entry)
        return [fmt_value(b["value"]) if b else ""] if show_base else []

    rows = [["variable", "site", "IIA", "n", "mean"] + (["do-nothing"] if show_base else [])
            + [CONTROL_SHORT.get(k, k) for k in ctl_names]]
    for name, v in variables.items():
        site, iia = v.get("site") or {}, v.get("iia") or {}
        where = site_label(site, (v.get("grid") or {}).get("component")) + (" trivial" if is_trivial(site) else "")
        rows.append([name, where, fmt_value(judged_iia(iia)), iia.get("n", ""), fmt_value(iia.get("mean"))]
                    + base(iia)
                    + [fmt_value(((v.get("controls") or {}).get(k) or {}).get("iia")) for k in ctl_names])
    for label, entry in extra:
        value, _, n = metric_counts(entry)
        rows.append([label, "", fmt_value(value), "" if n is None else n, ""] + base(entry) + [""] * len(ctl_names))
    for key, j in joints:
        j = j if isinstance(j, dict) else {}
        rows.append([f"joint({key.replace(',', ', ')})", site_label(j.get("site") or {}), fmt_value(j.get("value")),
                     j.get("n", ""), fmt_value(j.get("mean"))] + base(j) + [""] * len(ctl_names))
    width = 5 + show_base + len(ctl_names)
    return table(rows, right=tuple(range(2, width)))
