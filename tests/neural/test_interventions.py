"""Algebra of the interventions, independent of any model."""
import pytest
import torch

from abstract.neural.interventions import (DAS, BoundlessDAS, LowRankRotation, MultiVariableDAS,
                                           NeuronInterchange, VectorInterchange, random_rotation_control,
                                           temperature_schedule)

H = 12


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(0)
    return torch.randn(5, H, generator=g), torch.randn(5, H, generator=g)


ALL = [VectorInterchange(), NeuronInterchange(H, [0, 3, 7]), DAS(H, 4, seed=1), DAS(H, H, seed=2),
       LowRankRotation(H, 3, seed=3), BoundlessDAS(H, seed=4, init_logit=1.0),
       MultiVariableDAS(H, {"a": 3, "b": 2}, seed=5).restricted("a")]


@pytest.mark.parametrize("iv", ALL, ids=lambda m: type(m).__name__)
def test_source_equal_base_is_identity(iv, pair):
    b, _ = pair
    assert torch.allclose(iv(b, b.clone()), b, atol=1e-6)


def test_vector_interchange_is_source(pair):
    b, s = pair
    assert torch.equal(VectorInterchange()(b, s), s)


def test_neuron_subset_elementwise(pair):
    b, s = pair
    idx = [1, 4, 11]
    out = NeuronInterchange(H, idx)(b, s)
    for j in range(H):
        assert torch.equal(out[:, j], s[:, j] if j in idx else b[:, j])
    with pytest.raises(IndexError):
        NeuronInterchange(H, [H])


def test_das_full_dim_is_full_interchange_and_zero_dim_is_identity(pair):
    b, s = pair
    assert torch.allclose(DAS(H, H, seed=0)(b, s), s, atol=1e-5)
    assert torch.equal(DAS(H, 0, seed=0)(b, s), b)
    assert torch.equal(LowRankRotation(H, 0, seed=0)(b, s), b)


def test_das_matches_rotate_swap_rotate_back(pair):
    b, s = pair
    das = DAS(H, 5, seed=7)
    R = das.rotation.matrix.detach()
    rb, rs = b @ R, s @ R
    mixed = torch.cat([rs[:, :5], rb[:, 5:]], dim=1)
    assert torch.allclose(das(b, s), mixed @ R.T, atol=1e-5)


def test_rotations_are_orthonormal_and_seeded():
    lr = LowRankRotation(H, 4, seed=0)
    C = lr.basis.detach()
    assert C.shape == (H, 4)
    assert torch.allclose(C.T @ C, torch.eye(4), atol=1e-5)
    R = DAS(H, 4, seed=0).rotation.matrix.detach()
    assert torch.allclose(R.T @ R, torch.eye(H), atol=1e-5)
    assert torch.equal(LowRankRotation(H, 4, seed=0).basis, lr.basis)
    assert not torch.allclose(LowRankRotation(H, 4, seed=1).basis, lr.basis)


def test_orthonormality_survives_training(pair):
    b, s = pair
    lr = LowRankRotation(H, 3, seed=0)
    opt = torch.optim.Adam(lr.parameters(), lr=0.1)
    for _ in range(5):
        opt.zero_grad()
        (lr(b, s) - s).pow(2).sum().backward()
        opt.step()
    C = lr.basis.detach()
    assert torch.allclose(C.T @ C, torch.eye(3), atol=1e-4)


def test_random_rotation_control_is_frozen():
    ctl = random_rotation_control(H, 4, seed=3)
    assert all(not p.requires_grad for p in ctl.parameters())
    assert torch.equal(ctl.basis, LowRankRotation(H, 4, seed=3).basis)


def test_boundless_mask_temperature_and_effective_dim(pair):
    b, s = pair
    bd = BoundlessDAS(H, seed=0)
    assert bd.effective_dim == pytest.approx(H / 2)
    with torch.no_grad():
        bd.mask_logits.copy_(torch.tensor([1.0] * 4 + [-1.0] * (H - 4)))
    bd.set_temperature(0.001)  # hard mask: equals DAS on the first 4 rotated dims
    assert bd.effective_dim == pytest.approx(4.0, abs=1e-4)
    R = bd.rotation.matrix.detach()
    das_like = b + ((s - b) @ R[:, :4]) @ R[:, :4].T
    assert torch.allclose(bd(b, s), das_like, atol=1e-5)
    bd.set_temperature(100.0)
    assert bd.effective_dim == pytest.approx(H / 2, abs=0.1)
    with pytest.raises(ValueError):
        bd.set_temperature(0.0)


def test_temperature_schedule():
    lin = temperature_schedule(50.0, 0.1, 5)
    assert lin[0] == 50.0 and lin[-1] == pytest.approx(0.1) and lin == sorted(lin, reverse=True)
    geo = temperature_schedule(10.0, 0.1, 3, kind="geometric")
    assert geo == pytest.approx([10.0, 1.0, 0.1])


