"""The do-nothing rule and the trivial-site search rule, end to end and unit by unit."""
from __future__ import annotations

import torch

from abstract.engine.results import Count
from abstract.engine.search import Cell, choose_site
from abstract.neural.sites import Site
from abstract.verify.pipeline import verify_spec

from builders import with_builders  # tests/validity, on sys.path (pytest's rootdir-less import mode)


# u changes the output on ~10% of pairs only. The network computes u in neuron 6 and never reads it:
# swapping that neuron changes nothing, so it scores ~0.9 on all pairs -- exactly what leaving the
# site alone scores.
SPEC = """
model Rare {
    input a, b : 0..2
    u = a == 0 and b == 0
    output y = if u then 0 else 3 * a + b
}
network net = torch "faulty_nets.py:unused_u"
hypothesis rare_u : Rare ~ net {
    align u to layer 0 via neurons(6)
    train samples 20, seeds 1
    data test 1500, dev 20
    expect iia(u) >= 0.85
}
hypothesis rare_u_informative : Rare ~ net {
    align u to layer 0 via neurons(6)
    train samples 20, seeds 1
    data test 300, dev 20, informative true
    expect iia(u) >= 0.85
}
"""


def test_an_intervention_that_does_no_better_than_doing_nothing_fails(tmp_path):
    (tmp_path / "rare.causal").write_text(with_builders(SPEC))
    doc = verify_spec(tmp_path / "rare.causal", progress=False, device="cpu", cache=None)
    by = {h["name"]: h for h in doc["hypotheses"]}
    v = by["rare_u"]["expectations"][0]
    assert v["ci_low"] >= 0.85, v  # the old rule (threshold only) would have passed it
    assert v["passed"] is False and "doing nothing scores" in v["reason"]
    assert abs(v["do_nothing"]["value"] - v["value"]) < 0.05
    assert by["rare_u"]["multi"]["cause"]["u"]["do_nothing"]["value"] == 0.0
    # on label-changing pairs doing nothing scores 0, and the same swap is shown to do (too) little
    w = by["rare_u_informative"]["expectations"][0]
    assert w["do_nothing"]["value"] == 0.0 and w["passed"] is False


def _cell(layer: int, dev: int) -> Cell:
    return Cell(Site(layer=layer, position=None), 0, torch.nn.Identity(), Count(dev, 100), Count(dev, 100), [],  # type: ignore[arg-type]
                torch.zeros(0), 4)


def test_search_skips_trivial_sites_and_breaks_ties_by_lowest_layer():
    cells = [_cell(0, 100), _cell(1, 97), _cell(2, 97), _cell(3, 60)]
    candidates = [(c.site.layer or 0, 0, c) for c in cells]
    trivial = {cells[0].site: True}
    assert choose_site(candidates, trivial) is cells[1]  # the input layer scores best but says nothing
    assert choose_site(list(reversed(candidates)), trivial) is cells[1]  # not grid order: lowest layer
    assert choose_site(candidates[:1], trivial) is cells[0]  # all trivial: chosen, and flagged by the caller
