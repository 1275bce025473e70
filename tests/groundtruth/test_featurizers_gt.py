"""pca, sae and mask on hand-built networks where the right basis, features and neurons are
known (fixtures/featurizer_nets.py), enumerated by hand over all 81 x 81 pairs and then run
through the tool on a spec: the tool must reach the enumerated verdicts."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from gt_kit import hypothesis, load_fixture, verdicts

from abstract.cli import main
from abstract.neural.featurizers import PCASubspace, SAEFeatures
from abstract.report.html import render_html
from abstract.verify.summary import format_summary

nets = load_fixture("featurizer_nets.py", "groundtruth_featurizer_nets")
FIXTURE = Path(nets.__file__).resolve()

INPUTS = list(itertools.product(range(3), repeat=4))
TARGET = {"A": lambda b, s: int((s[0] == s[1]) != (b[2] == b[3])),
          "B": lambda b, s: int((b[0] == b[1]) != (s[2] == s[3]))}

SPEC = """
model TwoEq {
    input a, b, c, d : 0..2
    A = a == b
    B = c == d
    output y = A != B
}
network loud = torch "FIXTURE:loud_a"
network rotated = torch "FIXTURE:rotated_vars"
network aligned = torch "FIXTURE:rotated_vars" { rotate false }

# A's direction carries most of layer 1's variance: the first principal direction is A
hypothesis pca_a : TwoEq ~ loud {
    align A to layer 1 via pca(dim=1)
    train samples 300, seeds 1
    data test 200, dev 50, informative true
    expect iia(A) >= 0.9
}
# ... and B is not there: pca(dim=1) swaps A instead
hypothesis pca_b : TwoEq ~ loud {
    align B to layer 1 via pca(dim=1)
    train samples 300, seeds 1
    data test 200, dev 50, informative true
    expect iia(B) >= 0.9
}
# the SAE's features 0, 1 are A's coordinates, 2, 3 are B's
hypothesis sae_a : TwoEq ~ rotated {
    align A to layer 1 via sae("sae.safetensors", features=[0, 1])
    data test 200, dev 50, informative true
    expect iia(A) >= 0.9
}
hypothesis sae_wrong : TwoEq ~ rotated {
    align A to layer 1 via sae("sae.safetensors", [2, 3])
    data test 200, dev 50, informative true
    expect iia(A) >= 0.9
}
# unrotated: A is neurons 0, 1 (B 2, 3; the unread copy U 4..6; a constant 7)
hypothesis mask_a : TwoEq ~ aligned {
    align A to layer 1 via mask
    train samples 400, epochs 3, batch 32, lr 0.05, seeds 1
    data test 200, dev 50, informative true
    expect iia(A) >= 0.9
}
hypothesis mask_hc : TwoEq ~ aligned {
    align A to layer 1 via mask(gate=hard_concrete, l0=0.02)
    train samples 400, epochs 3, batch 32, lr 0.05, seeds 1
    data test 200, dev 50, informative true
    expect iia(A) >= 0.9
}
# a penalty that outweighs the task closes every unit: the alignment then fails
hypothesis mask_heavy : TwoEq ~ aligned {
    align A to layer 1 via mask(l0=10)
    train samples 400, epochs 3, batch 32, lr 0.05, seeds 1
    data test 200, dev 50, informative true
    expect iia(A) >= 0.9
}
"""


def one_hot(inputs) -> torch.Tensor:
    x = torch.zeros(len(inputs), 12)
    for i, row in enumerate(inputs):
        for k, v in enumerate(row):
            x[i, 3 * k + v] = 1.0
    return x


def layer1(net) -> torch.Tensor:
    with torch.no_grad():
        return net.layers[1](net.layers[0](one_hot(INPUTS)))


def exact_iia(net, interv, var: str) -> float:
    """IIA of ``interv`` at layer 1 over every (base, source) pair whose interchange changes y."""
    h = layer1(net)
    n = len(INPUTS)
    with torch.no_grad():
        x = interv(h.repeat_interleave(n, 0), h.repeat(n, 1))
        for mod in net.layers[2:]:
            x = mod(x)
        pred = net.head(x).argmax(-1).tolist()
    hits = []
    for k, (b, s) in enumerate((b, s) for b in INPUTS for s in INPUTS):
        want = TARGET[var](b, s)
        if want != int((b[0] == b[1]) != (b[2] == b[3])):
            hits.append(pred[k] == want)
    return sum(hits) / len(hits)


def test_pca_on_the_loud_net_finds_a_as_the_first_principal_direction():
    net = nets.loud_a()
    truth = torch.tensor([int((a == b) != (c == d)) for a, b, c, d in INPUTS])
    assert torch.equal(net(one_hot(INPUTS)).argmax(-1), truth)  # the rescaling keeps the behaviour
    pca = PCASubspace(8, 1)
    pca.fit_data(layer1(net))
    assert abs(float(pca.components[:, 0] @ net.pc1)) == pytest.approx(1.0, abs=1e-5)
    assert exact_iia(net, pca, "A") == 1.0
    assert exact_iia(net, pca, "B") < 0.6
    quiet = nets.rotated_vars()  # A and B equally loud: the top direction is no longer A's alone
    even = PCASubspace(8, 1)
    even.fit_data(layer1(quiet))
    assert exact_iia(quiet, even, "A") < 1.0


def test_the_sae_features_of_a_move_the_output_as_a_predicts():
    net, t = nets.rotated_vars(), nets.sae_tensors()
    h = layer1(net)
    recon = torch.relu(h @ t["W_enc"] + t["b_enc"]) @ t["W_dec"]
    assert (recon - h).abs().max() > 0.1  # the junk features spoil the reconstruction: the error term matters

    def sae(features):
        return SAEFeatures(t["W_enc"], t["b_enc"], t["W_dec"], t["b_dec"], features)
    assert exact_iia(net, sae([0, 1]), "A") == 1.0
    assert exact_iia(net, sae([2, 3]), "B") == 1.0
    assert exact_iia(net, sae([2, 3]), "A") < 0.6
    assert exact_iia(net, sae([]), "A") == 0.0  # no feature: the identity, the base's label everywhere


@pytest.fixture(scope="module")
def doc(tmp_path_factory):
    from abstract.verify.pipeline import verify_spec

    d = tmp_path_factory.mktemp("featurizers")
    save_file(nets.sae_tensors(), str(d / "sae.safetensors"))
    (d / "featurizers.causal").write_text(SPEC.replace("FIXTURE", str(FIXTURE)))
    out = verify_spec(d / "featurizers.causal", device="cpu", progress=False, seed=0)
    assert out["errors"] == [], out["errors"]
    return out


def test_spec_verdicts_match_the_truth(doc):
    assert verdicts(doc) == {"pca_a": True, "pca_b": False, "sae_a": True, "sae_wrong": False,
                             "mask_a": True, "mask_hc": True, "mask_heavy": False}
    itv = hypothesis(doc, "pca_a")["variables"]["A"]["intervention"]
    assert itv["kind"] == "pca" and itv["dim"] == 1 and itv["explained_variance"] > 0.7
    sae = hypothesis(doc, "sae_a")["variables"]["A"]
    assert sae["intervention"]["features"] == [0, 1] and sae["iia"]["correct"] == sae["iia"]["n"]


def test_the_mask_finds_exactly_the_neurons_of_a(doc):
    for name in ("mask_a", "mask_hc"):
        itv = hypothesis(doc, name)["variables"]["A"]["intervention"]
        assert itv["open_units"] == [0, 1] and itv["effective_dim"] == 2 == itv["dim"], (name, itv)
    heavy = hypothesis(doc, "mask_heavy")["variables"]["A"]["intervention"]
    assert heavy["open_units"] == [] and heavy["effective_dim"] == 0


def test_console_and_report_say_the_mask_size(doc):
    text = format_summary(doc)
    assert "A: mask: 2 of 8 units open (effective size 2): 0, 1" in text
    assert "sae: features 0, 1 interchanged" in text
    assert "A: mask: no unit open of 8" in text
    html = render_html(doc)
    assert "2 of 8 units open (effective size 2): 0, 1" in html


BAD_SAE = """
model TwoEq {
    input a, b, c, d : 0..2
    A = a == b
    B = c == d
    output y = A != B
}
network rotated = torch "FIXTURE:rotated_vars"
hypothesis h : TwoEq ~ rotated {
    align A to layer 1 via VIA
    data test 50, dev 50
    expect iia(A) >= 0.9
}
"""


@pytest.mark.parametrize("via, tensors, message", [
    ('sae("missing.safetensors", features=[0])', None, 'sae file "missing.safetensors" not found'),
    ('sae("sae.safetensors", features=[0])', {"W_enc": torch.zeros(6, 4), "b_enc": torch.zeros(4),
                                              "W_dec": torch.zeros(4, 6), "b_dec": torch.zeros(6)},
     "W_enc is [6, 4] but the site is 8 wide"),
    ('sae("sae.safetensors", features=[1, 12])', "ok", "features 12 are outside the SAE's 12 features"),
])
def test_a_bad_sae_is_a_located_error_at_the_via_clause(tmp_path, capsys, via, tensors, message):
    if tensors is not None:
        save_file(nets.sae_tensors() if tensors == "ok" else tensors, str(tmp_path / "sae.safetensors"))
    spec = tmp_path / "bad.causal"
    spec.write_text(BAD_SAE.replace("FIXTURE", str(FIXTURE)).replace("VIA", via))
    assert main(["verify", str(spec), "--device", "cpu", "--quiet"]) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    assert message in text
    assert f"{spec}:10:28" in text  # the via clause: line 10, the intervention's first column
    assert "Traceback" not in text
