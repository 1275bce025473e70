"""Saved interventions -> the MIB causal-variable-localization submission layout.

MIB (Mueller et al., 2025; github.com/aaronmueller/MIB, track ``MIB-causal-variable-track``)
evaluates a *featurizer* per model unit: a module mapping an activation ``x`` to features
``f`` and a residual ``error``, its inverse ``(f, error) -> x``, and the feature indices
that hold the variable. A submission folder holds, per task, model and variable::

    OUT/{TASK}_{MODEL}_{VARIABLE}/{ModelUnit}_featurizer
                                  {ModelUnit}_inverse_featurizer
                                  {ModelUnit}_indices

as written by MIB's ``Featurizer.save_modules`` and ``save_featurizers``: each
``_featurizer`` / ``_inverse_featurizer`` is a ``torch.save`` of ``{"model_info":
{"featurizer_class": "SubspaceFeaturizerModule", "inverse_featurizer_class":
"SubspaceInverseFeaturizerModule", "n_features": k, "additional_config":
{"rotation_matrix": W, "requires_grad": False}}, "state_dict": ...}`` where ``W`` is
``hidden x k`` with orthonormal columns, ``f = x @ W`` and ``error = x - f @ W.T``; the
state dict is that of a module ``rotate`` (an ``orthogonal``-parametrised ``weight``),
the keys MIB's ``Featurizer.load_modules`` rebuilds; ``_indices`` is a JSON list of
feature indices (here every one of the k: the subspace *is* the variable).

What each kind exports as ``W``: ``das`` / ``lowrank``: the k learned columns (a swap of
those features is exactly the intervention the run measured); a joint group
(``train joint true``): each variable's own block of the shared basis, one folder per
variable; ``boundless``: the rotation's columns whose learned mask is above one half (the
soft mask hardened, so MIB's hard swap approximates what was measured). Grid cells and every
seed are exported; at a site with several seeds, the seed the results judged (``--results``)
or else the lowest one. ``TASK`` is the causal model's name, ``MODEL`` the network's class
(``GPT2LMHeadModel``), ``VARIABLE`` the variable; ``ModelUnit`` is
``ResidualStream(Layer-L,Token-P)`` for ``resid_post`` (MIB's residual-stream unit), else the
component's name in its place (``AttnOut(Layer-L,Token-P)``); a plain torch module's site
(no token position) drops ``,Token-P``. A manifest (``abstract-export.json``) lists what was
written from which saved file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable, Optional

import torch
from torch import nn
from torch.nn.utils.parametrizations import orthogonal

from ..artifacts import saved_interventions

FEATURIZER = "SubspaceFeaturizerModule"
INVERSE = "SubspaceInverseFeaturizerModule"
UNIT_NAMES = {"resid_post": "ResidualStream", "resid_pre": "ResidualStreamPre", "attn_out": "AttnOut",
              "mlp_out": "MLPOut"}


class ExportError(ValueError):
    """Nothing (or something unusable) to export; the message says what and why."""


class _Rotate(nn.Module):
    """MIB's ``LowRankRotateLayer`` state: a ``hidden x k`` ``weight`` kept orthonormal."""

    def __init__(self, matrix: torch.Tensor):
        super().__init__()
        self.weight = nn.Parameter(matrix.detach().clone().float())
        orthogonal(self, "weight")


class SubspaceFeaturizerModule(nn.Module):
    """``x -> (f, error)`` with ``f = x @ W``, ``error = x - f @ W.T`` (MIB's module of this name)."""

    def __init__(self, rotate: nn.Module):
        super().__init__()
        self.rotate = rotate

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w: torch.Tensor = self.rotate.weight  # type: ignore[assignment]
        f = x.to(w.dtype) @ w
        return f, x - (f @ w.T).to(x.dtype)


