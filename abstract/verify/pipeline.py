"""`abstract verify`: spec -> symbolic checks -> alignments -> judged expectations -> one results document.

The document (docs/results-schema.md) is what JSON, JUnit, the console summary, the HTML
report and the pytest plugin all read.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import time
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..language import Spec, load_spec
from ..language.errors import SpecError
from .cache import ResultsCache, cache_key
from .expectations import judge_expectations


def versions() -> dict[str, str]:
    import torch
    import transformers
    return {"abstract": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def describe_device(device: str | None) -> str:
    import torch
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and torch.cuda.is_available():
        index = torch.device(device).index or 0
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device


def model_summaries(spec: Spec) -> dict[str, Any]:
    """Inputs, outputs and the causal graph of every model, for reports."""
    out = {}
    for name, m in spec.models.items():
        nodes = [{"id": v.name, "kind": v.kind, "domain": str(v.domain), "mechanism": m.mechanism_text(v.name)}
                 for v in m.variables.values()]
        out[name] = {"inputs": list(m.inputs), "outputs": list(m.outputs), "intermediates": list(m.intermediates),
                     "graph": {"nodes": nodes, "edges": [list(e) for e in m.graph.edges]}}
    return out


def network_source_fingerprint(spec: Spec, network_name: str) -> str:
    """A cheap stand-in for the network's identity, known before anything is loaded:
    the builder file's content for torch networks, config and weight-file stamps for local HF folders."""
    decl = spec.networks[network_name]
    h = hashlib.sha256(repr((decl.kind, decl.source, decl.options)).encode())
    if decl.kind == "torch":
        file = decl.source.split(":")[0]
        for base in (Path(spec.path).parent, Path.cwd()):
            if (base / file).is_file():
                h.update((base / file).read_bytes())
                break
    else:
        folder = Path(decl.source)
        if folder.is_dir():
            for f in sorted(folder.iterdir()):
                st = f.stat()
                h.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return h.hexdigest()[:16]


def verify_spec(path: str | Path, *, hypotheses: list[str] | None = None, device: str | None = None,
                cache: ResultsCache | None = None, progress: bool = True, seed: int = 0,
                rlimit: int | None = None, align: bool = True,
                on_event: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run everything a spec states and return the results document.

    Raises SpecError for problems in the spec itself; failures inside one hypothesis (a
    network that cannot be loaded, say) are recorded under "errors" and the rest goes on."""
    from ..solver import check_spec

    started = time.time()
    spec = load_spec(path)
    say = on_event or (lambda msg: None)
    say(f"checking {len(spec.models)} model(s) with z3")
    checks = check_spec(spec, **({"rlimit": rlimit} if rlimit else {}))
    doc: dict[str, Any] = {
        "schema": "abstract.results/1",
        "spec": {"path": str(path), "sha256": spec.sha256, "text": spec.text},
        "run": {**versions(), "device": describe_device(device), "seed": seed,
                "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "cached": False},
        "checks": [c.to_json() for c in checks],
        "models": model_summaries(spec),
        "hypotheses": [],
        "errors": [],
    }
    selected = [h for h in spec.hypotheses if not hypotheses or h.name in hypotheses]
    if hypotheses:
        missing = set(hypotheses) - {h.name for h in spec.hypotheses}
        if missing:
            raise SpecError(f"no hypothesis named {', '.join(sorted(missing))} in {path}",
                            hint="known: " + ", ".join(h.name for h in spec.hypotheses))
    cache = cache if cache is not None else ResultsCache(enabled=False)
    all_cached = bool(selected)
    for h in selected if align else []:
        key = cache_key(spec=spec.sha256, hypothesis=h.name, network=network_source_fingerprint(spec, h.network),
                        seed=seed, device=describe_device(device).split(" ")[0], versions=versions())
        result = cache.get(key)
        if result is None:
            all_cached = False
            say(f"aligning hypothesis {h.name}")
            try:
                result = _align(spec, h.name, device=device, progress=progress, seed=seed)
            except SpecError:
                raise
            except Exception as err:  # a runtime failure of one hypothesis must not hide the others
                doc["errors"].append({"hypothesis": h.name, "location": str(h.pos),
                                      "message": f"hypothesis {h.name}: {type(err).__name__}: {err}"})
                continue
            cache.put(key, result)
        else:
            say(f"hypothesis {h.name}: unchanged, using cached result")
        result = dict(result)
        result["expectations"] = judge_expectations(h, result)
        doc["hypotheses"].append(result)
    doc["run"]["cached"] = all_cached and align
    doc["run"]["seconds"] = round(time.time() - started, 2)
    doc["passed"] = passed(doc)
    return doc


def _align(spec: Spec, name: str, **kw) -> dict[str, Any]:
    from ..engine.align import align_hypothesis
    return align_hypothesis(spec, name, **kw)


def passed(doc: dict[str, Any]) -> bool:
    """All checks proved and all expectations met (errors are judged separately: exit 2)."""
    return (all(c["verdict"] == "proved" for c in doc["checks"])
            and all(e["passed"] for h in doc["hypotheses"] for e in h.get("expectations", [])))


def exit_code(doc: dict[str, Any]) -> int:
    if doc.get("errors"):
        return 2
    return 0 if passed(doc) else 1
