"""The self-contained HTML alignment report: one file, inline CSS and SVG, no scripts, no URLs.

Everything taken from the results document (spec text, names, messages) goes through
`html.escape`, since a spec is user input and the report is meant to be opened in a browser.
"""
from __future__ import annotations

import re
from html import escape
from pathlib import Path
from typing import Any, Iterable

from ..highlight import highlight_line
from ..verify.featurizer_text import featurizer_text
from ..verify.stats import fmt_ci, fmt_value, judged_iia, wilson_interval
from ..verify.validity import (TRIVIAL_MEANING, against, better_site, better_site_text, do_nothing, do_nothing_interval,
                               expectation_do_nothing, is_trivial, metric_counts, preflight_text, shortfall_text,
                               site_label)
from .diagnostics import render_failing_pairs, render_training
from .holds import held_path_svg, holds_line
from .effects import render_effects
from .style import CSS
from .prescreen import prescreen_figure
from .svg import KIND_FILL, KIND_STROKE, causal_graph_svg, document_scale, grid_values, heatmap_svg
from .heads import head_heatmaps, head_text

CONTROL_NAMES = {"random_network": "untrained network", "random_rotation": "random rotation"}
CONTROL_NAMES["noise"] = "noise (base + 3σ Gaussian)"


def _e(x: Any) -> str:
    return escape("" if x is None else str(x), quote=True)


def doc_passed(doc: dict[str, Any]) -> bool:
    """The pipeline's own verdict when present; otherwise all checks proved and all expectations met."""
    if "passed" in doc:
        return bool(doc["passed"])
    return (all(c.get("verdict") == "proved" for c in (doc.get("checks") or []))
            and all(e.get("passed") for h in (doc.get("hypotheses") or []) for e in (h.get("expectations") or [])))


def _badge(ok: bool | None, yes: str = "PASS", no: str = "FAIL", cls: str = "") -> str:
    kind = "unknown" if ok is None else ("pass" if ok else "fail")
    return f'<span class="badge {kind} {cls}">{yes if ok else ("UNKNOWN" if ok is None else no)}</span>'


def _loc(location: str | None, spec_path: str) -> str:
    """A location as text, linked to its spec line when it points into this spec."""
    if not location:
        return ""
    parts = str(location).rsplit(":", 2)
    short = Path(parts[0]).name + ":" + ":".join(parts[1:]) if len(parts) == 3 else str(location)
    if len(parts) == 3 and parts[1].isdigit() and Path(parts[0]).name == Path(spec_path or "").name:
        return f'<a class="mono nowrap" href="#L{parts[1]}" title="{_e(location)}">line {_e(parts[1])}</a>'
    return f'<span class="mono">{_e(short)}</span>'


def _bar(value: float | None, cls: str = "") -> str:
    if value is None:
        return ""
    return f'<span class="bar {cls}" style="width:{max(0.0, min(1.0, value)) * 90:.0f}px"></span>'


_multi_value = metric_counts  # several-variable metrics come as a float or as {value, correct, n}


def _do_nothing_cell(entry: Any, with_counts: bool = False) -> str:
    """What leaving the site unchanged scores, for a table cell ("" when not measured)."""
    base = do_nothing(entry)
    if base is None:
        return ""
    counts = f' <span class="sub">({_e(base["correct"])}/{_e(base["n"])})</span>' if with_counts and base["n"] else ""
    return f'{fmt_value(base["value"])}{counts}'


def domain_size(domain: Any) -> int | None:
    """How many values a domain as the results document writes it holds ("bool", "0..9",
    "{a, b, c}"); None when the text is none of these."""
    text = str(domain or "").strip()
    if text == "bool":
        return 2
    m = re.fullmatch(r"(-?\d+)\s*\.\.\s*(-?\d+)", text)
    if m:
        size = int(m.group(2)) - int(m.group(1)) + 1
        return size if size > 0 else None
    if text.startswith("{") and text.endswith("}") and text[1:-1].strip():
        return len([x for x in text[1:-1].split(",") if x.strip()])
    return None