class SubspaceInverseFeaturizerModule(nn.Module):
    """``(f, error) -> f @ W.T + error``."""

    def __init__(self, rotate: nn.Module):
        super().__init__()
        self.rotate = rotate

    def forward(self, f: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
        w: torch.Tensor = self.rotate.weight  # type: ignore[assignment]
        return (f.to(w.dtype) @ w.T).to(f.dtype) + error.to(f.dtype)


def unit_name(site: dict[str, Any]) -> str:
    """MIB's model-unit id of a site (``ResidualStream(Layer-3,Token-last)``)."""
    comp = str(site.get("component") or "resid_post")
    name = UNIT_NAMES.get(comp, "".join(p.capitalize() for p in comp.split("_")))
    where = f"Layer-{site['layer']}" if site.get("layer") is not None else f"Module-{site.get('module')}"
    pos = site.get("position")
    if pos is not None:
        where += f",Token-{str(pos).replace('slot:', '')}"
    return f"{name}({where})"


def _module(meta: dict[str, Any]) -> nn.Module:
    """The saved intervention, rebuilt and loaded (strict)."""
    from safetensors.torch import load_file
    from ..neural.interventions import MultiVariableDAS, intervention_class
    args = meta["args"] or {}
    hidden = int(args["hidden"])
    module: nn.Module
    if meta["kind"] == "MultiVariableDAS":
        blocks = args.get("blocks") or {}
        module = MultiVariableDAS(hidden, [(v, hi - lo) for v, (lo, hi) in blocks.items()], seed=0)
    else:
        module = intervention_class(args["planned"]).build(hidden, dim=args.get("dim"),
                                                           neurons=args.get("neurons") or (), seed=0)
        if type(module).__name__ != meta["kind"]:
            raise ExportError(f"{meta['path']}: saved as {meta['kind']}, rebuilt as {type(module).__name__}")
    module.load_state_dict(load_file(meta["path"]))
    return module.eval()


def subspaces(meta: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Per variable, the ``hidden x k`` orthonormal columns a saved intervention swaps."""
    from ..neural.interventions import BoundlessDAS, MultiVariableDAS, SubspaceRotation
    module = _module(meta)
    with torch.no_grad():
        if isinstance(module, MultiVariableDAS):
            return {v: module.basis(v).detach().clone() for v in module.variables}
        if isinstance(module, SubspaceRotation):
            return {meta["unit"]: module.basis.detach().clone()}
        if isinstance(module, BoundlessDAS):
            keep = module.mask > 0.5
            return {meta["unit"]: module.rotation.matrix[:, keep].detach().clone()}
    raise ExportError(f"{meta['path']}: a {meta['kind']} intervention has no subspace to export")


def write_unit(folder: Path, unit: str, basis: torch.Tensor) -> list[Path]:
    """The three files of one model unit, as MIB's ``save_modules`` / ``save_featurizers`` write them."""
    rotate = _Rotate(basis)
    k = int(basis.shape[1])
    info = {"featurizer_class": FEATURIZER, "inverse_featurizer_class": INVERSE, "n_features": k,
            "additional_config": {"rotation_matrix": rotate.weight.detach().clone(), "requires_grad": False}}
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{unit}_featurizer", folder / f"{unit}_inverse_featurizer", folder / f"{unit}_indices"]
    torch.save({"model_info": info, "state_dict": SubspaceFeaturizerModule(rotate).state_dict()}, paths[0])
    torch.save({"model_info": info, "state_dict": SubspaceInverseFeaturizerModule(rotate).state_dict()}, paths[1])
    paths[2].write_text(json.dumps(list(range(k))))
    return paths


def load_unit(folder: Path, unit: str) -> tuple[SubspaceFeaturizerModule, SubspaceInverseFeaturizerModule, list[int]]:
    """Read one unit back the way MIB's ``Featurizer.load_modules`` does (tests use this)."""
    data = torch.load(folder / f"{unit}_featurizer", weights_only=True)
    inv = torch.load(folder / f"{unit}_inverse_featurizer", weights_only=True)
    rotate = _Rotate(data["model_info"]["additional_config"]["rotation_matrix"])
    feat, inverse = SubspaceFeaturizerModule(rotate), SubspaceInverseFeaturizerModule(rotate)
    feat.load_state_dict(data["state_dict"])
    inverse.load_state_dict(inv["state_dict"])
    return feat, inverse, json.loads((folder / f"{unit}_indices").read_text())


def judged_seeds(documents: Iterable[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """(hypothesis, variable) -> the seed its results judged (``iia.best_seed``: best on dev)."""
    out: dict[tuple[str, str], int] = {}
    for doc in documents:
        for h in doc.get("hypotheses") or []:
            for name, v in (h.get("variables") or {}).items():
                best = (v.get("iia") or {}).get("best_seed")
                if isinstance(best, int):
                    out[(h["name"], name)] = best
    return out


def export_mib(saved: str | Path, out: str | Path, documents: Optional[Iterable[dict[str, Any]]] = None
               ) -> list[dict[str, Any]]:
    """Write every saved intervention under ``saved`` (``--save-interventions DIR``) into the MIB
    layout under ``out``; returns the manifest rows (also written to ``out/abstract-export.json``).
    ``documents``: results documents; only their hypotheses are exported, at their judged seeds."""
    metas = [m for m in saved_interventions(saved) if not str(m["unit"]).startswith("random_network:")]
    if not metas:
        raise ExportError(f"no saved interventions under {saved} (write them with --save-interventions DIR)")
    documents = list(documents or [])
    if documents:  # only the hypotheses these results hold (a folder may hold more)
        ran = {h.get("name") for d in documents for h in d.get("hypotheses") or []}
        metas = [m for m in metas if m["hypothesis"] in ran]
        if not metas:
            raise ExportError(f"no saved interventions under {saved} for hypotheses {sorted(map(str, ran))}")
    judged = judged_seeds(documents)
    chosen: dict[tuple[str, str, str], dict[str, Any]] = {}
    for m in sorted(metas, key=lambda m: int(m["seed"])):
        key = (m["hypothesis"], m["unit"], m["site"])
        want = {judged.get((m["hypothesis"], v)) for v in m["variables"]}
        if key not in chosen or int(m["seed"]) in want:
            chosen[key] = m
    tasks: dict[tuple[str, str, str], set[str]] = {}
    for m in chosen.values():
        for v in m["variables"]:
            tasks.setdefault((m.get("model") or m["hypothesis"], m.get("network_class") or m["network"], v),
                             set()).add(m["hypothesis"])
    rows, skipped = [], []
    root = Path(out)
    for m in chosen.values():
        try:
            found = subspaces(m)
        except ExportError as err:  # a kind without a subspace (a future basis): listed, not fatal
            skipped.append({"from": m["path"], "why": str(err)})
            continue
        for variable, basis in found.items():
            task = m.get("model") or m["hypothesis"]
            model = m.get("network_class") or m["network"]
            if len(tasks[(task, model, variable)]) > 1:  # two hypotheses align one variable: keep both
                task = f"{task}-{m['hypothesis']}"
            folder = root / f"{task}_{model}_{variable}"
            unit = unit_name(m["site_fields"])
            paths = write_unit(folder, unit, basis)
            rows.append({"folder": folder.name, "unit": unit, "n_features": int(basis.shape[1]),
                         "hidden": int(basis.shape[0]), "hypothesis": m["hypothesis"], "variable": variable,
                         "kind": m["kind"], "seed": int(m["seed"]), "site": m["site"], "from": m["path"],
                         "files": [p.name for p in paths]})
    if not rows:
        raise ExportError("nothing to export: " + "; ".join(s["why"] for s in skipped))
    root.mkdir(parents=True, exist_ok=True)
    (root / "abstract-export.json").write_text(json.dumps({"format": "mib-causal-variable/1", "units": rows,
                                                           "skipped": skipped}, indent=1))
    return rows


# ------------------------------------------------------------------ command line
def cmd_export(args: Any) -> int:
    """``abstract export mib SAVED OUT [--results FILE]``: exit 0, or 2 with a message."""
    import sys
    docs: list[dict[str, Any]] = []
    if args.results:
        try:
            obj = json.loads(Path(args.results).read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            print(f"error: cannot read results {args.results}: {err}", file=sys.stderr)
            return 2
        docs = obj.get("results", []) if isinstance(obj, dict) and "results" in obj else [obj]
    try:
        rows = export_mib(args.saved, args.out, docs)
    except (ExportError, ValueError, KeyError, RuntimeError) as err:
        print(f"error: abstract export mib: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(rows)} MIB unit(s) under {args.out} (manifest {Path(args.out) / 'abstract-export.json'})")
    return 0


def before_run(args: Any) -> Optional[str]:
    """``verify --export-mib DIR``: the interventions must be saved (or loaded) to be exported;
    without ``--save-interventions`` they go to a temporary folder, returned for clean-up."""
    if not getattr(args, "export_mib", None) or args.save_interventions or args.load_interventions:
        return None
    import tempfile
    args.save_interventions = tempfile.mkdtemp(prefix="abstract-interventions-")
    return str(args.save_interventions)


def after_run(args: Any, docs: list[dict[str, Any]], temporary: Optional[str]) -> bool:
    """Export what the run saved (or loaded) to ``--export-mib DIR``; False when it failed."""
    import shutil
    import sys
    if not getattr(args, "export_mib", None):
        return True
    try:
        rows = export_mib(args.save_interventions or args.load_interventions, args.export_mib, docs)
    except (ExportError, ValueError, KeyError, RuntimeError) as err:
        print(f"error: --export-mib {args.export_mib}: {err}", file=sys.stderr)
        return False
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
            args.save_interventions = None
    print(f"wrote {len(rows)} MIB unit(s) under {args.export_mib}", file=sys.stderr)
    return True
