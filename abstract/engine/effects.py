"""Effect sizes beside accuracy: how far an intervention moves the answer, not only whether.

For every test pair (base, source) with counterfactual label ``y`` and base label ``b`` (the
causal model's outputs), after the intervention:

* ``logit_diff``: score of ``y`` minus score of ``b``. Scores are the class logits (a torch
  classifier's logits; an LM's next-token logits of the answer tokens, where a logit
  difference equals a log-probability difference) or, for multi-token answers, the summed
  log-probabilities of the whole answer (teacher-forced). Averaged over the pairs whose
  interchange changes the label (``y != b``): elsewhere the difference is 0 by definition.
* ``prob``: probability of ``y`` (an LM's full next-token distribution, or the whole answer
  sequence's probability; a classifier's softmax over its classes), on the same pairs.
* ``kl``: KL(source run || intervened run) over the class distribution (class scores
  renormalised over the classes), on the pairs whose counterfactual label is the source's own
  output -- there the network run on the source input is a run with the counterfactual
  behaviour, so a faithful intervention should reproduce its distribution; undefined (None)
  when no such pair exists.

Each is a mean with a t interval (``verify.stats.mean_interval``), beside the same figures
with the site unchanged (doing nothing). The noise control (``controls.py``) reports them too.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

import torch

from ..causal import CausalModel
from ..neural.cache import NewAct
from ..neural.interventions import InterventionModule
from ..verify.stats import mean_interval
from .data import PairSet
from .results import Effects, MeanFigure
from .train import SiteData

EFFECT_BATCH = 256
CONFIDENCE = 0.95
DIGITS = 6
# rows (tensor of pair indices on the site data's device) -> what the run puts at the site
NewFor = Callable[[torch.Tensor], NewAct]


def intervened(sd: SiteData, interv: InterventionModule) -> NewFor:
    """The site set by ``interv`` from each pair's source (single-source pairs)."""
    interv.to(sd.device).eval()

    def new_for(i: torch.Tensor) -> NewAct:
        src = sd.source[i]
        return lambda b: interv(b, src)
    return new_for


def unchanged(sd: SiteData) -> NewFor:
    """The site as the base has it (doing nothing)."""
    return lambda i: (lambda b: b)


@torch.no_grad()
def class_scores(runner, encoder, sd: SiteData, new_for: NewFor,
                 batch: int = EFFECT_BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """(class scores, class log-probabilities), each ``[N, n_classes]`` float32 on CPU, of the
    network with the site set by ``new_for`` on every pair of ``sd``."""
    scores, logps = [], []
    for start in range(0, len(sd), batch):
        i = torch.arange(start, min(start + batch, len(sd))).to(sd.device)
        lp = sd.logit_pos[i] if sd.logit_pos is not None else None
        out = runner.run_from_site(sd.cache.select(i), new_for(i), logit_positions=lp)
        scores.append(encoder.class_logits(out).float().cpu())
        logps.append(encoder.class_log_probs(out).float().cpu())
    if not scores:
        n = len(encoder.classes)
        return torch.zeros(0, n), torch.zeros(0, n)
    return torch.cat(scores), torch.cat(logps)


def _rows(x: Any, i: slice, n: int) -> Any:
    """Rows ``i`` of an encoded batch of ``n`` examples (tensors, dicts, tuples of them)."""
    if torch.is_tensor(x):
        return x[i] if x.dim() >= 1 and x.shape[0] == n else x
    if isinstance(x, dict):
        return {k: _rows(v, i, n) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(_rows(v, i, n) for v in x)
    return x


@torch.no_grad()
def source_log_probs(runner, encoder, pairs: PairSet, batch: int = EFFECT_BATCH) -> torch.Tensor:
    """Class log-probabilities of the unmodified network run on each pair's source input."""
    def run(x: Any) -> torch.Tensor:
        return encoder.class_log_probs(runner.logits(x, logit_positions=encoder.logit_positions(x))).float().cpu()

    n, out = len(pairs), []
    for start in range(0, n, batch):
        part = run(_rows(pairs.source_x, slice(start, start + batch), n))
        if part.shape[0] != min(batch, n - start):  # an encoding we cannot slice by rows: one pass
            return run(pairs.source_x)
        out.append(part)
    return torch.cat(out) if out else torch.zeros(0, len(encoder.classes))


def source_labels(model: CausalModel, encoder, pairs: PairSet) -> torch.Tensor:
    """Class index of the causal model's output on each pair's (first) source input."""
    var = pairs.source_vars[0]
    return torch.tensor([encoder.classes.index({o: model.evaluate(x)[o] for o in model.outputs})
                         for x in pairs.sources(var)], dtype=torch.long)


def _figure(values: Sequence[float], confidence: float, low: Optional[float] = None,
            high: Optional[float] = None) -> MeanFigure:
    mean, lo, hi = mean_interval(list(values), confidence, low, high)

    def r(x: Optional[float]) -> Optional[float]:
        return None if x is None else round(x, DIGITS)
    return MeanFigure(r(mean), r(lo), r(hi), len(values))


def figures(scores: torch.Tensor, log_probs: torch.Tensor, label: torch.Tensor, base_label: torch.Tensor,
            src_log_probs: Optional[torch.Tensor] = None, src_label: Optional[torch.Tensor] = None,
            scored: str = "logit", confidence: float = CONFIDENCE) -> Effects:
    """Effect sizes from per-pair class scores (see the module docstring)."""
    label, base_label = label.cpu(), base_label.cpu()
    rows = torch.arange(label.shape[0])
    changed = label != base_label
    diff = (scores[rows, label] - scores[rows, base_label])[changed]
    prob = log_probs[rows, label].exp()[changed]
    kl = None
    if src_log_probs is not None and src_label is not None:
        where = label == src_label.cpu()
        if bool(where.any()):
            p = src_log_probs[where].log_softmax(-1)
            q = log_probs[where].log_softmax(-1)
            kl = _figure((p.exp() * (p - q)).sum(-1).clamp_min(0).tolist(), confidence, low=0.0)
    return Effects(_figure(diff.tolist(), confidence), _figure(prob.tolist(), confidence, 0.0, 1.0), kl, scored)


def scoring(encoder) -> str:
    """``logprob_sum`` for multi-token answers, else ``logit``."""
    return "logprob_sum" if getattr(encoder, "multi_token", False) else "logit"


def measure_effects(runner, encoder, sd: SiteData, new_for: NewFor, pairs: PairSet,
                    src: Optional[tuple[torch.Tensor, torch.Tensor]] = None, baseline: bool = True,
                    confidence: float = CONFIDENCE) -> Effects:
    """The effect sizes of ``new_for`` on ``pairs`` (prepared as ``sd``), and beside them
    (``baseline``) those of doing nothing on the same pairs. ``src``: the source run's class
    log-probabilities and the sources' own labels (for KL), computed once by the caller."""
    lp_src, lab_src = src if src is not None else (None, None)
    scored = scoring(encoder)
    s, lp = class_scores(runner, encoder, sd, new_for)
    eff = figures(s, lp, pairs.label, pairs.base_label, lp_src, lab_src, scored, confidence)
    if not baseline:
        return eff
    s0, lp0 = class_scores(runner, encoder, sd, unchanged(sd))
    nothing = figures(s0, lp0, pairs.label, pairs.base_label, lp_src, lab_src, scored, confidence)
    return Effects(eff.logit_diff, eff.prob, eff.kl, scored, do_nothing=nothing)


def predictions(scores: torch.Tensor) -> torch.Tensor:
    """Predicted class of every row of class scores."""
    return scores.argmax(-1)
