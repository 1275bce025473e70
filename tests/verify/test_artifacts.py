"""`--save-interventions` / `--load-interventions`: trained interventions as portable files.

Saving then loading must reproduce every figure exactly (the load run trains nothing: the
engine's training entry point is made to fail); files for another spec, another network or
another seed, and a tensor of the wrong shape, are refused with a clear message (exit 2).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from abstract.artifacts import FORMAT, saved_interventions
from abstract.export.mib import export_mib
from abstract.cli import main

NETS = Path(__file__).resolve().parents[1] / "engine" / "fixtures" / "hand_nets.py"

SPEC = f"""
model TwoEq {{
    input a, b, c, d : 0..2
    A = a == b
    B = c == d
    output y = A != B
}}

network rotated = torch "{NETS}:rotated_vars"

hypothesis searched : TwoEq ~ rotated {{
    align A via das(dim=2)
    align B to layer 1 via lowrank(dim=2)
    search layer 1..2
    train samples 64, epochs 1, batch 32, lr 0.02, seeds 2
    data test 40, dev 20, informative true
    control random_network, random_rotation
}}

hypothesis soft : TwoEq ~ rotated {{
    align A to layer 1 via boundless()
    train samples 80, epochs 1, batch 32, lr 0.02, seeds 1
    data test 40, dev 20, informative true
}}

model Two {{
    input a, b : 0..2
    x = a
    z = b
    output y = 3 * x + z
}}

network hand = torch "{NETS}:copy_two"

