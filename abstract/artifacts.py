"""Trained interventions as portable files: ``--save-interventions DIR`` / ``--load-interventions DIR``.

Why: a trained rotation is the finding; sharing it (or re-measuring it on new pairs, in a
notebook, after a code change) should not mean training again. Every intervention a run
trains -- each grid cell, each seed at the reported site, each joint group's shared basis,
the ``random_network`` control's -- is written as one safetensors file (its ``state_dict``)
whose metadata says what it is and what it was trained against:

``DIR/<hypothesis>/<unit>@<site>-seed<k>.safetensors`` with metadata ``format``
(``abstract.intervention/1``), ``spec_sha256``, ``spec_path``, ``hypothesis``, ``unit`` (a
variable, a joint group ``a,b``, or ``random_network:<unit>``), ``variables``, ``site``
(its label) and ``site_fields``, ``model`` (the causal model), ``network_class`` (the
module's class, e.g. ``GPT2LMHeadModel``), ``seed`` (the training seed), ``run_seed`` (``--seed``:
the pairs drawn), ``kind`` and ``args`` (the intervention's class, planned kind, dim,
neurons, site width), ``network`` and ``network_fingerprint``
(:attr:`abstract.engine.networks.LoadedNetwork.fingerprint`), and ``losses`` (the training
curve, so a re-measured run reports the same diagnostics).

Loading re-measures without training: where a run would train, it builds the same module
and loads the file instead. Every file of the hypothesis is checked before anything runs:
another spec text, another network, another ``--seed`` or an unreadable file is refused with
an :class:`ArtifactError` (a located spec error: exit 2); a tensor of the wrong shape is
refused when its module is built.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .language import ast
from .language.errors import SpecError

FORMAT = "abstract.intervention/1"
SUFFIX = ".safetensors"


class ArtifactError(SpecError):
    """A saved intervention that cannot be used for this run (located at the hypothesis line)."""


def _slug(text: str) -> str:
    """A file-name-safe spelling of a unit or site label (``L1.resid_post@last`` stays readable)."""
    return re.sub(r"[^A-Za-z0-9_.,@:+-]", "_", text).replace(":", "+")


def file_name(unit: str, site_label: str, seed: int) -> str:
    return f"{_slug(unit)}@{_slug(site_label)}-seed{seed}{SUFFIX}"


class InterventionStore:
    """Where one hypothesis run saves (``mode="save"``) or loads (``mode="load"``) its
    trained interventions; the engine calls :meth:`fitted` wherever it would train."""

    def __init__(self, directory: str | Path, mode: str, *, spec_sha256: str, spec_path: str, hypothesis: str,
                 network: str, network_fingerprint: str, run_seed: int, pos: Optional[ast.Pos] = None,
                 model: str = "", network_class: str = ""):
        if mode not in ("save", "load"):
            raise ValueError(f"mode must be 'save' or 'load', not {mode!r}")
        self.root = Path(directory)
        self.mode = mode
        self.folder = self.root / _slug(hypothesis)
        self.expected = {"spec_sha256": spec_sha256, "hypothesis": hypothesis,
                         "network_fingerprint": network_fingerprint, "run_seed": str(run_seed)}
        self.common = {"format": FORMAT, "spec_path": spec_path, "network": network, "model": model,
                       "network_class": network_class, **self.expected}
        self.pos = pos
        self.used: list[Path] = []
        if mode == "load":
            self._check_folder()
        else:  # the folder holds this run's interventions only: an older run's would be refused later
            for old in self.folder.glob(f"*{SUFFIX}") if self.folder.is_dir() else []:
                old.unlink()

    @property
    def loading(self) -> bool:
        return self.mode == "load"

    def _error(self, message: str, hint: Optional[str] = None) -> ArtifactError:
        return ArtifactError(f"--load-interventions {self.root}: {message}", self.pos, hint=hint)

    def _check_folder(self) -> None:
        """Refuse, before any work, a folder whose files were saved for another spec, network or seed."""
        files = sorted(self.folder.glob(f"*{SUFFIX}")) if self.folder.is_dir() else []
        if not files:
            raise self._error(f"no saved interventions for hypothesis {self.expected['hypothesis']} "
                              f"(looked in {self.folder})",
                              hint="write them first with --save-interventions DIR")
        what = {"spec_sha256": "spec text (sha256)", "network_fingerprint": "network (fingerprint)",
                "hypothesis": "hypothesis", "run_seed": "--seed"}
        for f in files:
            meta = read_metadata(f, self._error)
            for key, name in what.items():
                if meta.get(key) != self.expected[key]:
                    saved, here = meta.get(key), self.expected[key]
                    raise self._error(
                        f"{f.name} was saved for another {name}: saved {saved!r}, this run has {here!r}",
                        hint="load interventions only into the spec, network and --seed they were trained with")

    def fitted(self, unit: str, variables: Sequence[str], site: Any, seed: int, module: Any,
               train: Callable[[], list[float]], extra: Optional[dict[str, Any]] = None) -> list[float]:
        """The training losses of ``module`` at (unit, site, seed): saved ones after loading its
        weights (load mode), or ``train()``'s after writing its weights (save mode)."""
        path = self.folder / file_name(unit, site.label, seed)
        if self.loading:
            return self.load_into(path, module, unit, site, seed)
        losses = train()
        self.save(path, module, unit, variables, site, seed, losses, extra)
        return losses

    def save(self, path: Path, module: Any, unit: str, variables: Sequence[str], site: Any, seed: int,
             losses: list[float], extra: Optional[dict[str, Any]] = None) -> None:
        from safetensors.torch import save_file
        import dataclasses
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in module.state_dict().items()}
        meta = {**self.common, "unit": unit, "variables": json.dumps(list(variables)), "site": site.label,
                "site_fields": json.dumps(dataclasses.asdict(site)), "seed": str(seed),
                "kind": type(module).__name__, "args": json.dumps(extra or {}, sort_keys=True),
                "losses": json.dumps([float(x) for x in losses])}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(path)
        self.used.append(path)

    def load_into(self, path: Path, module: Any, unit: str, site: Any, seed: int) -> list[float]:
        """Load ``path`` into ``module`` (strict: same keys, same shapes) and return its losses."""
        from safetensors.torch import load_file
        import torch
        if not path.is_file():
            have = sorted(p.name for p in self.folder.glob(f"*{SUFFIX}"))
            raise self._error(f"no saved intervention for {unit} at {site.label}, seed {seed} "
                              f"(expected {path.name})", hint="saved: " + ", ".join(have[:8])
                              + (" ..." if len(have) > 8 else ""))
        meta = read_metadata(path, self._error)
        try:
            tensors = load_file(str(path))
        except Exception as err:  # safetensors raises its own error types
            raise self._error(f"{path.name} is not a readable safetensors file: {err}") from None
        own = module.state_dict()
        if set(tensors) != set(own):
            raise self._error(f"{path.name} holds {sorted(tensors)} but a {type(module).__name__} at "
                              f"{site.label} has {sorted(own)}",
                              hint=f"it was saved for a {meta.get('kind')} intervention")
        for key, value in own.items():
            if tuple(tensors[key].shape) != tuple(value.shape):
                raise self._error(f"{path.name}: tensor {key} has shape {list(tensors[key].shape)}, "
                                  f"a {type(module).__name__} at {site.label} needs {list(value.shape)}",
                                  hint="the site's width or the intervention's dim differs from the one saved")
        with torch.no_grad():
            module.load_state_dict({k: v.to(own[k].device, own[k].dtype) for k, v in tensors.items()})
        module.eval()
        self.used.append(path)
        return [float(x) for x in json.loads(meta.get("losses") or "[]")]


