"""Multi-token answers: score every class over its whole answer, teacher-forced.

When some class's answer (the ``answer`` template rendered for it) spans several tokens, the
class score is the summed log-probability of the whole token sequence after the prompt,
teacher-forced: ``sum_j log p(t_j | prompt, t_<j)``; the predicted class is the one with the
highest sum. Never the first token alone.

How: :class:`AnswerRunner` wraps an :class:`~abstract.neural.lm_runner.LMRunner`. Encoded
batches stay prompt-only (``B`` rows), so site positions (``last``, slots, ints) resolve to
prompt tokens exactly as for single-token answers, and source activations are collected from
the prompts. For a base batch the runner builds ``B x C`` rows (``C`` classes): each prompt
followed by one class's answer tokens (right padding: the prompt tokens keep their positions),
runs the model's prefix once, and keeps a cache of those rows behind a :class:`AnswerCache`
that the engine sees as ``B`` rows: an intervention computes the site's new value from the
``B`` base activations (which, in a causal LM, do not depend on the answer tokens after
them), and the value is repeated to the ``C`` rows of its pair. Its outputs are the class
scores ``[B, C]`` directly (the encoder's ``class_logits`` passes them through).

Cost: the base prefix and every suffix forward are ``C`` times wider than for single-token
answers, which keep today's path untouched (no wrapper).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Optional, Sequence

import torch
from torch import nn

from ..neural.cache import BaseCache, NewAct, stack_caches
from ..neural.sites import NAMED_POSITIONS, SLOT_PREFIX, Site

SITE_KEY = "__answer_site_{}"  # named positions the wrapper adds: each site's prompt token per row


@dataclass
class AnswerCache(BaseCache):
    """A base batch of ``B`` pairs seen by the engine (``base_act``, ``positions``: ``B`` rows)
    over ``inner``, the prefix cache of the ``B x n_classes`` rows (pair-major: pair b's rows
    are ``b*C .. b*C+C-1``); ``target_*`` say which logits score which answer token."""

    inner: Optional[BaseCache] = None
    n_classes: int = 1
    target_ids: Optional[torch.Tensor] = None  # [B*C, L] answer token ids
    target_pos: Optional[torch.Tensor] = None  # [B*C, L] the position whose logits predict each
    target_mask: Optional[torch.Tensor] = None  # [B*C, L] True for a real answer token

    def _rows(self, index: torch.Tensor) -> torch.Tensor:
        c = self.n_classes
        return (index.unsqueeze(1) * c + torch.arange(c, device=index.device)).reshape(-1)

    def select(self, index: torch.Tensor | slice) -> "AnswerCache":
        if isinstance(index, slice):
            index = torch.arange(self.batch_size)[index]
        index = torch.as_tensor(index, dtype=torch.long)
        rows = self._rows(index.cpu())
        assert self.inner is not None and self.target_ids is not None
        assert self.target_pos is not None and self.target_mask is not None
        return replace(self, base_act=self.base_act[index.to(self.base_act.device)],
                       positions=None if self.positions is None else self.positions[index.to(self.positions.device)],
                       inner=self.inner.select(rows), target_ids=self.target_ids[rows.to(self.target_ids.device)],
                       target_pos=self.target_pos[rows.to(self.target_pos.device)],
                       target_mask=self.target_mask[rows.to(self.target_mask.device)])

    def stack(self, caches: Sequence["AnswerCache"]) -> "AnswerCache":
        """Several sites' caches of one base batch as one (``neural.cache.stack_caches``)."""
        inners = [c.inner for c in caches]
        assert all(i is not None for i in inners)

        def cat(name: str) -> torch.Tensor:
            return torch.cat([getattr(c, name) for c in caches])
        return replace(self, base_act=cat("base_act"), positions=cat("positions"),
                       inner=stack_caches([i for i in inners if i is not None]), target_ids=cat("target_ids"),
                       target_pos=cat("target_pos"), target_mask=cat("target_mask"))