def chance_level(doc: dict[str, Any], h: dict[str, Any]) -> float | None:
    """What a constant guess scores on a hypothesis's pairs: 1/|values| of its model's output, since
    counterfactual labels are balanced over them. None for a model with several outputs or a domain
    the document does not spell out."""
    models, name = doc.get("models"), h.get("model")
    model = models.get(name) if isinstance(models, dict) and isinstance(name, str) else None
    nodes = ((model or {}).get("graph") or {}).get("nodes") or []
    outputs = [n for n in nodes if isinstance(n, dict) and n.get("kind") == "output"]
    if len(outputs) != 1:
        return None
    size = domain_size(outputs[0].get("domain"))
    return 1.0 / size if size else None


def page_scale(doc: dict[str, Any]) -> tuple[float, float]:
    """The one colour scale for every heatmap of the report: min..max over all their cells."""
    values: list[float | None] = []
    for h in doc.get("hypotheses") or []:
        for v in (h.get("variables") or {}).values():
            values += grid_values(_grid(v))
    return document_scale(values)


def _grid(v: dict[str, Any]) -> dict[str, Any]:
    """A variable's grid, or a one-cell grid of its measured IIA when the run searched no grid."""
    iia, site = v.get("iia") or {}, v.get("site") or {}
    return v.get("grid") or {"layers": [site.get("layer")], "positions": [site.get("position")],
                             "iia_max": [[iia.get("max")]], "iia_mean": [[iia.get("mean")]]}


TRIVIAL_TAG = f'<span class="tag trivial" title="{_e(TRIVIAL_MEANING)}">trivial</span>'


def render_header(doc: dict[str, Any]) -> str:
    spec, run = (doc.get("spec") or {}), (doc.get("run") or {})
    ok = doc_passed(doc) and not doc.get("errors")
    hyps = (doc.get("hypotheses") or [])
    exps = [e for h in hyps for e in (h.get("expectations") or [])]
    checks = (doc.get("checks") or [])
    seeds = sorted({s for h in hyps for s in (h.get("train") or {}).get("seeds", [])})
    n_cex = sum(c.get("verdict") == "counterexample" for c in checks)
    n_unk = sum(c.get("verdict") == "unknown" for c in checks)
    counts = [f"<b>{sum(_hyp_ok(h) for h in hyps)}</b>/{len(hyps)} hypotheses pass",
              f"<b>{sum(bool(e.get('passed')) for e in exps)}</b>/{len(exps)} expectations met",
              f"<b>{sum(c.get('verdict') == 'proved' for c in checks)}</b>/{len(checks)} checks proved"
              + (f" ({n_cex} counterexample{'s' * (n_cex != 1)}" + (f", {n_unk} unknown" if n_unk else "") + ")"
                 if n_cex or n_unk else "")]
    if doc.get("errors"):
        counts.append(f'<b style="color:var(--fail)">{len(doc["errors"])}</b> error(s)')
    info = [("spec", _e(spec.get("path"))), ("sha256", f'<span class="mono" title="{_e(spec.get("sha256"))}">'
                                                      f'{_e(str(spec.get("sha256", ""))[:16])}…</span>'),
            ("device", _e(run.get("device"))), ("seeds", _e(", ".join(map(str, seeds)) or run.get("seed", "—"))),
            ("started", _e(run.get("started"))),
            ("duration", _e(f"{run['seconds']:.1f} s" if isinstance(run.get("seconds"), (int, float)) else "—")
             + (" (cached)" if run.get("cached") else "")),
            ("versions", _e(" · ".join(f"{k} {run[k]}" for k in ("abstract", "torch", "transformers", "python")
                                       if run.get(k))))]
    verdict = "ERROR" if doc.get("errors") else ("PASS" if ok else "FAIL")
    return (f'<header class="top"><div><h1>Alignment report: {_e(Path(spec.get("path") or "spec").name)}</h1>'
            f'<div class="counts">{"".join(f"<span>{c}</span>" for c in counts)}</div>'
            f'<div class="runinfo">{"".join(f"<div><span>{k}</span>{v}</div>" for k, v in info)}</div></div>'
            f'<span class="badge verdict {"pass" if ok else "fail"}">{verdict}</span></header>')