def read_metadata(path: Path, error: Callable[..., Exception]) -> dict[str, str]:
    """The metadata of a saved intervention; ``error(message)`` for a file that is not one."""
    from safetensors import safe_open
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = dict(f.metadata() or {})
    except Exception as err:  # safetensors raises its own error types
        raise error(f"{path.name} is not a readable safetensors file: {err}") from None
    if meta.get("format") != FORMAT:
        raise error(f"{path.name} is not a saved abstract intervention (format {meta.get('format')!r}, "
                    f"expected {FORMAT!r})")
    return meta


def saved_interventions(directory: str | Path) -> list[dict[str, Any]]:
    """Every saved intervention under ``directory``: its metadata (JSON fields decoded), its
    path and its tensors' shapes (exporters and tests read this)."""
    from safetensors import safe_open
    out = []
    for path in sorted(Path(directory).glob(f"*/*{SUFFIX}")):
        meta: dict[str, Any] = read_metadata(path, ValueError)
        for key in ("variables", "site_fields", "args", "losses"):
            meta[key] = json.loads(meta.get(key) or "null")
        with safe_open(str(path), framework="pt") as f:
            meta["shapes"] = {k: list(f.get_slice(k).get_shape()) for k in f.keys()}
        meta["path"] = str(path)
        out.append(meta)
    return out


def fit_with(store: Optional[InterventionStore], unit: str, variables: Sequence[str], site: Any, seed: int,
             module: Any, train: Callable[[], list[float]], plan: Any = None, hidden: Optional[int] = None,
             blocks: Optional[dict[str, tuple[int, int]]] = None) -> list[float]:
    """``train()`` (no store), or through ``store``: the one call the engine makes where it trains.
    ``plan``: the variable's InterventionPlan, recorded as the file's ``args``; ``blocks``: a
    joint group's columns per variable."""
    if store is None:
        return train()
    extra: dict[str, Any] = {"hidden": hidden}
    if blocks is not None:
        extra["blocks"] = {k: list(v) for k, v in blocks.items()}
    if plan is not None:
        extra.update(planned=plan.kind, dim=plan.dim, neurons=list(plan.neurons or ()))
    return store.fitted(unit, variables, site, seed, module, train, extra)
