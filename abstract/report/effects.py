"""The report's effect-size table of one variable: the alignment, doing nothing and each control,
with mean logit difference, probability of the counterfactual answer and KL to the source run,
each with its 95% t interval (``engine/effects.py``)."""
from __future__ import annotations

from html import escape
from typing import Any, Mapping

from ..verify.stats import fmt_ci, fmt_value

COLUMNS = (("logit_diff", "logit diff"), ("prob", "p(counterfactual)"), ("kl", "KL(source ‖ run)"))


def _cell(fig: Any) -> str:
    if not isinstance(fig, Mapping) or fig.get("value") is None:
        return '<td class="num">—</td>'
    ci = fmt_ci(fig.get("ci_low"), fig.get("ci_high"))
    return (f'<td class="num">{fmt_value(fig.get("value"))} <span class="sub">{escape(ci)} '
            f'n={escape(str(fig.get("n")))}</span></td>')


def render_effects(v: Mapping[str, Any], control_names: Mapping[str, str]) -> str:
    """The table, or "" when the variable has no effect sizes (older documents)."""
    eff = v.get("effects")
    if not isinstance(eff, Mapping):
        return ""
    rows = [("this alignment", eff), ("do nothing", {k: (eff.get(k) or {}).get("do_nothing") for k, _ in COLUMNS})]
    for ctl, c in (v.get("controls") or {}).items():
        if isinstance((c or {}).get("effects"), Mapping):
            rows.append((f"control: {control_names.get(ctl, ctl)}", c["effects"]))
    body = "".join(f'<tr><th>{escape(label)}</th>{"".join(_cell(figs.get(k)) for k, _ in COLUMNS)}</tr>'
                   for label, figs in rows)
    head = "".join(f'<th class="num">{escape(t)}</th>' for _, t in COLUMNS)
    note = ("scores: summed log-probabilities of whole answers" if eff.get("scored") == "logprob_sum"
            else "scores: logits")
    return (f'<table class="effects" style="margin-top:10px"><tr><th>effect sizes ({escape(note)})</th>{head}</tr>'
            f'{body}</table>')