def _hyp_ok(h: dict[str, Any]) -> bool:
    return all(e.get("passed") for e in (h.get("expectations") or []))


def render_errors(doc: dict[str, Any]) -> str:
    errors = doc.get("errors") or []
    if not errors:
        return ""
    items = "".join(f"<li>{_loc(e.get('location'), doc.get('spec', {}).get('path', ''))} "
                    f"<code>{_e(e.get('message'))}</code></li>" for e in errors)
    return f'<h2>Errors</h2><div class="errors"><ul>{items}</ul></div>'


def render_warnings(doc: dict[str, Any]) -> str:
    """What the run could not do without changing a verdict (e.g. store its results in the cache)."""
    warnings = doc.get("warnings") or []
    if not warnings:
        return ""
    return f'<h2>Warnings</h2><ul>{"".join(f"<li>{_e(w)}</li>" for w in warnings)}</ul>'


def render_expectations(h: dict[str, Any], spec_path: str) -> str:
    rows = []
    show_base = any(expectation_do_nothing(h, e) for e in (h.get("expectations") or []))
    show_against = any(against(e) for e in (h.get("expectations") or []))
    for e in (h.get("expectations") or []):
        base = expectation_do_nothing(h, e)
        base_cell = ""
        if base is not None:
            base_cell = f'{fmt_value(base["value"])} <span class="sub">{fmt_ci(*do_nothing_interval(base))}</span>'
        versus, against_cell = against(e), ""
        if versus is not None:  # the figure a relative expectation is judged against, and the bound difference
            diff = versus["difference"]
            against_cell = (f'<span class="mono">{_e(versus.get("text"))}</span> {fmt_value(versus["value"])} '
                            f'<span class="sub">{fmt_ci(versus["ci_low"], versus["ci_high"])}'
                            f'{"" if versus["n"] is None else " n=" + _e(versus["n"])}'
                            f'{"" if diff is None else f"; bounds differ by {diff:+.3f}"}</span>')
        conf = e.get("confidence")
        level = f"{conf:.0%}" if isinstance(conf, (int, float)) else ""
        n = e.get("n") or 0
        rows.append(f'<tr class="{"pass" if e.get("passed") else "fail"}"><td>{_badge(bool(e.get("passed")))}</td>'
                    f'<td class="mono nowrap">{_e(e.get("text"))}</td><td class="num">{fmt_value(e.get("value"))}</td>'
                    f'<td class="num">{fmt_ci(e.get("ci_low"), e.get("ci_high"))} <span class="sub">{level}</span></td>'
                    + (f'<td class="num">{_e(e.get("correct"))}/{_e(n)}</td>' if e.get("correct") is not None
                       else f'<td class="num">n={_e(n)}</td>')  # an effect size: a mean of n pairs
                    + (f'<td class="num">{against_cell}</td>' if show_against else "")
                    + (f'<td class="num dn">{base_cell}</td>' if show_base else "")
                    + f'<td class="why">{_e(e.get("reason"))}</td><td>{_loc(e.get("location"), spec_path)}</td></tr>')
    if not rows:
        return '<p class="sub">No expectations stated.</p>'
    base_head = ('<th class="num dn" title="what leaving the site unchanged scores on the same pairs">'
                 'do nothing</th>' if show_base else "")
    against_head = ('<th class="num" title="the figure a relative expectation is judged against: its value and '
                    'interval, and the bound difference compared with the margin">against</th>' if show_against else "")
    return ('<table><tr><th></th><th>expectation</th><th class="num">value</th><th class="num">confidence interval</th>'
            f'<th class="num">correct/n</th>{against_head}{base_head}<th>why</th><th>where</th></tr>{"".join(rows)}'
            '</table>')


