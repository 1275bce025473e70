"""pca, sae and mask interventions against hand-written forwards, to float tolerance."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import save_file

from abstract.neural.featurizers import (FeaturizerError, HardConcreteMask, NeuronMask, PCASubspace, SAEFeatures,
                                         read_sae)
from abstract.neural.interventions import intervention_class

H = 6


def _orthogonal(n: int, seed: int) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q


# ------------------------------------------------------------------------------ PCA
def _anisotropic(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Samples with variances 25, 9, 1, 0.25, ... along the columns of a random rotation, and a
    large mean (which an uncentred fit would take for the first direction)."""
    g = torch.Generator().manual_seed(seed)
    rot = _orthogonal(H, seed + 1)
    scales = torch.tensor([5.0, 3.0, 1.0, 0.5, 0.2, 0.1], dtype=torch.float64)
    z = torch.randn(n, H, generator=g, dtype=torch.float64) * scales
    x = z @ rot.T + 10.0 * torch.ones(H, dtype=torch.float64)
    return x.float(), rot


def test_pca_fits_the_top_principal_directions_of_centred_activations():
    x, _ = _anisotropic()
    pca = PCASubspace(H, 2)
    pca.fit_data(x)
    # by hand: eigenvectors of the sample covariance, largest first
    xc = x.double() - x.double().mean(0)
    vals, vecs = torch.linalg.eigh(xc.T @ xc / (len(x) - 1))
    top = vecs[:, [-1, -2]]
    proj, want = pca.components.double() @ pca.components.double().T, top @ top.T
    assert torch.allclose(proj, want, atol=1e-5)
    assert torch.allclose(pca.components.T @ pca.components, torch.eye(2), atol=1e-5)
    assert torch.allclose(pca.mean.double(), x.double().mean(0), atol=1e-4)
    assert float(pca.explained) == pytest.approx(float(vals[-2:].sum() / vals.sum()), abs=1e-5)
    assert pca.effective_dim == 2


def test_pca_swap_is_the_centred_coordinate_swap_by_hand():
    x, _ = _anisotropic()
    pca = PCASubspace(H, 2)
    pca.fit_data(x)
    b, s = x[:5], x[5:10]
    p, mu = pca.components, pca.mean
    # centre, read the k principal coordinates, put the source's there, uncentre
    cb, cs = (b - mu) @ p, (s - mu) @ p
    want = mu + (b - mu) - cb @ p.T + cs @ p.T
    assert torch.allclose(pca(b, s), want, atol=1e-5)
    assert torch.equal(pca(b, b), b)  # nothing moves when the source is the base
    # all directions: the source itself
    full = PCASubspace(H, H)
    full.fit_data(x)
    assert torch.allclose(full(b, s), s, atol=1e-4)


def test_pca_refuses_to_run_unfitted_and_round_trips_its_state():
    pca = PCASubspace(H, 3)
    b = torch.randn(4, H)
    with pytest.raises(RuntimeError, match="fit_data"):
        pca(b, b)
    x, _ = _anisotropic()
    pca.fit_data(x)
    fresh = PCASubspace.build(H, dim=3)
    fresh.load_state_dict(pca.state_dict())
    s = torch.randn(4, H)
    assert torch.equal(fresh(b, s), pca(b, s))
    assert PCASubspace.misfit(H, dim=H + 1) is not None
    with pytest.raises(FeaturizerError, match="at least 2"):
        PCASubspace(H, 1).fit_data(x[:1])


def test_pca_is_fitted_not_trained():
    cls = intervention_class("pca")
    assert cls is PCASubspace and cls.fits_data and not cls.stackable and not cls.shares_basis
    assert not [p for p in PCASubspace(H, 2).parameters() if p.requires_grad]


# ------------------------------------------------------------------------------ SAE
F = 10


def _sae(seed: int = 0, threshold: bool = False) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = {"W_enc": torch.randn(H, F, generator=g), "b_enc": 0.1 * torch.randn(F, generator=g),
         "W_dec": torch.randn(F, H, generator=g), "b_dec": 0.2 * torch.randn(H, generator=g)}
    if threshold:
        t["threshold"] = 0.3 * torch.rand(F, generator=g)
    return t


