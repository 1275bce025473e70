"""Reading the validity figures of a results document, shared by the console, JUnit and HTML.

Why one module: every reader must show the same thing the same way -- a figure beside what
doing nothing scores on the same pairs, a site with its component (``L0.resid_post@last``,
since ``L0@last`` names three different activations), a trivial site marked, the grid's better
site, the preflight's task accuracy, the pairs the data could not supply. All these fields are
optional (older documents lack them) and may be ``null``; every function here returns ``None``
(or an empty list) for what is absent rather than failing.
"""
from __future__ import annotations

from typing import Any, Mapping

from .stats import fmt_value, wilson_interval

TRIVIAL_MEANING = "realised by swapping the variable's inputs"


def metric_counts(entry: Any) -> tuple[float | None, int | None, int | None]:
    """(value, correct, n) of a measured figure: ``{value, correct, n}`` or a bare number."""
    if isinstance(entry, Mapping):
        n, c = entry.get("n"), entry.get("correct")
        v = entry.get("value", entry.get("iia"))
        if v is None and isinstance(c, int) and isinstance(n, int) and n > 0:
            v = c / n
        return (v if isinstance(v, (int, float)) and not isinstance(v, bool) else None), c, n
    if isinstance(entry, (int, float)) and not isinstance(entry, bool):
        return float(entry), None, None
    return None, None, None


def do_nothing(entry: Any) -> dict[str, Any] | None:
    """The do-nothing baseline beside a figure (``entry["do_nothing"]``), or None when not measured."""
    if not isinstance(entry, Mapping):
        return None
    base = entry.get("do_nothing")
    if not isinstance(base, Mapping):
        return None
    value, correct, n = metric_counts(base)
    if value is None and n is None:
        return None
    return {"value": value, "correct": correct, "n": n, "ci_low": base.get("ci_low"), "ci_high": base.get("ci_high")}


def measured_entry(hypothesis: Mapping[str, Any], expectation: Mapping[str, Any]) -> Any:
    """The figure an expectation's metric reads: the variable's ``iia`` or a ``multi`` entry."""
    args = [str(a) for a in expectation.get("args") or []]
    metric = expectation.get("metric")
    if metric == "iia":
        var = (hypothesis.get("variables") or {}).get(args[0]) if args else None
        return var.get("iia") if isinstance(var, Mapping) else None
    table = (hypothesis.get("multi") or {}).get(str(metric))
    if not isinstance(table, Mapping):
        return None
    key = ",".join(args)
    if metric == "joint":  # a group is one set of variables, in whatever order
        key = next((k for k in table if set(str(k).split(",")) == set(args)), key)
    return table.get(key)


def expectation_do_nothing(hypothesis: Mapping[str, Any], expectation: Mapping[str, Any]) -> dict[str, Any] | None:
    """The baseline an expectation was judged beside: its own, else its figure's."""
    return do_nothing(expectation) or do_nothing(measured_entry(hypothesis, expectation))


