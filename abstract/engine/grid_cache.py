"""Prefix caches for a whole search grid: one base forward and one source forward per split.

Why: a grid of L layers x P positions used to cost one base forward and one source forward
per site and split (each running the whole model and its head over every position). The
network is frozen, so one forward of a split's bases records the input of every block (the
prefix of every site at once; sites at one layer share it) and one forward of its sources
collects every site's activation. The base forward stops after the deepest site's block
(``neural/prefix.py``). The tensors are the same as per-site preparation computes, bit for
bit, so results do not change.

Memory: a split's cache holds one ``[pairs, seq, hidden]`` tensor per layer. Layers are
grouped into chunks whose estimate stays under ``budget`` bytes (every layer in one chunk
for small models); one chunk per split is kept at a time, so a grid walked layer by layer
costs one forward per chunk, not one per site.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

from ..neural.sites import Site
from .train import Pairs, SiteData, prepare_sites

DEFAULT_BUDGET = 1 << 30  # bytes of prefix cache per split (1 GiB)


def layer_bytes(runner: Any, pairs: Pairs) -> int:
    """Estimated bytes one layer's cached hidden states take for ``pairs`` (0 when small or unknown:
    plain torch networks cache one ``[pairs, hidden]`` row per layer)."""
    base = pairs.base_x
    ids = base.get("input_ids") if isinstance(base, dict) else None
    config = getattr(getattr(runner, "model", None), "config", None)
    hidden = getattr(config, "hidden_size", None)
    if ids is None or not isinstance(hidden, int):
        return 0
    params = next(iter(runner.model.parameters()), None)
    item = params.element_size() if params is not None else 4
    return int(ids.shape[0]) * int(ids.shape[1]) * hidden * item


def chunk_layers(layers: Sequence[int], per_layer: int, budget: int) -> list[tuple[int, ...]]:
    """Consecutive groups of ``layers`` (ascending) whose estimated size fits ``budget`` (at least
    one layer per group)."""
    chunks: list[tuple[int, ...]] = []
    current: list[int] = []
    for layer in sorted(set(layers)):
        if current and per_layer * (len(current) + 1) > budget:
            chunks.append(tuple(current))
            current = []
        current.append(layer)
    if current:
        chunks.append(tuple(current))
    return chunks


class GridCache:
    """SiteData of every grid site, prepared a chunk of layers at a time (see module docstring).

    ``get(site, split)`` for a grid site prepares its whole chunk on first use; a site outside
    the grid (an align site elsewhere) is prepared alone. ``keep_only`` frees all but one entry.
    """

    def __init__(self, runner: Any, splits: Mapping[str, Pairs], sites: Iterable[Site], budget: int = DEFAULT_BUDGET):
        self.runner, self.splits, self.budget = runner, splits, budget
        self.sites = list(dict.fromkeys(sites))
        self._loaded: dict[str, tuple[Optional[tuple[int, ...]], dict[Site, SiteData]]] = {}
        self._chunks: dict[str, list[tuple[int, ...]]] = {}
        self.forwards = 0  # prepare calls made (each one base forward plus one per source set)

    def _chunk_of(self, site: Site, split: str) -> Optional[tuple[int, ...]]:
        if site not in self.sites:
            return None
        if split not in self._chunks:
            per_layer = layer_bytes(self.runner, self.splits[split])
            self._chunks[split] = chunk_layers([int(s.layer or 0) for s in self.sites], per_layer, self.budget)
        return next(c for c in self._chunks[split] if int(site.layer or 0) in c)

    def get(self, site: Site, split: str) -> SiteData:
        """The site's data for ``split``, preparing (and keeping) its chunk when not loaded."""
        loaded = self._loaded.get(split)
        if loaded is not None and site in loaded[1]:
            return loaded[1][site]
        chunk = self._chunk_of(site, split)
        todo = [site] if chunk is None else [s for s in self.sites if int(s.layer or 0) in chunk]
        self._loaded.pop(split, None)  # free the previous chunk before computing the next
        data = prepare_sites(self.runner, todo, self.splits[split])
        self.forwards += 1
        self._loaded[split] = (chunk, dict(zip(todo, data)))
        return self._loaded[split][1][site]

    def keep_only(self, site: Optional[Site], split: str) -> None:
        """Forget everything but ``site``'s data for ``split`` (if loaded)."""
        kept = self._loaded.get(split)
        self._loaded.clear()
        if site is not None and kept is not None and site in kept[1]:
            self._loaded[split] = (None, {site: kept[1][site]})