def _hand_sae(t: dict[str, torch.Tensor], b: torch.Tensor, s: torch.Tensor, feats: list[int]) -> torch.Tensor:
    """Encode both, give the base's code the source's values on ``feats``, decode, and add back
    the base's own reconstruction error."""
    def enc(x):
        pre = (x - t["b_dec"]) @ t["W_enc"] + t["b_enc"]
        return pre * (pre > t["threshold"]) if "threshold" in t else torch.relu(pre)

    def dec(f):
        return f @ t["W_dec"] + t["b_dec"]

    fb, fs = enc(b), enc(s)
    new = fb.clone()
    new[:, feats] = fs[:, feats]
    return dec(new) + (b - dec(fb))


@pytest.mark.parametrize("threshold", [False, True])
def test_sae_swap_matches_the_hand_written_forward(threshold):
    t = _sae(threshold=threshold)
    b, s = torch.randn(7, H), torch.randn(7, H)
    for feats in ([], [3], [0, 4, 9], list(range(F))):
        sae = SAEFeatures(t["W_enc"], t["b_enc"], t["W_dec"], t["b_dec"], feats, t.get("threshold"))
        assert torch.allclose(sae(b, s), _hand_sae(t, b, s, feats), atol=1e-5), feats
    # the error term is exact: no feature, or the base as source, is the identity
    none = SAEFeatures(t["W_enc"], t["b_enc"], t["W_dec"], t["b_dec"], [])
    assert torch.allclose(none(b, s), b, atol=1e-6)
    some = SAEFeatures(t["W_enc"], t["b_enc"], t["W_dec"], t["b_dec"], [1, 2])
    assert torch.allclose(some(b, b), b, atol=1e-6)
    recon = torch.relu((b - t["b_dec"]) @ t["W_enc"] + t["b_enc"]) @ t["W_dec"] + t["b_dec"]
    assert (recon - b).abs().max() > 0.5  # a poor reconstruction: the error term really matters


def test_sae_with_an_exact_dictionary_swaps_the_whole_source():
    q = _orthogonal(H, 3).float()
    z_b, z_s = torch.rand(4, H), torch.rand(4, H)  # non-negative codes: relu keeps them
    sae = SAEFeatures(q, torch.zeros(H), q.T.contiguous(), torch.zeros(H), range(H))
    assert torch.allclose(sae(z_b @ q.T, z_s @ q.T), z_s @ q.T, atol=1e-5)
    one = SAEFeatures(q, torch.zeros(H), q.T.contiguous(), torch.zeros(H), [2])
    want = z_b.clone()
    want[:, 2] = z_s[:, 2]
    assert torch.allclose(one(z_b @ q.T, z_s @ q.T), want @ q.T, atol=1e-5)


def test_sae_state_round_trips():
    t = _sae(threshold=True)
    sae = SAEFeatures(t["W_enc"], t["b_enc"], t["W_dec"], t["b_dec"], [1, 5], t["threshold"])
    other = _sae(seed=9, threshold=True)
    fresh = SAEFeatures(other["W_enc"], other["b_enc"], other["W_dec"], other["b_dec"], [0], other["threshold"])
    fresh.load_state_dict(sae.state_dict())
    b, s = torch.randn(3, H), torch.randn(3, H)
    assert torch.equal(fresh(b, s), sae(b, s))


def test_read_sae_checks_file_keys_shapes_and_features(tmp_path):
    t = _sae()
    save_file(t, str(tmp_path / "ok.safetensors"))
    got = read_sae("ok.safetensors", H, tmp_path)
    assert set(got) == {"W_enc", "b_enc", "W_dec", "b_dec"} and torch.equal(got["W_dec"], t["W_dec"])
    with pytest.raises(FeaturizerError, match='"nope.safetensors" not found'):
        read_sae("nope.safetensors", H, tmp_path)
    with pytest.raises(FeaturizerError, match=f"the site is {H + 2} wide"):
        read_sae("ok.safetensors", H + 2, tmp_path)
    save_file({k: v for k, v in t.items() if k != "b_dec"}, str(tmp_path / "nodec.safetensors"))
    with pytest.raises(FeaturizerError, match="lacks b_dec"):
        read_sae("nodec.safetensors", H, tmp_path)
    save_file({**t, "W_dec": torch.randn(F + 1, H)}, str(tmp_path / "bad.safetensors"))
    with pytest.raises(FeaturizerError, match=rf"W_dec is \[{F + 1}, {H}\], expected \[{F}, {H}\]"):
        read_sae("bad.safetensors", H, tmp_path)
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(FeaturizerError, match="not a readable safetensors file"):
        read_sae("junk.safetensors", H, tmp_path)
    with pytest.raises(FeaturizerError, match=f"features {F}, 12 are outside the SAE's {F} features"):
        SAEFeatures.configure(H, {"path": "ok.safetensors", "features": (0, F, 12)}, dim=None, seed=0,
                              spec_dir=tmp_path)