def render_variable(name: str, v: dict[str, Any], hyp: str, scale: tuple[float, float] | None = None,
                    chance: float | None = None, holds: list | None = None) -> str:
    iia, site, itv = v.get("iia") or {}, v.get("site") or {}, v.get("intervention") or {}
    grid = _grid(v)
    better = better_site(v)
    base = do_nothing(iia)
    levels = {"chance": chance, "do nothing": None if base is None else base["value"]}
    fig = heatmap_svg(grid, site, title=f"{hyp}: IIA of {name} by layer and position", better=better,
                      scale=scale, levels=levels)
    if grid.get("heads"):  # a head grid: one layer x head heatmap per position
        fig = head_heatmaps(grid, site, f"{hyp}: IIA of {name}", better=better, scale=scale, levels=levels)
    fig += held_path_svg(holds, site, grid)  # path patching: the held components beside the grid
    extra = ", ".join(f"{_e(k)}={_e(x)}" for k, x in itv.items() if k not in ("kind",) and x is not None)
    correct, n = iia.get("correct"), iia.get("n")
    ci = fmt_ci(*wilson_interval(correct, n)) if isinstance(n, int) and n > 0 and correct is not None else "—"
    pos = site.get("position")
    judged = judged_iia(iia)
    rows = [f'<tr><th>this alignment (seed {_e(iia.get("best_seed"))}, best on dev)</th>'
            f'<td class="num"><b>{fmt_value(judged)}</b></td>'
            f'<td class="num">{ci}</td><td class="num">{_e(correct)}/{_e(n)}</td><td>{_bar(judged)}</td></tr>',
            f'<tr><th>mean over {len(v.get("seeds") or [])} seeds</th><td class="num">{fmt_value(iia.get("mean"))}</td>'
            f'<td></td><td></td><td>{_bar(iia.get("mean"))}</td></tr>']
    if base is not None:  # beside the controls: what leaving the site unchanged scores on the same pairs
        counts = "" if base["n"] is None else f'{_e(base["correct"])}/{_e(base["n"])}'
        rows.append(f'<tr><th>do nothing (site left unchanged)</th><td class="num">{fmt_value(base["value"])}</td>'
                    f'<td class="num">{fmt_ci(*do_nothing_interval(base))}</td><td class="num">{counts}</td>'
                    f'<td>{_bar(base["value"], "ctl")}</td></tr>')
    for ctl, c in (v.get("controls") or {}).items():
        val, cn = (c or {}).get("iia"), (c or {}).get("n")
        rows.append(f'<tr><th>control: {_e(CONTROL_NAMES.get(ctl, ctl))}</th><td class="num">{fmt_value(val)}</td>'
                    f'<td></td><td class="num">{"" if cn is None else "n=" + _e(cn)}</td>'
                    f'<td>{_bar(val, "ctl")}</td></tr>')
    seeds = " · ".join(f'seed {_e(s.get("seed"))}: <b>{fmt_value(s.get("iia"))}</b>'
                       + (f' <span class="sub">({_e(s.get("correct"))}/{_e(s.get("n"))})</span>' if s.get("n") else "")
                       for s in v.get("seeds") or [])
    where = f'layer {_e(site.get("layer"))}, {_e(site.get("component") or grid.get("component") or "")}' + \
            head_text(site) + \
            ("" if pos is None else f", position {_e(pos)}") + (f" {TRIVIAL_TAG}" if is_trivial(site) else "")
    note = better_site_text(v)
    better_row = f'<tr><th>better site</th><td class="note">{_e(note)}</td></tr>' if note else ""
    basis = featurizer_text(itv)
    better_row += f'<tr><th>basis</th><td>{_e(basis)}</td></tr>' if basis else ""
    joint = v.get("joint") or {}
    joint_row = ""
    caption = "Cells: best-seed IIA on held-out pairs, μ = mean over seeds; outlined: the chosen site."
    if scale is not None:
        caption += f" Colours: one scale for every heatmap in this report, {scale[0]:g}–{scale[1]:g}."
    if any(x is not None for x in levels.values()):
        caption += " Marked on the scale: " + ", ".join(k for k, x in levels.items() if x is not None) + "."
    if any(x is True for row in (grid.get("trivial") or []) if isinstance(row, list) for x in row):
        caption += f" Hatched, T: trivial ({_e(TRIVIAL_MEANING)}); a search skips them unless named."
    if note:
        caption += " Dashed: the grid's best non-trivial site, which beats the named one."
    if joint:
        block = list(joint.get("block") or []) + [None, None]
        others = ", ".join(x for x in (joint.get("group") or []) if x != name)
        last = block[1] - 1 if isinstance(block[1], int) else block[1]
        joint_row = (f'<tr><th>trained jointly</th><td>with {_e(others)}: '
                     f'one shared basis, its columns {_e(block[0])}..{_e(last)} '
                     f'are {_e(name)}\'s</td></tr>')
        if (v.get("grid") or {}).get("training") == "separate":
            caption += " The grid comes from separate per-variable training; the IIA beside it from the joint training."
    return (f'<div class="var"><div class="fig"><h3>{_e(name)}</h3>{fig}<div class="caption">{caption}</div></div>'
            f'{prescreen_figure(v.get("grid"), hyp, name)}'
            f'<div class="facts"><table class="kv"><tr><th>intervention</th><td class="mono">{_e(itv.get("kind"))}'
            f'{"(" + extra + ")" if extra else ""}</td></tr><tr><th>site</th><td>{where}</td></tr>'
            f'{better_row}{joint_row}</table>'
            f'<table style="margin-top:10px"><tr><th></th><th class="num">IIA</th><th class="num">95% CI</th>'
            f'<th class="num">n</th><th></th></tr>{"".join(rows)}</table>'
            f'{render_effects(v, CONTROL_NAMES)}'
            f'<p class="meta">{seeds}</p></div>'
            f'{render_training(f"variable {name}", v.get("seeds"))}{render_failing_pairs(name, v)}</div>')


