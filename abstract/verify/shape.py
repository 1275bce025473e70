"""The shape of a results document (docs/results-schema.md) as data, and a checker for it.

Readers (the HTML report, JUnit, the console summary) tolerate every optional field being
absent or null; what they cannot work with is a field of the wrong type. `document_problems`
says, with a path such as ``hypotheses[0].variables.left.iia.n``, what is wrong with a
document, so that `abstract report` refuses it cleanly and the results cache recomputes an
entry instead of serving it (`hypothesis_result_problems`). Unknown extra fields are allowed:
later versions of ``abstract.results/1`` may add fields.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeGuard, Union


@dataclass(frozen=True)
class Obj:
    """A JSON object with known fields: name -> (shape, required)."""
    fields: dict[str, tuple["Shape", bool]]


@dataclass(frozen=True)
class ListOf:
    item: "Shape"


@dataclass(frozen=True)
class MapOf:
    """A JSON object keyed by user names (variables, models ...)."""
    value: "Shape"


@dataclass(frozen=True)
class OneOf:
    options: tuple["Shape", ...]
    name: str = ""


@dataclass(frozen=True)
class Scalar:
    """A JSON scalar: ``str``, ``int`` (no bools), ``num`` (int or float), ``bool``, ``null``,
    ``any`` (any scalar), ``json`` (anything)."""
    kind: str
    enum: tuple[str, ...] = field(default=())


Shape = Union[Obj, ListOf, MapOf, OneOf, Scalar]

STR, INT, NUM, BOOL, NULL = Scalar("str"), Scalar("int"), Scalar("num"), Scalar("bool"), Scalar("null")
ANY, JSON = Scalar("any"), Scalar("json")


def opt(shape: Shape) -> tuple[Shape, bool]:
    return shape, False


def req(shape: Shape) -> tuple[Shape, bool]:
    return shape, True


def nullable(shape: Shape) -> Shape:
    return OneOf((shape, NULL))


POSITION = OneOf((STR, INT, NULL))
SITE = Obj({"layer": opt(nullable(INT)), "component": opt(nullable(STR)), "position": opt(POSITION),
            "trivial": opt(nullable(BOOL))})
COUNTS = Obj({"value": opt(nullable(NUM)), "correct": opt(nullable(INT)), "n": opt(nullable(INT))})
# What leaving the site unchanged scores on the same pairs (beside IIA, cause, isolate, joint).
DO_NOTHING = opt(nullable(COUNTS))
MEASURED = Obj({**COUNTS.fields, "do_nothing": DO_NOTHING})
# A reported seed's training (abstract.engine.diagnostics): loss curve (downsampled), dev loss, train IIA.
DIAGNOSTICS = Obj({"loss": opt(ListOf(nullable(NUM))), "steps": opt(nullable(INT)), "dev_loss": opt(nullable(NUM)),
                   "train_iia": opt(nullable(NUM)), "converged": opt(nullable(BOOL)), "why": opt(nullable(STR))})
SEED = Obj({"seed": opt(nullable(INT)), "iia": opt(nullable(NUM)), "correct": opt(nullable(INT)),
            "n": opt(nullable(INT)), "dev_iia": opt(nullable(NUM)), "diagnostics": opt(nullable(DIAGNOSTICS))})
# A test pair the judged seed gets wrong, as the causal model's values.
FAILING_PAIR = Obj({"base": opt(MapOf(JSON)), "source": opt(MapOf(JSON)), "expected": opt(MapOf(JSON)),
                    "predicted": opt(MapOf(JSON)), "changed": opt(nullable(BOOL))})
IIA = Obj({"mean": opt(nullable(NUM)), "max": opt(nullable(NUM)), "best_seed": opt(nullable(INT)),
           "correct": opt(nullable(INT)), "n": opt(nullable(INT)), "do_nothing": DO_NOTHING})
GRID = Obj({"layers": opt(ListOf(nullable(INT))), "positions": opt(ListOf(POSITION)),
            "position_tokens": opt(ListOf(nullable(STR))), "component": opt(nullable(STR)),
            "training": opt(STR),
            "iia_mean": opt(nullable(ListOf(ListOf(nullable(NUM))))),
            "iia_max": opt(nullable(ListOf(ListOf(nullable(NUM))))),
            "trivial": opt(nullable(ListOf(ListOf(nullable(BOOL)))))})
# The grid's best non-trivial site, when it beats the site the align line named beyond its interval.
BETTER_SITE = Obj({"layer": opt(nullable(INT)), "component": opt(nullable(STR)), "position": opt(POSITION),
                   "iia": opt(nullable(NUM)), "ci_low": opt(nullable(NUM))})
# Effect sizes (abstract.engine.effects): means with t intervals; the alignment's carry do_nothing.
MEAN = Obj({"value": opt(nullable(NUM)), "ci_low": opt(nullable(NUM)), "ci_high": opt(nullable(NUM)),
            "n": opt(nullable(INT))})
EFFECT_MEAN = Obj({**MEAN.fields, "do_nothing": opt(nullable(MEAN))})
EFFECTS = Obj({"scored": opt(nullable(STR)), "logit_diff": opt(nullable(EFFECT_MEAN)),
               "prob": opt(nullable(EFFECT_MEAN)), "kl": opt(nullable(EFFECT_MEAN))})
VARIABLE = Obj({
    "intervention": opt(Obj({"kind": opt(nullable(STR)), "dim": opt(nullable(NUM))})),
    "grid": opt(nullable(GRID)),
    "site": opt(nullable(SITE)),
    "seeds": opt(ListOf(SEED)),
    "iia": opt(IIA),
    "controls": opt(MapOf(nullable(Obj({"iia": opt(nullable(NUM)), "n": opt(nullable(INT)),
                                         "correct": opt(nullable(INT)), "cause": opt(nullable(COUNTS)),
                                         "effects": opt(nullable(EFFECTS))})))),
    "joint": opt(nullable(Obj({"group": opt(ListOf(STR)), "block": opt(ListOf(nullable(INT))),
                               "training": opt(STR)}))),
    "better_site": opt(nullable(BETTER_SITE)),
    "failing_pairs": opt(nullable(ListOf(FAILING_PAIR))),
    "effects": opt(nullable(EFFECTS)),
})
JOINT = Obj({**MEASURED.fields, "mean": opt(nullable(NUM)), "best_seed": opt(nullable(INT)),
             "selected_by": opt(STR), "seeds": opt(ListOf(SEED)), "site": opt(nullable(SITE))})
METRIC = OneOf((NUM, NULL, MEASURED), "a number or {value, correct, n}")
SPLITS = Obj({"train": opt(INT), "dev": opt(INT), "test": opt(INT), "informativeness": opt(nullable(NUM)),
              "held_out": opt(BOOL)})
# split -> [found, wanted] for every split that came back short
SHORTFALLS = opt(nullable(MapOf(ListOf(INT))))
PREFLIGHT = Obj({"task_accuracy": opt(nullable(NUM)), "n": opt(nullable(INT)), "sites_checked": opt(ListOf(STR))})
# The right-hand figure of a relative expectation (`iia(x) >= control(random_rotation) + 0.2`).
AGAINST = Obj({**COUNTS.fields, "ci_low": opt(nullable(NUM)), "ci_high": opt(nullable(NUM)),
               "text": opt(STR), "kind": opt(STR), "margin": opt(NUM), "difference": opt(nullable(NUM)),
               "control": opt(STR), "metric": opt(STR), "args": opt(ListOf(STR)), "hypothesis": opt(STR),
               "same_pairs": opt(BOOL)})
EXPECTATION = Obj({
    "text": req(STR), "passed": req(BOOL),
    "metric": opt(STR), "args": opt(ListOf(STR)), "op": opt(STR), "threshold": opt(NUM),
    "value": opt(nullable(NUM)), "correct": opt(nullable(INT)), "n": opt(nullable(INT)),
    "ci_low": opt(nullable(NUM)), "ci_high": opt(nullable(NUM)), "confidence": opt(nullable(NUM)),
    "reason": opt(nullable(STR)), "location": opt(nullable(STR)), "held_out": opt(BOOL),
    "do_nothing": opt(nullable(Obj({**COUNTS.fields, "ci_low": opt(nullable(NUM)), "ci_high": opt(nullable(NUM))}))),
    "against": opt(nullable(AGAINST)),
})
# A `hold` line (path patching): components kept at their base values at these layers/positions.
HOLD = Obj({"components": opt(ListOf(STR)), "layers": opt(ListOf(INT)), "positions": opt(nullable(ListOf(POSITION))),
            "text": opt(STR), "location": opt(nullable(STR))})
HYPOTHESIS_FIELDS: dict[str, tuple[Shape, bool]] = {
    "name": req(STR),
    "model": opt(nullable(STR)), "network": opt(nullable(STR)), "network_fingerprint": opt(nullable(STR)),
    "location": opt(nullable(STR)), "device": opt(nullable(STR)),
    "train": opt(Obj({"samples": opt(INT), "epochs": opt(INT), "batch": opt(INT), "lr": opt(NUM),
                      "seeds": opt(ListOf(INT)), "joint": opt(BOOL)})),
    "dataset": opt(nullable(Obj({**SPLITS.fields, "joint": opt(MapOf(SPLITS)), "shortfalls": SHORTFALLS}))),
    "preflight": opt(nullable(PREFLIGHT)),
    "holds": opt(nullable(ListOf(HOLD))),
    "variables": opt(MapOf(VARIABLE)),
    "multi": opt(nullable(Obj({"cause": opt(MapOf(METRIC)), "isolate": opt(MapOf(METRIC)),
                               "joint": opt(MapOf(JOINT))}))),
    "timing": opt(MapOf(NUM)),
    "seconds": opt(nullable(NUM)),
    # sweep cells that failed twice (abstract.executors): left out of the grid and the seeds
    "cell_errors": opt(ListOf(Obj({"variable": opt(STR), "sites": opt(ListOf(STR)), "seed": opt(INT),
                                   "error": opt(STR), "attempts": opt(INT)}))),
}
HYPOTHESIS = Obj({**HYPOTHESIS_FIELDS, "expectations": opt(ListOf(EXPECTATION))})
# What the engine returns for one hypothesis (before judging): what the results cache stores.
HYPOTHESIS_RESULT = Obj({**HYPOTHESIS_FIELDS, "variables": req(MapOf(VARIABLE))})
CHECK = Obj({"model": req(STR), "name": req(STR), "kind": req(STR),
             "verdict": req(Scalar("str", ("proved", "counterexample", "unknown"))),
             "message": opt(nullable(STR)), "counterexample": opt(nullable(MapOf(ANY))),
             "location": opt(nullable(STR))})
MODEL = Obj({"inputs": opt(ListOf(STR)), "outputs": opt(ListOf(STR)), "intermediates": opt(ListOf(STR)),
             "graph": opt(Obj({"nodes": opt(ListOf(Obj({"id": req(STR), "kind": opt(nullable(STR)),
                                                        "domain": opt(nullable(STR)),
                                                        "mechanism": opt(nullable(STR))}))),
                               "edges": opt(ListOf(ListOf(STR)))}))})
ERROR = Obj({"message": req(STR), "location": opt(nullable(STR)), "hypothesis": opt(nullable(STR)),
             "traceback": opt(nullable(STR))})
RUN = Obj({**{k: opt(nullable(STR)) for k in ("abstract", "torch", "transformers", "python", "device", "started")},
           "seed": opt(nullable(INT)), "seconds": opt(nullable(NUM)), "cached": opt(BOOL)})
DOCUMENT = Obj({
    "schema": req(Scalar("str", ("abstract.results/1",))),
    "spec": req(Obj({"path": req(STR), "sha256": opt(nullable(STR)), "text": opt(nullable(STR))})),
    "checks": req(ListOf(CHECK)),
    "hypotheses": req(ListOf(HYPOTHESIS)),
    "passed": opt(BOOL),
    "run": opt(RUN),
    "models": opt(MapOf(MODEL)),
    "errors": opt(ListOf(ERROR)),
    "warnings": opt(ListOf(STR)),
})


def problems(value: Any, shape: Shape, path: str = "", limit: int = 20) -> list[str]:
    """What is wrong with `value` for `shape`: ``"path: expected ..., got ..."`` lines (at most `limit`)."""
    out: list[str] = []
    _check(value, shape, path or "document", out, limit)
    return out


def document_problems(doc: Any) -> list[str]:
    """Problems of one ``abstract.results/1`` document; empty when readers can render it."""
    return problems(doc, DOCUMENT)


def hypothesis_result_problems(result: Any, name: str | None = None) -> list[str]:
    """Problems of one hypothesis result as the engine returns it (a cache entry's content)."""
    out = problems(result, HYPOTHESIS_RESULT, "result")
    if not out and name is not None and result.get("name") != name:
        out.append(f"result.name: expected {name!r}, got {result.get('name')!r}")
    return out


def required_paths(shape: Shape = DOCUMENT, path: str = "") -> list[str]:
    """The required fields, as paths (``hypotheses[].expectations[].text``), for the docs."""
    out: list[str] = []
    if isinstance(shape, Obj):
        for name, (sub, required) in shape.fields.items():
            here = f"{path}.{name}" if path else name
            if required:
                out.append(here)
            out += required_paths(sub, here)
    elif isinstance(shape, ListOf):
        out += required_paths(shape.item, f"{path}[]")
    elif isinstance(shape, MapOf):
        out += required_paths(shape.value, f"{path}.*")
    elif isinstance(shape, OneOf):
        for option in shape.options:
            out += required_paths(option, path)
    return out


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _describe(shape: Shape) -> str:
    if isinstance(shape, Obj):
        return "an object"
    if isinstance(shape, (ListOf,)):
        return "a list"
    if isinstance(shape, MapOf):
        return "an object"
    if isinstance(shape, OneOf):
        return shape.name or " or ".join(_describe(o) for o in shape.options)
    if shape.enum:
        return " or ".join(repr(e) for e in shape.enum)
    return {"num": "a number", "int": "an integer", "str": "a string", "bool": "true/false",
            "null": "null", "any": "a scalar", "json": "any value"}[shape.kind]


def _is_int(value: Any) -> TypeGuard[int]:
    """An int of JSON's (a bool is not one, though Python's bool is an int)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _scalar_ok(value: Any, shape: Scalar) -> bool:
    kind = shape.kind
    if kind == "json":
        return True
    if kind == "null":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return _is_int(value)
    if kind == "num":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str) and (not shape.enum or value in shape.enum)
    return value is None or isinstance(value, (str, int, float, bool))  # any scalar


def _check(value: Any, shape: Shape, path: str, out: list[str], limit: int) -> None:
    if len(out) >= limit:
        return
    if isinstance(shape, OneOf):
        candidates = [o for o in shape.options if _kind_matches(value, o)]
        if not candidates:
            out.append(f"{path}: expected {_describe(shape)}, got {_type_name(value)}")
            return
        for option in candidates[:-1]:  # several of the same JSON kind: the first that fits
            trial: list[str] = []
            _check(value, option, path, trial, limit)
            if not trial:
                return
        _check(value, candidates[-1], path, out, limit)
        return
    if isinstance(shape, Scalar):
        if not _scalar_ok(value, shape):
            got = repr(value) if shape.enum and isinstance(value, str) else _type_name(value)
            out.append(f"{path}: expected {_describe(shape)}, got {got}")
        return
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            out.append(f"{path}: expected a list, got {_type_name(value)}")
            return
        for i, item in enumerate(value):
            _check(item, shape.item, f"{path}[{i}]", out, limit)
        return
    if not isinstance(value, dict):
        out.append(f"{path}: expected an object, got {_type_name(value)}")
        return
    if isinstance(shape, MapOf):
        for key, item in value.items():
            _check(item, shape.value, f"{path}.{key}", out, limit)
        return
    for name, (sub, required) in shape.fields.items():
        if name not in value:
            if required:
                out.append(f"{path}.{name}: missing (required)")
            continue
        _check(value[name], sub, f"{path}.{name}", out, limit)
    correct, n = value.get("correct"), value.get("n")
    if _is_int(correct) and _is_int(n) and not 0 <= correct <= n:
        out.append(f"{path}: expected 0 <= correct <= n, got correct={correct}, n={n}")


def _kind_matches(value: Any, shape: Shape) -> bool:
    """Whether `value` is of the JSON kind `shape` describes (an object, a list, that scalar)."""
    if isinstance(shape, (Obj, MapOf)):
        return isinstance(value, dict)
    if isinstance(shape, ListOf):
        return isinstance(value, list)
    if isinstance(shape, OneOf):
        return any(_kind_matches(value, o) for o in shape.options)
    return _scalar_ok(value, shape)