hypothesis joint : Two ~ hand {{
    align x to layer 0 via das(dim=2)
    align z to layer 0 via das(dim=2)
    train samples 120, epochs 1, batch 32, lr 0.05, seeds 1, joint true
    data test 40, dev 20, informative true
    control random_network
}}
"""


def _figures(doc: dict) -> list[dict]:
    """Every hypothesis entry without its wall-clock timing."""
    out = []
    for h in doc["hypotheses"]:
        h = dict(h)
        h.pop("timing", None)
        h.pop("seconds", None)
        out.append(h)
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    root = tmp_path_factory.mktemp("artifacts")
    spec = root / "two.causal"
    spec.write_text(SPEC)
    out = root / "saved"
    assert main(["align", str(spec), "--quiet", "--no-cache", "--device", "cpu", "--json", str(root / "a.json"),
                 "--save-interventions", str(out)]) == 0
    return spec, out, json.loads((root / "a.json").read_text())


def test_every_trained_intervention_is_saved_with_its_metadata(saved: tuple[Path, Path, dict]) -> None:
    spec, out, doc = saved
    files = saved_interventions(out)
    by = {(f["hypothesis"], f["unit"], f["site"], f["seed"]) for f in files}
    sha = doc["spec"]["sha256"]
    fingerprints = {h["name"]: h["network_fingerprint"] for h in doc["hypotheses"]}
    # the grid (layers 1, 2; first seed) and both seeds at the chosen site
    assert {("searched", "A", "L1.resid_post", "0"), ("searched", "A", "L2.resid_post", "0")} <= \
        {(h, u, s.split("@")[0], seed) for h, u, s, seed in by}
    assert sum(1 for h, u, _, _ in by if (h, u) == ("searched", "A")) == 3  # 2 grid cells + the 2nd seed
    assert sum(1 for h, u, _, _ in by if (h, u) == ("searched", "B")) == 3  # the grid row (layer 1 is seed 0) + seed 1
    assert any(u == "random_network:A" for _, u, _, _ in by)
    assert any(u == "x,z" for h, u, _, _ in by if h == "joint")
    assert any(u == "random_network:x,z" for h, u, _, _ in by if h == "joint")
    for f in files:
        assert f["format"] == FORMAT and f["spec_sha256"] == sha and f["run_seed"] == "0"
        assert f["network_fingerprint"] == fingerprints[f["hypothesis"]]
        assert f["spec_path"] == str(spec) and f["shapes"]
        assert isinstance(f["losses"], list) and f["losses"]
    reported = doc["hypotheses"][0]["variables"]["A"]
    site = f'L{reported["site"]["layer"]}.resid_post'
    das = next(f for f in files if (f["hypothesis"], f["unit"], f["site"], f["seed"]) == ("searched", "A", site, "1"))
    assert das["kind"] == "DAS" and das["args"]["planned"] == "das" and das["args"]["dim"] == 2
    assert das["args"]["hidden"] == reported["intervention"]["hidden"]
    assert das["site_fields"]["layer"] == reported["site"]["layer"]


def test_loading_reproduces_every_figure_without_training(saved: tuple[Path, Path, dict], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    spec, out, before = saved
    from abstract.engine import batched, controls, joint, search

    def no_training(*a, **k):
        raise AssertionError("a loaded run must not train")

    for module in (search, joint, controls):
        monkeypatch.setattr(module, "train_intervention", no_training)
    monkeypatch.setattr(batched, "train_stacked", no_training)
    monkeypatch.setattr(search, "train_stacked", no_training)
    assert main(["align", str(spec), "--quiet", "--no-cache", "--device", "cpu", "--json", str(tmp_path / "b.json"),
                 "--load-interventions", str(out)]) == 0
    after = json.loads((tmp_path / "b.json").read_text())
    assert _figures(after) == _figures(before)


def test_the_python_api_saves_and_loads(tmp_path: Path) -> None:
    import abstract
    spec = tmp_path / "two.causal"
    spec.write_text(SPEC)
    s = abstract.load(spec)
    stale = tmp_path / "iv" / "soft" / "A@L2.resid_post-seed7.safetensors"  # an older run's: replaced
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    first = s.verify("soft", device="cpu", cache=False, progress=False, save_interventions=tmp_path / "iv")
    assert not stale.exists()
    again = s.verify("soft", device="cpu", cache=False, progress=False, load_interventions=tmp_path / "iv")
    assert _figures(first.doc) == _figures(again.doc)
    assert [f["kind"] for f in saved_interventions(tmp_path / "iv")] == ["BoundlessDAS"]


def _refused(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    return capsys.readouterr().out


def test_another_spec_is_refused(saved: tuple[Path, Path, dict], tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = saved
    other = tmp_path / "two.causal"
    other.write_text(SPEC.replace("lr 0.02, seeds 1", "lr 0.03, seeds 1"))
    text = _refused(["align", str(other), "--quiet", "--no-cache", "--device", "cpu", "--hypothesis", "soft",
                     "--load-interventions", str(out)], capsys)
    assert "was saved for another spec text (sha256)" in text and "two.causal:" in text


def test_another_network_with_the_same_spec_text_is_refused(saved: tuple[Path, Path, dict], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    spec, out, _ = saved
    from abstract.engine import networks
    real = networks.LoadedNetwork.fingerprint.func  # type: ignore[attr-defined]

    def other(self):  # the same spec, but the builder now returns other weights
        return "0" * 16 if self.name == "rotated" else real(self)

    monkeypatch.setattr(networks.LoadedNetwork, "fingerprint", property(other))
    text = _refused(["align", str(spec), "--quiet", "--no-cache", "--device", "cpu", "--hypothesis", "soft",
                     "--load-interventions", str(out)], capsys)
    assert "was saved for another network (fingerprint)" in text and "'0000000000000000'" in text


def test_another_seed_and_a_missing_folder_are_refused(saved: tuple[Path, Path, dict], tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    spec, out, _ = saved
    base = ["align", str(spec), "--quiet", "--no-cache", "--device", "cpu", "--hypothesis", "soft"]
    assert "was saved for another --seed" in _refused(base + ["--seed", "3", "--load-interventions", str(out)],
                                                      capsys)
    assert "no saved interventions for hypothesis soft" in _refused(
        base + ["--load-interventions", str(tmp_path / "empty")], capsys)


def test_a_tensor_of_the_wrong_shape_is_refused(saved: tuple[Path, Path, dict], tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    spec, out, _ = saved
    from safetensors import safe_open
    from safetensors.torch import save_file
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    path = next((bad / "soft").glob("*.safetensors"))
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    key = next(k for k, v in tensors.items() if v.dim() == 1)
    tensors[key] = torch.zeros(tensors[key].shape[0] + 3)
    save_file(tensors, str(path), metadata=meta)
    text = _refused(["align", str(spec), "--quiet", "--no-cache", "--device", "cpu", "--hypothesis", "soft",
                     "--load-interventions", str(bad)], capsys)
    assert f"tensor {key} has shape [{tensors[key].shape[0]}]" in text and "needs [" in text
    path.write_bytes(b"not a safetensors file")
    text = _refused(["align", str(spec), "--quiet", "--no-cache", "--device", "cpu", "--hypothesis", "soft",
                     "--load-interventions", str(bad)], capsys)
    assert "is not a readable safetensors file" in text


@pytest.mark.slow  # a tiny LM trained, two CLI runs: ~15 s alone
def test_a_language_model_grid_trained_stacked_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a language model a grid row's positions are trained together (stacked); each is saved
    as its own file and loads back to the same figures."""
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
    from lm_kit import COPY_MODEL, tiny_lm, train_copy, word_tokenizer
    tok, model = word_tokenizer(), tiny_lm("gpt2")
    train_copy(model, tok, steps=40)
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    spec = tmp_path / "copy.causal"
    spec.write_text(COPY_MODEL + f'network lm = hf "{tmp_path / "lm"}" {{ prompt "{{a}} {{b}} =", answer " {{y}}" }}\n'
                    + """
hypothesis grid : Copy ~ lm {
    align a via das(dim=2)
    search layer 1, component resid_pre, position [a, last]
    train samples 16, epochs 1, batch 16, seeds 1
    data test 12, dev 6
}
""")
    from abstract.engine import search
    stacked: list[int] = []
    real = search.train_stacked
    monkeypatch.setattr(search, "train_stacked", lambda *a, **k: stacked.append(1) or real(*a, **k))
    base = ["align", str(spec), "--quiet", "--no-cache", "--device", "cpu"]
    assert main(base + ["--json", str(tmp_path / "a.json"), "--save-interventions", str(tmp_path / "iv")]) == 0
    assert stacked  # the path under test
    sites = sorted(f["site"] for f in saved_interventions(tmp_path / "iv"))
    assert sites == ["L1.resid_pre@last", "L1.resid_pre@slot:a"]
    stacked.clear()
    assert main(base + ["--json", str(tmp_path / "b.json"), "--load-interventions", str(tmp_path / "iv")]) == 0
    assert not stacked
    assert _figures(json.loads((tmp_path / "b.json").read_text())) == \
        _figures(json.loads((tmp_path / "a.json").read_text()))