class AnswerRunner:
    """An LM runner whose outputs are multi-token class scores ``[B, C]`` (module docstring)."""

    def __init__(self, inner: Any, answers: Sequence[Sequence[int]], pad_id: int) -> None:
        self.inner = inner
        self.model: nn.Module = inner.model
        self.n_classes = len(answers)
        width = max(len(a) for a in answers)
        self.answer_ids = torch.zeros(self.n_classes, width, dtype=torch.long)
        self.answer_mask = torch.zeros(self.n_classes, width, dtype=torch.bool)
        for c, ids in enumerate(answers):
            self.answer_ids[c, :len(ids)] = torch.tensor(list(ids), dtype=torch.long)
            self.answer_mask[c, :len(ids)] = True
        self.pad_id = int(pad_id)

    def __getattr__(self, name: str) -> Any:  # anything else the engine asks of an LM runner
        return getattr(self.__dict__["inner"], name)

    @property
    def device(self) -> torch.device:
        return self.inner.device

    @property
    def n_layers(self) -> int:
        return int(self.inner.n_layers)

    def module_for(self, site: Site) -> nn.Module:
        return self.inner.module_for(site)

    # ----- prompts + answers ---------------------------------------------------------------
    def _expand(self, inputs: Mapping[str, Any], sites: Sequence[Site]):
        """``B x C`` rows of prompt + answer, each site moved to a named position holding its
        prompt token; and the targets (ids, the positions predicting them, mask)."""
        ids = inputs["input_ids"].cpu()
        b, s = ids.shape
        mask = inputs.get("attention_mask")
        mask = torch.ones_like(ids) if mask is None else mask.cpu().to(ids.dtype)
        lengths = mask.sum(1)
        if bool((mask[:, 0] == 0).any()) or bool((mask.cumsum(1) != torch.minimum(
                torch.arange(1, s + 1).expand(b, s), lengths.unsqueeze(1))).any()):
            raise ValueError("multi-token answers need right-padded prompts (real tokens first)")
        c, width = self.answer_ids.shape
        cls = torch.arange(c).repeat(b)
        lens = lengths.repeat_interleave(c)
        rows = b * c
        out_ids = torch.full((rows, s + width), self.pad_id, dtype=ids.dtype)
        out_mask = torch.zeros((rows, s + width), dtype=mask.dtype)
        out_ids[:, :s] = ids.repeat_interleave(c, 0)
        out_mask[:, :s] = mask.repeat_interleave(c, 0)
        j = torch.arange(width)
        pos = lens.unsqueeze(1) + j
        real = self.answer_mask[cls]
        r = torch.arange(rows).unsqueeze(1).expand(rows, width)
        out_ids[r[real], pos[real]] = self.answer_ids[cls][real]
        out_mask[r[real], pos[real]] = 1
        target_pos = torch.where(real, pos - 1, (lens - 1).unsqueeze(1).expand(rows, width))
        named = {k: v.cpu().repeat_interleave(c, 0) for k, v in (inputs.get(NAMED_POSITIONS) or {}).items()}
        moved: dict[Site, Site] = {}
        for k, site in enumerate(dict.fromkeys(sites)):
            key = SITE_KEY.format(k)
            named[key] = self.inner.positions(inputs, site).cpu().repeat_interleave(c, 0)
            moved[site] = replace(site, position=SLOT_PREFIX + key)
        expanded = {**{k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask", NAMED_POSITIONS)},
                    "input_ids": out_ids, "attention_mask": out_mask, NAMED_POSITIONS: named}
        return expanded, moved, (self.answer_ids[cls], target_pos, real)

    def score(self, logits: torch.Tensor, target_ids: torch.Tensor, target_mask: torch.Tensor) -> torch.Tensor:
        """``[B*C, L, V]`` logits -> ``[B, C]`` summed log-probabilities of each class's answer."""
        logits = logits.logits if hasattr(logits, "logits") else logits
        logp = logits.float().log_softmax(-1)
        picked = logp.gather(-1, target_ids.to(logp.device).unsqueeze(-1)).squeeze(-1)
        picked = picked.masked_fill(~target_mask.to(logp.device), 0.0)
        return picked.sum(-1).view(-1, self.n_classes)

    # ----- the runner interface -------------------------------------------------------------
    def logits(self, inputs: Any, logit_positions: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Class scores ``[B, C]`` of the unmodified model (``logit_positions`` is not needed:
        the answer tokens say where they are read)."""
        expanded, _, (tid, tpos, tmask) = self._expand(inputs, [])
        return self.score(self.inner.logits(expanded, logit_positions=tpos), tid, tmask)

    def collect_many(self, inputs: Any, sites: Sequence[Site]) -> dict[Site, torch.Tensor]:
        """Source activations, from the prompts alone (a causal LM's prompt tokens do not see
        the answer after them)."""
        return self.inner.collect_many(inputs, sites)

    def collect(self, inputs: Any, site: Site) -> torch.Tensor:
        return self.collect_many(inputs, [site])[site]

    def prepare_many(self, inputs: Any, sites: Sequence[Site]) -> dict[Site, BaseCache]:
        expanded, moved, (tid, tpos, tmask) = self._expand(inputs, sites)
        inner = self.inner.prepare_many(expanded, list(moved.values()))
        c = self.n_classes
        out: dict[Site, BaseCache] = {}
        for site, m in moved.items():
            cache = inner[m]
            dev = cache.base_act.device
            out[site] = AnswerCache(site=site, base_act=cache.base_act[::c],
                                    positions=None if cache.positions is None else cache.positions[::c],
                                    inner=cache, n_classes=c, target_ids=tid.to(dev), target_pos=tpos.to(dev),
                                    target_mask=tmask.to(dev))
        return out

    def prepare(self, inputs: Any, site: Site) -> BaseCache:
        return self.prepare_many(inputs, [site])[site]

    def run_from_site(self, cache: BaseCache, new: NewAct, logit_positions: Optional[torch.Tensor] = None,
                      **kwargs: Any) -> torch.Tensor:
        """Class scores ``[B, C]`` with the site set to ``new`` (computed on the ``B`` pairs,
        repeated to each pair's ``C`` rows); gradients flow into ``new``."""
        if not isinstance(cache, AnswerCache) or cache.inner is None:
            raise TypeError("this cache was not made by an AnswerRunner")
        assert cache.target_ids is not None and cache.target_mask is not None
        value = new(cache.base_act) if callable(new) else new
        rows = value.repeat_interleave(cache.n_classes, 0)
        out = self.inner.run_from_site(cache.inner, rows, logit_positions=cache.target_pos, **kwargs)
        return self.score(out, cache.target_ids, cache.target_mask)

    def run_with_hook(self, inputs: Any, site: Site, new: NewAct,
                      logit_positions: Optional[torch.Tensor] = None, **kwargs: Any) -> torch.Tensor:
        """The uncached reference: a whole-model forward of the ``B x C`` rows with a hook."""
        expanded, moved, (tid, tpos, tmask) = self._expand(inputs, [site])
        c = self.n_classes

        def spliced(act: torch.Tensor) -> torch.Tensor:
            value = new(act[::c]) if callable(new) else new
            return value.repeat_interleave(c, 0)
        out = self.inner.run_with_hook(expanded, moved[site], spliced, logit_positions=tpos, **kwargs)
        return self.score(out, tid, tmask)


def answer_runner(runner: Any, encoder: Any) -> Any:
    """``runner`` wrapped for multi-token answers when the encoder has them, else itself (the
    single-token path is untouched)."""
    if not getattr(encoder, "multi_token", False):
        return runner
    return AnswerRunner(runner, encoder.answer_ids, encoder.tok.pad_token_id)