def render_multi(multi: dict[str, Any] | None) -> str:
    if not multi or not any(multi.get(k) for k in ("cause", "isolate", "joint")):
        return ""
    rows = []
    entries = [(metric, key, entry) for metric in ("joint", "cause", "isolate")
               for key, entry in (multi.get(metric) or {}).items()]
    show_base = any(do_nothing(entry) for _, _, entry in entries)
    for metric, key, entry in entries:
        value, c, n = _multi_value(entry)
        note = ""
        if metric == "joint" and isinstance(entry, dict):
            site = entry.get("site") or {}
            note = (f' <span class="sub">every variable interchanged at once, each from its own source; '
                    f'{_e(site_label(site))}, mean over seeds {fmt_value(entry.get("mean"))}</span>')
        rows.append(f'<tr><td class="mono">{metric}({_e(key.replace(",", ", "))}){note}</td>'
                    f'<td class="num">{fmt_value(value)}</td><td class="num">{_multi_ci(c, n)}</td>'
                    f'<td class="num">{"" if n is None else f"{_e(c)}/{_e(n)}"}</td>'
                    + (f'<td class="num dn">{_do_nothing_cell(entry, with_counts=True)}</td>' if show_base else "")
                    + f'<td>{_bar(value)}</td></tr>')
    base_head = ('<th class="num dn" title="what leaving the site unchanged scores on the same pairs">do nothing</th>'
                 if show_base else "")
    training = "".join(render_training(f"group {key}", (entry or {}).get("seeds"))
                       for key, entry in (multi.get("joint") or {}).items() if isinstance(entry, dict))
    return ('<h4>Several variables at once</h4><table><tr><th>metric</th><th class="num">value</th>'
            '<th class="num" title="Wilson score interval of correct/n">95% CI</th>'
            f'<th class="num">correct/n</th>{base_head}<th></th></tr>{"".join(rows)}</table>{training}')


def _multi_ci(correct: Any, n: Any) -> str:
    """The Wilson interval of a several-variable count ("—" when the document has no counts)."""
    if (isinstance(n, int) and not isinstance(n, bool) and n > 0 and isinstance(correct, int)
            and not isinstance(correct, bool) and 0 <= correct <= n):
        return fmt_ci(*wilson_interval(correct, n))
    return "—"