def test_multi_variable_disjoint_sources(pair):
    b, s = pair
    s2 = torch.randn_like(b)
    mv = MultiVariableDAS(H, {"A": 3, "B": 4}, seed=0)
    Ca, Cb = mv.basis("A").detach(), mv.basis("B").detach()
    assert torch.allclose(Ca.T @ Cb, torch.zeros(3, 4), atol=1e-5)
    both = mv(b, {"A": s, "B": s2})
    # rotated coordinates: A's from s, B's from s2, the rest from b
    assert torch.allclose(both @ Ca, s @ Ca, atol=1e-5)
    assert torch.allclose(both @ Cb, s2 @ Cb, atol=1e-5)
    # sequential single swaps compose to the joint swap
    seq = mv(mv(b, {"A": s}), {"B": s2})
    assert torch.allclose(both, seq, atol=1e-5)
    assert torch.equal(mv(b, {}), b)
    assert torch.allclose(mv.restricted("A")(b, s), mv(b, {"A": s}))
    with pytest.raises(KeyError):
        mv(b, {"C": s})
    with pytest.raises(ValueError):
        MultiVariableDAS(H, {"A": 8, "B": 8})


@pytest.mark.parametrize("iv", [DAS(H, 4, seed=0), LowRankRotation(H, 4, seed=0), BoundlessDAS(H, seed=0)],
                         ids=lambda m: type(m).__name__)
def test_gradients_reach_rotation(iv, pair):
    b, s = pair
    iv(b, s).pow(2).sum().backward()
    grads = [p.grad for p in iv.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_each_kind_declares_what_it_can_do():
    """The engine asks the class, so the declarations are the contract."""
    from abstract.neural.interventions import INTERVENTIONS, intervention_class
    assert set(INTERVENTIONS) == {"full", "neurons", "das", "lowrank", "boundless", "pca", "sae", "mask"}
    for kind, cls in INTERVENTIONS.items():
        assert intervention_class(kind) is cls and cls.kind == kind
    caps = {k: (c.trainable, c.stackable, c.shares_basis, c.needs_dim) for k, c in INTERVENTIONS.items()}
    assert caps == {"full": (False, False, False, False), "neurons": (False, False, False, False),
                    "das": (True, True, True, True), "lowrank": (True, True, True, True),
                    "boundless": (True, False, False, False), "pca": (True, False, False, True),
                    "sae": (False, False, False, False), "mask": (True, False, False, False)}
    assert [k for k, c in INTERVENTIONS.items() if c.fits_data] == ["pca"]  # fitted on data, not by gradient
    with pytest.raises(KeyError, match="known: full"):
        intervention_class("rotate")


def test_das_and_lowrank_are_one_function_class():
    from abstract.neural.interventions import FULL_ROTATION_MAX, SubspaceRotation
    assert issubclass(DAS, SubspaceRotation) and issubclass(LowRankRotation, SubspaceRotation)
    assert DAS.forward is LowRankRotation.forward is SubspaceRotation.forward
    assert type(DAS.build(FULL_ROTATION_MAX, dim=3, seed=0)) is DAS
    wide = DAS.build(FULL_ROTATION_MAX + 1, dim=3, seed=0)
    assert type(wide) is LowRankRotation and wide.rotation.weight.shape == (FULL_ROTATION_MAX + 1, 3)
    assert DAS(H, 4, seed=0).effective_dim == LowRankRotation(H, 4, seed=0).effective_dim == 4


def test_misfit_says_why_a_kind_does_not_fit_a_site():
    assert DAS.misfit(8, dim=9) == "das(dim=9) does not fit a site of width 8"
    assert LowRankRotation.misfit(8, dim=8) is None
    assert "neurons 8, 9 are outside a site of width 8" in NeuronInterchange.misfit(8, neurons=(1, 8, 9))
    assert BoundlessDAS.misfit(8) is None and VectorInterchange.misfit(8) is None


@pytest.mark.parametrize("make", [lambda: LowRankRotation(300, 4, seed=1), lambda: DAS.build(300, dim=4, seed=1),
                                  lambda: MultiVariableDAS(20, {"a": 3, "b": 2}, seed=1)],
                         ids=["lowrank", "das-wide", "multi"])
def test_seeded_rotations_ignore_and_keep_the_global_rng(make):
    """torch completes a non-square orthogonal parametrisation with columns from the global
    RNG; a seeded module must be the same whatever that RNG's state, and leave it alone."""
    torch.manual_seed(0)
    before = torch.get_rng_state()
    first = make()
    assert torch.equal(torch.get_rng_state(), before)
    torch.manual_seed(12345)
    torch.randn(7)
    second = make()
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name  # includes the completed square base


def test_boundless_anneals_and_penalises_through_the_training_hooks():
    bd = BoundlessDAS.build(H, seed=0)
    assert float(bd.temperature) == BoundlessDAS.START_TEMPERATURE
    bd.schedule(0, 5)
    assert float(bd.temperature) == pytest.approx(50.0)
    bd.schedule(4, 5)
    assert float(bd.temperature) == pytest.approx(0.1)
    assert torch.equal(bd.penalty(), BoundlessDAS.PENALTY * bd.mask_penalty())
    das = DAS(H, 2, seed=0)
    das.schedule(0, 3)
    assert das.penalty() is None
