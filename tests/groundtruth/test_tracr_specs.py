"""tracr ground truth, through the spec-level API: every RASP variable is found at the layer
and residual subspace tracr placed it (``neurons(...)`` on exactly that subspace, and DAS at
that layer), and a wrong layer or a wrong variable fails.

The specs (fixtures/*.causal) write tracr's subspaces as neuron numbers; these tests also
check those numbers against the loader's placements, so the specs cannot drift from tracr.
Slow (tracr's first compile starts JAX: ~10 s of CPU before anything is verified); skipped
when tracr is not installed."""
from __future__ import annotations

import pytest

pytest.importorskip("tracr")

from gt_kit import hypothesis, load_fixture, verdicts, verify  # noqa: E402

programs = load_fixture("programs.py", "groundtruth_programs")

# spec -> program, {hypothesis: holds?}, {(hypothesis, variable): (RASP variable, token, layer)}
# for every neurons(...) claim: the neurons must be tracr's subspace of that RASP variable at
# that token (sequence position token + 1), at the layer tracr placed it ("placed"), the one
# before ("before"), or a given layer.
CASES = {
    "map.causal": ("map",
                   {"m1_found": True, "m1_das": True, "m1_before_mlp": False, "m0_at_m1": False,
                    "m1_via_its_token": True},
                   {("m1_found", "m1"): ("m", 1, "placed"), ("m1_before_mlp", "m1"): ("m", 1, "before"),
                    ("m0_at_m1", "m0"): ("m", 1, "placed"), ("m1_via_its_token", "m1"): ("tokens", 1, 1)}),
    "shift.causal": ("shift",
                     {"s0_found": True, "s0_das": True, "s0_before_attention": False, "s1_at_s0": False},
                     {("s0_found", "s0"): ("s", 0, "placed"), ("s0_before_attention", "s0"): ("s", 0, "before"),
                      ("s1_at_s0", "s1"): ("s", 0, "placed")}),
    "map_shift.causal": ("map_shift",
                         {"found": True, "das": True, "s0_before_attention": False, "m0_at_m1": False},
                         {("found", "m1"): ("m", 1, "placed"), ("found", "s0"): ("s", 0, "placed"),
                          ("s0_before_attention", "s0"): ("s", 0, "before"),
                          ("m0_at_m1", "m0"): ("m", 1, "placed")}),
}
# DAS claims: (hypothesis, variable) -> RASP variable whose layer the site must be
DAS = {("m1_das", "m1"): "m", ("s0_das", "s0"): "s", ("das", "m1"): "m", ("das", "s0"): "s"}


@pytest.mark.parametrize("spec", sorted(CASES))
def test_variables_found_where_tracr_put_them_and_wrong_ones_fail(spec):
    program, expected, claims = CASES[spec]
    net = programs.build(program)
    doc = verify(spec)
    assert verdicts(doc) == expected
    for (hyp, var), (rasp_var, token, when) in claims.items():
        v = hypothesis(doc, hyp)["variables"][var]
        place = net.placement(rasp_var)
        assert v["intervention"]["kind"] == "neurons"
        assert tuple(v["intervention"]["neurons"]) == place.neurons(token + 1), (hyp, var)
        layer = {"placed": place.layer, "before": place.layer - 1}.get(when, when)
        assert v["site"]["layer"] == layer, (hyp, var)
    for h in doc["hypotheses"]:
        for var, v in h["variables"].items():
            if (h["name"], var) in DAS:
                assert v["intervention"]["kind"] == "das"
                assert v["site"]["layer"] == net.placement(DAS[h["name"], var]).layer
            # the right claims are exact (IIA 1.0), the wrong ones never right on informative pairs
            assert v["iia"]["correct"] == (v["iia"]["n"] if expected[h["name"]] else 0), (h["name"], var)
