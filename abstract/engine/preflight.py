"""Preflight: refuse a network that cannot be the subject of an alignment, before any scoring.

Why: a verifier that scores a broken network scores noise. A network whose logits are NaN
predicts class 0 everywhere, which is "right" on every pair whose label is 0; an encoder that
shifts its rows scores the wrong inputs; a tokenizer that maps two input values to ``[UNK]``
makes them indistinguishable, so no site can hold the variable. Each of these would let an
expectation pass or fail for reasons that have nothing to do with the claim. So before a
hypothesis is aligned the run checks, on sample inputs:

* the encoder returns one row per input, and distinct inputs get distinct encodings;
* the unmodified network's logits are finite, and so are the activations at every site used;
* the network solves the task: its accuracy on the causal model's own outputs (reported;
  below ``min_accuracy`` the hypothesis errors);
* the identity interchange (source == base) at every site leaves every prediction unchanged
  (the site is addressed in the forward the engine runs).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch

from ..neural.sites import Site

MIN_TASK_ACCURACY = 0.8
SAMPLE_INPUTS = 256
SITE_INPUTS = 32  # per-site checks (finite activations, identity interchange): one site at a time, so fewer


class PreflightError(Exception):
    """The network (or its encoder) is unfit for alignment; the message says why."""


@dataclass
class PreflightReport:
    """What the preflight measured (part of the results document)."""

    task_accuracy: float
    n: int
    sites_checked: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"task_accuracy": round(self.task_accuracy, 4), "n": self.n, "sites_checked": self.sites_checked}


def _rows(encoded: Any) -> int:
    if isinstance(encoded, Mapping):
        return int(encoded["input_ids"].shape[0])
    if isinstance(encoded, torch.Tensor):
        return int(encoded.shape[0])
    if isinstance(encoded, (tuple, list)) and encoded and isinstance(encoded[0], torch.Tensor):
        return int(encoded[0].shape[0])
    return len(encoded)


def _row_keys(encoded: Any) -> list[bytes]:
    """One hashable key per encoded row (token ids of real tokens, or the row's bytes)."""
    if isinstance(encoded, Mapping):
        ids, mask = encoded["input_ids"], encoded.get("attention_mask")
        rows = []
        for i in range(ids.shape[0]):
            r = ids[i] if mask is None else ids[i][mask[i].bool()]
            rows.append(r.cpu().numpy().tobytes())
        return rows
    if isinstance(encoded, torch.Tensor):
        flat = encoded.detach().reshape(encoded.shape[0], -1).cpu().contiguous()
        return [flat[i].numpy().tobytes() for i in range(flat.shape[0])]
    return []


def check_encoder(encoder, inputs: Sequence[Mapping[str, Any]]) -> Any:
    """The encoded ``inputs``; raises when the encoder drops or adds rows or merges distinct inputs."""
    encoded = encoder.encode(inputs)
    n = _rows(encoded)
    if n != len(inputs):
        raise PreflightError(f"the encoder returned {n} rows for {len(inputs)} inputs: it must return one row per "
                             "input, in order")
    seen: dict[bytes, Mapping[str, Any]] = {}
    for x, key in zip(inputs, _row_keys(encoded)):
        other = seen.setdefault(key, x)
        if other is not x and dict(other) != dict(x):
            raise PreflightError(f"the encoder gives the same network input for {_show(other)} and {_show(x)}: "
                                 "the network cannot tell these input values apart (a tokenizer mapping values to "
                                 "an unknown token, or an encoder ignoring an input)")
    return encoded


def _show(x: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in x.items()) + "}"


@torch.no_grad()
def preflight(runner, encoder, model, sites: Sequence[Site], *, seed: int = 0,
              min_accuracy: float = MIN_TASK_ACCURACY, n: int = SAMPLE_INPUTS) -> PreflightReport:
    """Run every check above on ``n`` sample inputs of ``model``; raise :class:`PreflightError`."""
    inputs = _distinct(model.sample_inputs(n, seed=seed))
    encoded = check_encoder(encoder, inputs)
    lp = encoder.logit_positions(encoded)
    logits = encoder.class_logits(runner.logits(encoded, logit_positions=lp))
    bad = (~torch.isfinite(logits)).any(dim=-1)
    if bool(bad.any()):
        raise PreflightError(f"the network's logits are not finite (NaN or inf) on {int(bad.sum())} of "
                             f"{len(inputs)} sample inputs")
    labels = torch.tensor([encoder.classes.index({o: model.evaluate(x)[o] for o in model.outputs})
                           for x in inputs], dtype=torch.long)
    pred = logits.argmax(-1).cpu()
    accuracy = float((pred == labels).float().mean()) if len(inputs) else 0.0
    if accuracy < min_accuracy:
        raise PreflightError(f"the network solves the task on only {accuracy:.3f} of {len(inputs)} sample inputs "
                             f"(needs >= {min_accuracy}): its outputs do not follow model {model.name}, so no "
                             "alignment of its variables means anything. Check the builder, the encoder and the "
                             "output class order")
    checked = []
    few = inputs[:SITE_INPUTS]
    few_x = encoder.encode(few)
    few_lp = encoder.logit_positions(few_x)
    few_pred = pred[:len(few)]
    for site in dict.fromkeys(sites):
        act = runner.collect(few_x, site)
        if not bool(torch.isfinite(act).all()):
            raise PreflightError(f"activations at {site.label} are not finite (NaN or inf)")
        cache = runner.prepare(few_x, site)
        same = encoder.class_logits(runner.run_from_site(cache, act.to(cache.base_act.device),
                                                         logit_positions=few_lp))
        moved = int((same.argmax(-1).cpu() != few_pred).sum())
        if moved:
            raise PreflightError(f"interchanging {site.label} with the input's own activation (source == base) "
                                 f"changes {moved} of {len(few)} predictions: the site is not where the network's "
                                 "forward reads it")
        checked.append(site.label)
    return PreflightReport(accuracy, len(inputs), checked)


def _distinct(inputs: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    seen, out = set(), []
    for x in inputs:
        key = tuple(sorted((k, repr(v)) for k, v in x.items()))
        if key not in seen:
            seen.add(key)
            out.append(x)
    return out
