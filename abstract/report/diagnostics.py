"""Training diagnostics in the report: per-seed loss curves (inline SVG) and failing test pairs.

Why: a failed alignment is either a variable that is not there or an intervention that was
not trained enough; the loss curve, the dev loss and the IIA on the training pairs tell the
two apart, and the failing pairs show what the network does instead. Everything is read from
the optional ``seeds[i].diagnostics`` and ``failing_pairs`` fields; a document without them
renders without this section.
"""
from __future__ import annotations

import math
from html import escape
from typing import Any, Mapping, Sequence

from ..verify.diagnostics import failing_pairs
from ..verify.stats import fmt_value

W, H, LEFT, TOP, BOTTOM, RIGHT = 230, 120, 42, 14, 22, 8


def _e(x: Any) -> str:
    return escape("" if x is None else str(x), quote=True)


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def loss_curve_svg(losses: Sequence[Any], title: str = "", converged: Any = None, steps: Any = None) -> str:
    """One seed's training loss against training progress (0 to the last step), y from 0 to
    the largest loss; a curve that did not converge is drawn in the warning colour."""
    points = [(i, v) for i, x in enumerate(losses) if (v := _num(x)) is not None]
    out = [f'<svg class="loss" role="img" width="{W}" height="{H}" viewBox="0 0 {W} {H}">',
           f"<title>{_e(title or 'training loss')}</title>"]
    pw, ph = W - LEFT - RIGHT, H - TOP - BOTTOM
    out.append(f'<line x1="{LEFT}" y1="{TOP + ph}" x2="{LEFT + pw}" y2="{TOP + ph}" stroke="#c3c8d0"/>'
               f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + ph}" stroke="#c3c8d0"/>')
    total = steps if isinstance(steps, int) and steps > 0 else len(losses)
    out.append(f'<text x="{LEFT}" y="{H - 6}" class="tick">0</text>'
               f'<text x="{LEFT + pw}" y="{H - 6}" text-anchor="end" class="tick">step {_e(total)}</text>')
    if not points:
        out.append(f'<text x="{LEFT + pw / 2}" y="{TOP + ph / 2}" text-anchor="middle" class="axis">'
                   'no finite loss recorded</text></svg>')
        return "".join(out)
    top = max(v for _, v in points) or 1.0
    n = max(len(losses) - 1, 1)
    out.append(f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end" class="tick">{top:.3g}</text>'
               f'<text x="{LEFT - 4}" y="{TOP + ph}" text-anchor="end" class="tick">0</text>')
    xy = " ".join(f"{LEFT + pw * i / n:.1f},{TOP + ph * (1 - v / top):.1f}" for i, v in points)
    ink = "#b42318" if converged is False else "#2c6fb7"
    if len(points) == 1:
        x, y = xy.split(",")
        out.append(f'<circle cx="{x}" cy="{y}" r="2.5" fill="{ink}"/>')
    else:
        out.append(f'<polyline class="curve" points="{xy}" fill="none" stroke="{ink}" stroke-width="1.5"/>')
    out.append("</svg>")
    return "".join(out)


def _seed_figure(label: str, seed: Any, d: Mapping[str, Any]) -> str:
    converged = d.get("converged")
    state = {True: "converged", False: "not converged", None: "convergence not judged"}.get(converged, "")
    facts = (f'dev loss {fmt_value(_num(d.get("dev_loss")), 4)} · train IIA {fmt_value(_num(d.get("train_iia")))}'
             f' · <span class="{"warn" if converged is False else "sub"}">{_e(state)}</span>')
    why = f'<div class="caption">{_e(d.get("why"))}</div>' if d.get("why") else ""
    losses = d.get("loss") or []
    svg = (loss_curve_svg(losses, f"{label}, seed {seed}: training loss", converged, d.get("steps")) if losses
           else '<div class="sub">nothing trained (no parameters)</div>')
    return (f'<div class="seedfig"><div class="mono">seed {_e(seed)}</div>{svg}<div class="meta">{facts}</div>'
            f'{why}</div>')


def render_training(label: str, seeds: Any) -> str:
    """The loss curves of ``seeds`` (a variable's or a joint group's) with their figures."""
    figs = [_seed_figure(label, s.get("seed"), s["diagnostics"]) for s in seeds or []
            if isinstance(s, Mapping) and isinstance(s.get("diagnostics"), Mapping)]
    if not figs:
        return ""
    return (f'<div class="training"><div class="sub">Training of {_e(label)}: loss per step (mean over runs of '
            f'steps when long), dev loss, IIA on its own training pairs</div>'
            f'<div class="curves">{"".join(figs)}</div></div>')


def _values(x: Any) -> str:
    if isinstance(x, Mapping):
        return ", ".join(f"{k}={_show(v)}" for k, v in x.items())
    return _show(x)


def _show(x: Any) -> str:
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, list):
        return "[" + ", ".join(_show(v) for v in x) + "]"
    return "" if x is None else str(x)


def render_failing_pairs(name: str, variable: Any) -> str:
    """The variable's sample of test pairs its judged seed gets wrong ("" when none recorded)."""
    pairs = failing_pairs(variable)
    if not pairs:
        return ""
    rows = "".join(f'<tr><td class="mono">{_e(_values(p.get("base")))}</td>'
                   f'<td class="mono">{_e(_values(p.get("source")))}</td>'
                   f'<td class="mono">{_e(_values(p.get("expected")))}</td>'
                   f'<td class="mono fail">{_e(_values(p.get("predicted")))}</td>'
                   f'<td>{"yes" if p.get("changed") else ("no" if p.get("changed") is False else "")}</td></tr>'
                   for p in pairs)
    return (f'<div class="failing"><div class="sub">Test pairs the judged seed of {_e(name)} gets wrong '
            f'(first {len(pairs)})</div><table class="pairs"><tr><th>base inputs</th>'
            f'<th>source inputs (for {_e(name)})</th><th>expected</th><th>predicted</th>'
            f'<th title="does the interchange change the output?">changed</th></tr>{rows}</table></div>')
