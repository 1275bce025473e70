"""`abstract verify`: spec -> symbolic checks -> alignments -> judged expectations -> one results document.

The document (docs/results-schema.md) is what JSON, JUnit, the console summary, the HTML
report and the pytest plugin all read.
"""
from __future__ import annotations

import datetime as _dt
import functools
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable

from .. import __version__
from ..device import describe_device, pick_device
from ..language import Spec, load_spec
from ..language.errors import SpecError
from .cache import ResultsCache, cache_key
from .diagnostics import unconverged
from .expectations import judge_expectations, referenced_hypotheses
from .fingerprint import builder_file, network_source_fingerprint, package_fingerprint, record_new_modules
from .shape import hypothesis_result_problems

__all__ = ["verify_spec", "exit_code", "passed", "error_document", "error_entry", "versions",
           "package_fingerprint", "network_source_fingerprint"]


def versions() -> dict[str, str]:
    import torch
    import transformers
    return {"abstract": __version__, "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version()}


def model_summaries(spec: Spec) -> dict[str, Any]:
    """Inputs, outputs and the causal graph of every model, for reports."""
    out = {}
    for name, m in spec.models.items():
        nodes = [{"id": v.name, "kind": v.kind, "domain": str(v.domain), "mechanism": m.mechanism_text(v.name)}
                 for v in m.variables.values()]
        out[name] = {"inputs": list(m.inputs), "outputs": list(m.outputs), "intermediates": list(m.intermediates),
                     "graph": {"nodes": nodes, "edges": [list(e) for e in m.graph.edges]}}
    return out


def error_entry(err: BaseException, hypothesis: str | None = None, location: str | None = None,
                source: str | None = None) -> dict[str, Any]:
    """An "errors" item: a spec error keeps its rendering (file:line:col, the line, a caret)."""
    if isinstance(err, SpecError):
        if source is not None:
            err.with_source(source)
        entry = {"hypothesis": hypothesis, "location": err.location() or location, "message": err.render()}
        cause = err.__cause__
        if cause is not None and not isinstance(cause, SpecError):  # the user's code crashed: keep where
            entry["traceback"] = _traceback_tail(cause)
        return entry
    prefix = f"hypothesis {hypothesis}: " if hypothesis else ""
    return {"hypothesis": hypothesis, "location": location, "message": f"{prefix}{type(err).__name__}: {err}",
            "traceback": _traceback_tail(err)}  # for a bug report; not shown


def _traceback_tail(err: BaseException) -> str:
    import traceback
    return "".join(traceback.format_exception(err)[-6:])


def error_document(path: str | Path, err: BaseException) -> dict[str, Any]:
    """The results document of a spec that could not be read at all, so that JSON, JUnit and
    the report still say what went wrong (exit code 2)."""
    return {"schema": "abstract.results/1", "spec": {"path": str(path), "sha256": None, "text": None},
            "run": {**versions(), "cached": False, "seconds": 0.0}, "checks": [], "models": {},
            "hypotheses": [], "errors": [error_entry(err)], "warnings": [], "passed": False}


def verify_spec(path: str | Path, *, hypotheses: list[str] | None = None, device: str | None = None,
                cache: ResultsCache | None = None, progress: bool = True, seed: int = 0,
                rlimit: int | None = None, align: bool = True,
                on_event: Callable[[str], None] | None = None, save_interventions: str | None = None,
                load_interventions: str | None = None, executor: Any = None,
                cell_cache: Any = None) -> dict[str, Any]:
    """Run everything a spec states and return the results document.

    Raises SpecError when the spec itself cannot be read (syntax, names, types) or names an
    unknown hypothesis. Failures inside one hypothesis (a network that cannot be loaded, a
    site out of range, a crash) are recorded under "errors" and the other hypotheses go on.

    The results cache is keyed by the spec text, the hypothesis, the network's declaration,
    builder and the local modules it imports *and* the fingerprint of the weights actually
    loaded, the seed, the device (with its model name) and the versions: the network is loaded
    (not trained) to check. A malformed entry is recomputed; an unwritable cache adds a line
    to the document's "warnings" and the result is kept. Anything a builder or an alignment
    raises (sys.exit included; not KeyboardInterrupt) is an error of that hypothesis only.

    ``save_interventions`` / ``load_interventions``: a folder each trained intervention is
    written to, or loaded from instead of training (``abstract.artifacts``); either one
    bypasses the results cache (a cached result trains nothing, so it would save nothing).

    ``executor``/``cell_cache``: where the sweep cells train and where finished ones are kept
    (``abstract.executors``); they do not change results, so they are not in the cache key."""
    from ..solver import DEFAULT_RLIMIT, check_spec

    started = time.time()
    spec = load_spec(path)
    say = on_event or (lambda msg: None)
    say(f"checking {len(spec.models)} model(s) with z3")
    checks = check_spec(spec, rlimit=rlimit or DEFAULT_RLIMIT)
    doc: dict[str, Any] = {
        "schema": "abstract.results/1",
        "spec": {"path": str(path), "sha256": spec.sha256, "text": spec.text},
        "run": {**versions(), "device": describe_device(device), "seed": seed,
                "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "cached": False},
        "checks": [c.to_json() for c in checks],
        "models": model_summaries(spec),
        "hypotheses": [],
        "errors": [],
        "warnings": [],
    }
    if hypotheses:
        missing = set(hypotheses) - {h.name for h in spec.hypotheses}
        if missing:
            raise SpecError(f"no hypothesis named {', '.join(sorted(missing))} in {path}",
                            hint="known: " + ", ".join(h.name for h in spec.hypotheses))
    selected = [h for h in spec.hypotheses if h.name in with_references(spec, hypotheses)]
    cache = cache if cache is not None else ResultsCache(enabled=False)
    if save_interventions or load_interventions:
        cache = ResultsCache(enabled=False)
    networks: dict[str, Any] = {}  # name -> LoadedNetwork, or the error loading it raised
    all_cached = bool(selected)
    warnings: list[str] = doc["warnings"]
    for h in selected if align else []:
        try:
            if h.network not in networks:
                networks[h.network] = _load(spec, h.network, device)
            net = networks[h.network]
            if isinstance(net, BaseException):
                raise net
            key = cache_key(spec=spec.sha256, hypothesis=h.name, seed=seed, device=doc["run"]["device"],
                            network=[network_source_fingerprint(spec, h.network), net.fingerprint],
                            versions=versions(), code=package_fingerprint())
            result = cache.get(key, valid=functools.partial(hypothesis_result_problems, name=h.name))
            if cache.last_miss:
                say(cache.last_miss)
            if result is None:
                all_cached = False
                say(f"aligning hypothesis {h.name}")
                result = _as_dict(_align(spec, h.name, device=device, progress=progress, seed=seed, network=net,
                                         save_interventions=save_interventions,
                                         load_interventions=load_interventions,
                                         **({"executor": executor, "cell_cache": cell_cache} if executor or cell_cache
                                            else {})))
                problem = cache.put(key, result)
                if problem:
                    warnings.append(f"hypothesis {h.name}: {problem}")
                    say(warnings[-1])
            else:
                say(f"hypothesis {h.name}: unchanged, using cached result")
                result = {**result, "location": str(h.pos)}  # this run's path, not the one that filled the cache
        except KeyboardInterrupt:
            raise
        except BaseException as err:  # anything, sys.exit included: one hypothesis's failure must not hide the others
            all_cached = False
            doc["errors"].append(error_entry(err, h.name, str(h.pos), spec.text))
            continue
        result = dict(result)
        warnings += [f"hypothesis {h.name}: {problem}" for problem in unconverged(result)]
        doc["hypotheses"].append(result)
    # judged once every hypothesis has run: an expectation may compare with another's figure
    results: dict[str, Any] = {r["name"]: r for r in doc["hypotheses"]}
    for failed in doc["errors"]:
        if failed.get("hypothesis"):
            results.setdefault(failed["hypothesis"], "it errored")
    decls = {h.name: h for h in spec.hypotheses}
    for result in doc["hypotheses"]:
        result["expectations"] = judge_expectations(decls[result["name"]], result, others=results,
                                                    plans=spec.plans)
    doc["run"]["cached"] = all_cached and align
    doc["run"]["seconds"] = round(time.time() - started, 2)
    doc["passed"] = passed(doc)
    return doc


def with_references(spec: Spec, names: list[str] | None) -> set[str]:
    """The hypotheses named (every one when none is) and, transitively, those whose figures
    their expectations compare with (`iia(other.v)`): those run too, so the comparison can be judged."""
    decls = {h.name: h for h in spec.hypotheses}
    todo = list(names) if names else list(decls)
    out: set[str] = set()
    while todo:
        name = todo.pop()
        if name in out or name not in decls:
            continue
        out.add(name)
        todo += referenced_hypotheses(decls[name])
    return out


def _forget_failed_import(builder: Any, before: set[str]) -> None:
    """Drop a builder module whose import was cut short (sys.exit at import time escapes the
    loader's clean-up), so that loading it again re-runs it instead of finding it half-made."""
    if builder is None:
        return
    for name in set(sys.modules) - before:
        file = getattr(sys.modules.get(name), "__file__", None)
        if file and Path(file).resolve() == builder:
            del sys.modules[name]


def _as_dict(result: Any) -> dict[str, Any]:
    """The engine's result as a results-document dict (typed results serialise themselves)."""
    if isinstance(result, dict):
        return result
    for method in ("to_json", "to_dict"):
        if callable(getattr(result, method, None)):
            return getattr(result, method)()
    raise TypeError(f"the alignment engine returned {type(result).__name__}, expected a results dict")


def _load(spec: Spec, network: str, device: str | None) -> Any:
    """The loaded network, or the error loading it raised (kept, so each hypothesis on the
    same network reports it without loading again).

    The builder is the user's Python: whatever it raises, sys.exit included, becomes a
    SpecError located at the `network` line; the local modules it imports are recorded for
    the cache key."""
    from ..engine.networks import load_network
    decl = spec.networks[network]
    before = set(sys.modules)
    try:
        return load_network(decl, spec.path, pick_device(device))
    except SpecError as err:
        return err
    except KeyboardInterrupt:
        raise
    except BaseException as err:
        _forget_failed_import(builder_file(spec, network), before)
        what = (f"called sys.exit({err.code!r})" if isinstance(err, SystemExit)
                else f"raised {type(err).__name__}: {err}")
        wrapped = SpecError(f"building network {network} failed: its builder {what}", decl.pos)
        wrapped.__cause__ = err
        return wrapped
    finally:
        record_new_modules(builder_file(spec, network), before)


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
