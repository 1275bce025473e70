"""Diagnostics of one trained intervention: why an alignment failed, or whether to trust it.

Torch-free (the verifier and the report read them from the results document). Per seed the
engine records the training loss curve (every step, downsampled to at most :data:`MAX_POINTS`
for the document), the mean cross-entropy of the trained intervention on the dev pairs, the IIA
on its own training pairs, and whether training converged by the rule below.

Convergence rule (:func:`convergence`), on the full per-step curve; a *window* is 10% of the
steps (at least one). Training has *not* converged when either

* **still falling**: the least-squares slope of the loss over the last quarter of the steps
  (at least two), projected over one window, is a drop of more than :data:`FALLING` (5%) of
  the run's whole fall (first window's mean minus the last quarter's), and that fall is itself
  more than 5% of the first window's loss -- the end of training still buys a real share of
  real progress, so more steps would help. A curve flattening out near its floor, however
  low, is converged; a flat, noisy one is not "falling" (a slope over a quarter of the steps,
  not two adjacent windows, so minibatch noise does not decide); or
* **stopped short**: train IIA is below :data:`UNDERFIT` (0.9), the loss barely moved (the last
  quarter averages more than :data:`STALLED`, 90%, of the first window) *and* the optimiser
  could not have moved far: steps x lr below :data:`REACH` (0.05; Adam moves a parameter by
  about lr per step, and the default training -- 2000 pairs, 3 epochs, batch 64, lr 1e-3 --
  reaches about 0.1): too few epochs or too small an lr. A variable that is not there also
  leaves the loss high, but after training that could have reached it: a failed alignment,
  not an unfinished one, and it does not warn; or
* a loss that is not finite.

Fewer than two steps cannot be judged (``converged`` is then ``None``, as for an intervention
that is not trained at all); neither warns.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

MAX_POINTS = 200
FALLING = 0.05
STALLED = 0.9
UNDERFIT = 0.9
REACH = 0.05
WINDOW = 0.1  # share of the steps one window holds
TAIL = 0.25  # share of the steps the final slope is fitted on


def downsample(losses: Sequence[float], limit: int = MAX_POINTS) -> list[float]:
    """At most ``limit`` points: the mean of consecutive equal-width runs of steps (the shape of
    the curve without the per-batch noise); unchanged when already short enough."""
    n = len(losses)
    if n <= limit:
        return [round(float(x), 5) for x in losses]
    out = []
    for i in range(limit):
        lo, hi = i * n // limit, (i + 1) * n // limit
        chunk = losses[lo:hi]
        out.append(round(float(sum(chunk)) / len(chunk), 5))
    return out


def convergence(losses: Sequence[float], train_iia: Optional[float],
                lr: Optional[float] = None) -> tuple[Optional[bool], Optional[str]]:
    """(converged, why not) by the module's rule; ``(None, None)`` when it cannot be judged."""
    n = len(losses)
    if n < 2:
        return None, None
    if not all(math.isfinite(x) for x in losses):
        return False, "the training loss is not finite"
    w = max(1, math.ceil(WINDOW * n))
    tail = list(losses[n - min(n, max(2, math.ceil(TAIL * n))):])
    first, last = _mean(losses[:w]), _mean(tail)
    fall, drop = first - last, -_slope(tail) * w
    if fall > FALLING * first and drop > FALLING * fall:
        return False, (f"the loss was still falling at the end ({drop:.4g} per {w} of {n} steps over the last "
                       f"{len(tail)}, {drop / fall:.0%} of the run's fall {first:.4g} -> {last:.4g}); train longer "
                       "(epochs) or raise lr")
    reach = n * lr if lr is not None else None
    if (train_iia is not None and train_iia < UNDERFIT and last > first * STALLED
            and reach is not None and reach < REACH):
        return False, (f"the loss barely moved ({first:.4g} -> {last:.4g}) and train IIA is {train_iia:.3f} after "
                       f"{n} steps at lr {lr:g} (steps x lr = {reach:.3g} < {REACH}); train longer (epochs) or "
                       "raise lr")
    return True, None


def _finite(x: Optional[float]) -> Optional[float]:
    """A JSON-safe figure: ``None`` for a missing or non-finite one."""
    return round(float(x), 5) if x is not None and math.isfinite(x) else None


def _slope(ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` against 0, 1, 2 ... (0 for fewer than two points)."""
    m = len(ys)
    if m < 2:
        return 0.0
    mx, my = (m - 1) / 2, _mean(ys)
    return sum((x - mx) * (y - my) for x, y in enumerate(ys)) / sum((x - mx) ** 2 for x in range(m))


def _mean(xs: Sequence[float]) -> float:
    return float(sum(xs)) / len(xs) if xs else 0.0


@dataclass(frozen=True)
class Diagnostics:
    """One seed's training, for the results document (``seeds[i].diagnostics``)."""

    losses: tuple[float, ...]  # every step
    dev_loss: Optional[float]
    train_iia: Optional[float]
    lr: Optional[float] = None

    @property
    def verdict(self) -> tuple[Optional[bool], Optional[str]]:
        return convergence(self.losses, self.train_iia, self.lr)

    def to_json(self) -> dict[str, Any]:
        converged, why = self.verdict
        out: dict[str, Any] = {"loss": [_finite(x) for x in downsample(self.losses)], "steps": len(self.losses),
                               "dev_loss": _finite(self.dev_loss),
                               "train_iia": self.train_iia, "converged": converged}
        if why is not None:
            out["why"] = why
        return out


FAILING_PAIRS = 8


def failing_pairs(examples: Sequence[Any], var: str, predicted: Sequence[Mapping[str, Any]],
                  limit: int = FAILING_PAIRS) -> list[dict[str, Any]]:
    """Up to ``limit`` test pairs the judged intervention gets wrong, in test order, as the
    causal model's values: base inputs, the source inputs ``var`` is taken from, the expected
    (counterfactual) output, the output the intervened network predicted, and whether the
    interchange changes the output at all (``changed``)."""
    out: list[dict[str, Any]] = []
    for ex, pred in zip(examples, predicted):
        if dict(pred) == dict(ex.counterfactual_output):
            continue
        out.append({"base": _plain(ex.base), "source": _plain(ex.sources[var]),
                    "expected": _plain(ex.counterfactual_output), "predicted": _plain(pred),
                    "changed": ex.base_output != ex.counterfactual_output})
        if len(out) >= limit:
            break
    return out


def _plain(value: Any) -> Any:
    """A causal-model value as JSON: dicts and sequences kept, scalars as they are, else text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