def render_hypothesis(h: dict[str, Any], spec_path: str, scale: tuple[float, float] | None = None,
                      chance: float | None = None) -> str:
    ok = _hyp_ok(h)
    t, d = h.get("train") or {}, h.get("dataset") or {}
    train = ", ".join(f"{_e(k)} {_e(', '.join(map(str, x)) if isinstance(x, list) else _show(x))}"
                      for k, x in t.items())
    data = (f'{_e(d.get("train"))} training / {_e(d.get("test"))} held-out pairs, informativeness '
            f'{fmt_value(d.get("informativeness"), 2)}' if d else "")
    if d.get("held_out") is False:
        data += ('<br><b style="color:var(--fail)">warning: the test pairs overlap the training pairs (the input '
                 'space is too small to hold them out): these figures measure fit, not generalisation</b>')
    short = shortfall_text(d)
    if short:
        data += f'<br><b style="color:var(--fail)">warning: {_e(short)}</b>'
    pre = preflight_text(h.get("preflight"))
    pre_line = f"<br>preflight (the unmodified network, before scoring): {_e(pre)}" if pre else ""
    variables = "".join(render_variable(k, v, h.get("name", ""), scale, chance, h.get("holds"))
                        for k, v in (h.get("variables") or {}).items())
    return (f'<section class="card {"passed" if ok else "failed"}" id="h-{_e(h.get("name"))}"><div class="card-head">'
            f'{_badge(ok)}<h3>{_e(h.get("name"))}</h3>'
            f'<span class="sub mono">{_e(h.get("model"))} ~ {_e(h.get("network"))}'
            f'</span>{_loc(h.get("location"), spec_path)}</div>'
            f'<p class="meta">train: {train}<br>{data}'
            f'{" · network " + _e(h.get("network_fingerprint")) if h.get("network_fingerprint") else ""}{pre_line}'
            f'{holds_line(h.get("holds"))}</p>'
            f'<h4>Expectations</h4>{render_expectations(h, spec_path)}'
            f'<h4>Variables</h4>{variables or "<p class=sub>No aligned variables.</p>"}{render_multi(h.get("multi"))}'
            f'</section>')


def render_models(doc: dict[str, Any]) -> str:
    models = doc.get("models") or {}
    used = [h.get("model") for h in (doc.get("hypotheses") or [])]
    order = sorted(models, key=lambda m: (m not in used, list(models).index(m)))
    cards = []
    for name in order:
        m = models[name]
        mech = "".join(f'<tr><td class="mono"><b>{_e(n["id"])}</b></td><td class="mono">{_e(n.get("domain"))}</td>'
                       f'<td class="mono">{_e(n.get("mechanism") or "")}</td></tr>'
                       for n in (m.get("graph") or {}).get("nodes", []) if n.get("mechanism"))
        cards.append(f'<div class="card"><h3>{_e(name)}</h3>{causal_graph_svg(m, name)}'
                     f'<table><tr><th>variable</th><th>domain</th><th>mechanism</th></tr>{mech}</table></div>')
    legend = "".join(f'<span style="background:{KIND_FILL[k]};border-color:{KIND_STROKE[k]}"></span>{k}'
                     for k in ("input", "intermediate", "output"))
    if not cards:
        return ""
    return f'<h2>Causal models</h2><p class="legend sub">{legend}</p><div class="graphs">{"".join(cards)}</div>'