# ------------------------------------------------------------------ MIB export
def test_mib_export_writes_featurizers_that_reproduce_the_intervention(saved: tuple[Path, Path, dict],
                                                                       tmp_path: Path) -> None:
    from abstract.export.mib import _module, load_unit, subspaces
    _, out, doc = saved
    rows = export_mib(out, tmp_path / "mib", [doc])
    folders = {r["folder"] for r in rows}
    # {TASK}_{MODEL}_{VARIABLE}; A is aligned by two hypotheses, so each gets its own folder
    assert folders == {"TwoEq-searched_RotatedVars_A", "TwoEq-soft_RotatedVars_A", "TwoEq_RotatedVars_B",
                       "Two_CopyTwo_x", "Two_CopyTwo_z"}
    # one unit per site: grid cells too; the judged seed where several seeds were trained
    searched_a = sorted(r["unit"] for r in rows if r["folder"] == "TwoEq-searched_RotatedVars_A")
    assert searched_a == ["ResidualStream(Layer-1)", "ResidualStream(Layer-2)"]
    best = doc["hypotheses"][0]["variables"]["A"]["iia"]["best_seed"]
    layer = doc["hypotheses"][0]["variables"]["A"]["site"]["layer"]
    assert next(r for r in rows if r["folder"] == "TwoEq-searched_RotatedVars_A"
                and r["unit"] == f"ResidualStream(Layer-{layer})")["seed"] == best
    manifest = json.loads((tmp_path / "mib" / "abstract-export.json").read_text())
    assert manifest["units"] == rows and manifest["skipped"] == []
    metas = {m["path"]: m for m in saved_interventions(out)}
    gen = torch.Generator().manual_seed(0)
    for row in rows:
        folder = tmp_path / "mib" / row["folder"]
        assert sorted(p.name for p in folder.glob(row["unit"] + "_*")) == sorted(row["files"])
        info = torch.load(folder / f"{row['unit']}_featurizer", weights_only=True)["model_info"]
        assert info["featurizer_class"] == "SubspaceFeaturizerModule"
        assert info["inverse_featurizer_class"] == "SubspaceInverseFeaturizerModule"
        assert info["n_features"] == row["n_features"]
        assert list(info["additional_config"]["rotation_matrix"].shape) == [row["hidden"], row["n_features"]]
        feat, inverse, indices = load_unit(folder, row["unit"])
        assert indices == list(range(row["n_features"]))
        base, source = torch.randn(5, row["hidden"], generator=gen), torch.randn(5, row["hidden"], generator=gen)
        with torch.no_grad():
            fb, err = feat(base)
            fs, _ = feat(source)
            torch.testing.assert_close(inverse(fb, err), base, atol=1e-5, rtol=0)  # exact inverse
            swapped = fb.clone()
            swapped[:, indices] = fs[:, indices]
            via_mib = inverse(swapped, err)
        meta = metas[row["from"]]
        cols = subspaces(meta)[row["variable"]]
        torch.testing.assert_close(via_mib, base + ((source - base) @ cols) @ cols.T, atol=1e-5, rtol=0)
        if meta["kind"] in ("DAS", "LowRankRotation"):  # the very intervention the run measured
            with torch.no_grad():
                torch.testing.assert_close(via_mib, _module(meta)(base, source), atol=1e-5, rtol=0)
        if meta["kind"] == "MultiVariableDAS":
            with torch.no_grad():
                torch.testing.assert_close(via_mib, _module(meta)(base, {row["variable"]: source}), atol=1e-5,
                                           rtol=0)


def test_mib_export_from_the_command_line(saved: tuple[Path, Path, dict], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    spec, out, _ = saved
    assert main(["export", "mib", str(out), str(tmp_path / "a")]) == 0
    assert (tmp_path / "a" / "abstract-export.json").is_file()
    assert main(["align", str(spec), "--quiet", "--no-cache", "--device", "cpu", "--hypothesis", "joint",
                 "--load-interventions", str(out), "--export-mib", str(tmp_path / "b")]) == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["Two_CopyTwo_x", "Two_CopyTwo_z",
                                                                  "abstract-export.json"]
    capsys.readouterr()
    assert main(["export", "mib", str(tmp_path / "nothing"), str(tmp_path / "c")]) == 2
    assert "no saved interventions under" in capsys.readouterr().err