def do_nothing_interval(base: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """The baseline's interval: as written, else the Wilson interval of its counts."""
    low, high = base.get("ci_low"), base.get("ci_high")
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        return float(low), float(high)
    correct, n = base.get("correct"), base.get("n")
    if isinstance(correct, int) and isinstance(n, int) and 0 <= correct <= n and n > 0:
        return wilson_interval(correct, n)
    return None, None


def site_label(site: Any, component: Any = None) -> str:
    """``L0.resid_post@last``: layer, component (the site's, else `component`) and position."""
    if not isinstance(site, Mapping):
        return "?"
    comp = site.get("component") or component
    pos = site.get("position")
    heads, head = site.get("heads"), site.get("head")
    if heads:  # a head group: H[9.6,9.9].head_out@last
        where = "H[" + ",".join(f"{la}.{hd}" for la, hd in heads) + "]"
    else:
        where = f"L{site.get('layer')}" + ("" if head is None else f".H{head}")
    return where + (f".{comp}" if comp else "") + ("" if pos is None else f"@{pos}")


def is_trivial(site: Any) -> bool:
    return isinstance(site, Mapping) and site.get("trivial") is True


def trivial_sites(grid: Any) -> list[dict[str, Any]]:
    """The grid's cells flagged trivial, as sites (layer, component, position)."""
    if not isinstance(grid, Mapping):
        return []
    flags, layers = grid.get("trivial"), grid.get("layers") or []
    positions = grid.get("positions") or [None]
    heads = grid.get("heads") or []
    out = []
    for i, row in enumerate(flags if isinstance(flags, list) else []):
        for j, flag in enumerate(row if isinstance(row, list) else []):
            if flag is True and i < len(layers):
                out.append({"layer": layers[i], "component": grid.get("component"),
                            "position": positions[j] if j < len(positions) else None,
                            **({"head": heads[j]} if j < len(heads) else {})})
    return out


def better_site(variable: Any) -> dict[str, Any] | None:
    """The grid's best non-trivial site when it beats the site the align line named, else None."""
    b = variable.get("better_site") if isinstance(variable, Mapping) else None
    return dict(b) if isinstance(b, Mapping) else None


def better_site_text(variable: Mapping[str, Any]) -> str | None:
    """One sentence for a better site, or None."""
    b = better_site(variable)
    if b is None:
        return None
    comp = ((variable.get("site") or {}).get("component") or (variable.get("grid") or {}).get("component"))
    named = variable.get("site")
    text = f"the grid's best non-trivial site {site_label(b, comp)} scores {fmt_value(b.get('iia'))}"
    if isinstance(b.get("ci_low"), (int, float)):
        text += f" (lower bound {fmt_value(b['ci_low'])})"
    if isinstance(named, Mapping):
        text += f", beyond the interval of the named site {site_label(named, comp)}"
    return text


def preflight_text(preflight: Any) -> str | None:
    """``"task accuracy 1.000 on 256 sample inputs; sites checked L0.resid_post"`` or None."""
    if not isinstance(preflight, Mapping):
        return None
    acc, n = preflight.get("task_accuracy"), preflight.get("n")
    text = f"task accuracy {fmt_value(acc if isinstance(acc, (int, float)) else None)}"
    if isinstance(n, int):
        text += f" on {n} sample inputs"
    sites = [str(s) for s in preflight.get("sites_checked") or [] if s is not None]
    if sites:
        text += f"; sites checked {', '.join(sites)}"
    return text


def shortfalls(dataset: Any) -> list[tuple[str, Any, Any]]:
    """(split, found, wanted) for every split that came back short (``dataset.shortfalls``)."""
    table = dataset.get("shortfalls") if isinstance(dataset, Mapping) else None
    if not isinstance(table, Mapping):
        return []
    out = []
    for split, pair in table.items():
        pair = list(pair) if isinstance(pair, list) else []
        out.append((str(split), pair[0] if pair else None, pair[1] if len(pair) > 1 else None))
    return out


def shortfall_text(dataset: Any) -> str | None:
    """``"fewer pairs than requested: train 376 of 400"`` or None."""
    items = shortfalls(dataset)
    if not items:
        return None
    return "fewer pairs than requested: " + ", ".join(
        f"{split} {'?' if found is None else found} of {'?' if wanted is None else wanted}"
        for split, found, wanted in items)


def against(expectation: Any) -> dict[str, Any] | None:
    """The right-hand figure of a relative expectation (``expectation["against"]``), or None."""
    rec = expectation.get("against") if isinstance(expectation, Mapping) else None
    if not isinstance(rec, Mapping):
        return None
    value, correct, n = metric_counts(rec)
    low, high = rec.get("ci_low"), rec.get("ci_high")
    if not (isinstance(low, (int, float)) and isinstance(high, (int, float))):
        low = high = None
        if isinstance(correct, int) and isinstance(n, int) and 0 <= correct <= n and n > 0:
            low, high = wilson_interval(correct, n)
    diff = rec.get("difference")
    return {**rec, "value": value, "correct": correct, "n": n, "ci_low": low, "ci_high": high,
            "difference": diff if isinstance(diff, (int, float)) and not isinstance(diff, bool) else None}


def against_text(expectation: Any) -> str | None:
    """``"vs control(random_rotation) 0.793 [0.772, 0.813] n=1500"`` or None."""
    rec = against(expectation)
    if rec is None:
        return None
    text = f"vs {rec.get('text') or '?'} {fmt_value(rec['value'])}"
    if rec["ci_low"] is not None and rec["ci_high"] is not None:
        text += f" [{rec['ci_low']:.3f}, {rec['ci_high']:.3f}]"
    if rec["n"] is not None:
        text += f" n={rec['n']}"
    return text