def render_checks(doc: dict[str, Any]) -> str:
    checks = doc.get("checks") or []
    if not checks:
        return ""
    rank = {"counterexample": 0, "unknown": 1, "proved": 2}
    rows = []
    ordered = sorted(checks, key=lambda c: rank.get(c.get("verdict"), 1))
    for c in ordered:
        v = c.get("verdict")
        cex = c.get("counterexample")
        cex_txt = ", ".join(f"{_e(k)} = {_e(_show(x))}" for k, x in cex.items()) if cex else ""
        badge = _badge(None if v == "unknown" else v == "proved", "PROVED")
        rows.append(f'<tr class="{"" if v == "proved" else "fail"}"><td>{badge}</td>'
                    f'<td>{_e(c.get("model"))}</td><td class="mono check">{_e(c.get("name"))}</td>'
                    f'<td>{_e(c.get("kind"))}</td>'
                    f'<td>{f"<span class=cex>{cex_txt}</span> " if cex_txt else ""}{_e(c.get("message"))}</td>'
                    f'<td>{_loc(c.get("location"), (doc.get("spec") or {}).get("path") or "")}</td></tr>')
    bad = [r for r, c in zip(rows, ordered) if c.get("verdict") != "proved"]
    good = rows[len(bad):]
    head = '<tr><th></th><th>model</th><th>check</th><th>kind</th><th>counterexample / message</th><th>where</th></tr>'
    out = '<h2>Symbolic checks (z3)</h2>'
    if bad:
        out += f'<table>{head}{"".join(bad)}</table>'
    if good:
        out += (f'<details{" open" if not bad else ""}><summary>{len(good)} proved check(s)</summary>'
                f'<table>{head}{"".join(good)}</table></details>')
    return out


def _show(x: Any) -> str:
    return str(x).lower() if isinstance(x, bool) else str(x)


def _spec_line(line: str) -> str:
    """Escape one spec line and highlight it with the spec language's lexer (abstract/highlight.py)."""
    return highlight_line(line)


def render_spec(doc: dict[str, Any]) -> str:
    spec = doc.get("spec") or {}
    text = spec.get("text")
    if not text:
        return ""
    failing = _failing_lines(doc)
    lines = "".join(f'<span class="l{" bad" if i in failing else ""}" id="L{i}"><span class="n">{i}</span>'
                    f'{_spec_line(line)}</span>' for i, line in enumerate(str(text).splitlines(), 1))
    return f'<h2>Spec <span class="sub mono">{_e(spec.get("path"))}</span></h2><pre class="spec">{lines}</pre>'


def _failing_lines(doc: dict[str, Any]) -> set[int]:
    locs: Iterable[str | None] = [c.get("location") for c in (doc.get("checks") or []) if c.get("verdict") != "proved"]
    locs = list(locs) + [e.get("location") for h in (doc.get("hypotheses") or []) for e in (h.get("expectations") or [])
                         if not e.get("passed")] + [e.get("location") for e in (doc.get("errors") or [])]
    out = set()
    for loc in locs:
        parts = str(loc or "").rsplit(":", 2)
        if len(parts) == 3 and parts[1].isdigit():
            out.add(int(parts[1]))
    return out


def render_html(results: dict[str, Any]) -> str:
    """The whole report as one HTML string (inline CSS and SVG; no scripts, fonts or links out)."""
    spec_path = (results.get("spec") or {}).get("path") or ""
    scale = page_scale(results)
    hyps = "".join(render_hypothesis(h, spec_path, scale, chance_level(results, h))
                   for h in (results.get("hypotheses") or []))
    body = (render_header(results) + render_errors(results) + render_warnings(results)
            + (f"<h2>Hypotheses</h2>{hyps}" if hyps else "") + render_models(results)
            + render_checks(results) + render_spec(results))
    title = f"abstract: {Path(spec_path or 'spec').name} — {'PASS' if doc_passed(results) else 'FAIL'}"
    schema = _e(results.get("schema", "abstract.results/1"))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="generator" content="abstract">'
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>{body}"
            f"<footer>Generated by abstract from a {schema} results document. "
            "IIA: interchange-intervention accuracy on "
            f"held-out (base, source) pairs; intervals are Wilson score intervals.</footer></main></body></html>\n")


def write_report(results: dict[str, Any], path: str | Path) -> Path:
    """Render and write the report, creating parent folders; returns the path written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # errors="replace": a lone surrogate (from a JSON "\\ud800") must not stop the report
    path.write_text(render_html(results), encoding="utf-8", errors="replace")
    return path