# ------------------------------------------------------------------------------ mask
def test_mask_forward_by_hand_in_training_and_evaluation():
    m = NeuronMask(H, l0=0.5)
    with torch.no_grad():
        m.logits.copy_(torch.tensor([2.0, -1.0, 0.5, -3.0, 0.0, 1.0]))
    b, s = torch.randn(4, H), torch.randn(4, H)
    m.train()
    m.temperature.fill_(0.5)
    g = torch.sigmoid(m.logits.detach() / 0.5)
    assert torch.allclose(m(b, s), b + g * (s - b), atol=1e-6)
    m.eval()  # binarised: a unit is open when its logit is > 0 (logit 0 is closed)
    want = b.clone()
    want[:, [0, 2, 5]] = s[:, [0, 2, 5]]
    assert torch.equal(m(b, s), want)
    assert m.open_units == (0, 2, 5) and m.effective_dim == 3
    assert torch.equal(m(b, b), b)


def test_mask_schedule_ramps_the_penalty_and_anneals_the_temperature():
    m = NeuronMask(H, l0=0.2)
    steps = 5
    weights, temps = [], []
    for step in range(steps):
        m.schedule(step, steps)
        weights.append(m.weight)
        temps.append(float(m.temperature))
        open_now = torch.sigmoid(m.logits.detach() / m.temperature)
        assert float(m.penalty().detach()) == pytest.approx(m.weight * float(open_now.sum()))
    assert weights == pytest.approx([0.0, 0.05, 0.1, 0.15, 0.2])
    assert temps[0] == pytest.approx(NeuronMask.START_TEMPERATURE)
    assert temps[-1] == pytest.approx(NeuronMask.END_TEMPERATURE)
    assert all(a > b for a, b in zip(temps, temps[1:]))


def test_hard_concrete_gate_samples_in_the_unit_interval_and_penalises_the_open_probability():
    m = HardConcreteMask(H, l0=1.0, seed=3)
    m.train()
    m.schedule(1, 2)
    with torch.no_grad():
        m.logits.copy_(torch.tensor([4.0, -4.0, 0.0, 1.0, -1.0, 8.0]))
    gates = torch.stack([m.train_gate() for _ in range(200)])
    assert gates.min() >= 0 and gates.max() <= 1
    assert (gates == 0).any() and (gates == 1).any()  # stretched and clipped: exact zeros and ones occur
    assert gates[:, 0].mean() > 0.9 and gates[:, 1].mean() < 0.1
    p_open = torch.sigmoid(m.logits - HardConcreteMask.BETA * math.log(-HardConcreteMask.GAMMA / HardConcreteMask.ZETA))
    assert float(m.penalty().detach()) == pytest.approx(float(p_open.detach().sum()))
    b, s = torch.randn(3, H), torch.randn(3, H)
    m.eval()
    want = b.clone()
    want[:, [0, 3, 5]] = s[:, [0, 3, 5]]
    assert torch.equal(m(b, s), want)
    # seeded noise: the same seed draws the same gates
    a, c = HardConcreteMask(H, seed=7), HardConcreteMask(H, seed=7)
    assert torch.equal(a.train_gate(), c.train_gate())


def test_mask_configure_and_state_round_trip():
    m = NeuronMask.configure(H, {"gate": "hard_concrete", "l0": 0.3}, dim=None, seed=0)
    assert isinstance(m, HardConcreteMask) and float(m.l0) == pytest.approx(0.3)
    assert type(NeuronMask.configure(H, {}, dim=None, seed=0)) is NeuronMask
    with torch.no_grad():
        m.logits.copy_(torch.linspace(-1, 1, H))
    fresh = NeuronMask.configure(H, {"gate": "hard_concrete", "l0": 0.3}, dim=None, seed=1)
    fresh.load_state_dict(m.state_dict())
    assert fresh.open_units == m.open_units == (3, 4, 5)
