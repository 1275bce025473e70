"""The Python API, for notebooks and scripts: load a spec, check it, verify it, read typed results.

    import abstract
    spec = abstract.load("spec.causal")
    spec.check()                       # z3 checks, no network
    results = spec.verify(device="cpu")  # the same run as `abstract verify`
    results["my_hypothesis"].variables["a"].iia

Everything here is a thin, typed view of the results document (docs/results-schema.md), so
what a notebook reads is exactly what `verify --json` writes, and `Results.to_json()` is that
document. In Jupyter, results, hypotheses and checks display as the HTML report's sections.
Torch is imported only when a network is verified.
"""
from __future__ import annotations

import copy
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence, Union

from .language import Spec as _CompiledSpec
from .language import load_spec
from .language.errors import SpecError

__all__ = ["load", "load_results", "Spec", "Check", "Checks", "Results", "HypothesisResult", "Expectation",
           "Variable", "Control", "SpecError"]

Json = dict[str, Any]
PathLike = Union[str, Path]


def load(path: PathLike) -> "Spec":
    """Parse and compile a spec file (no torch, no network). Raises `SpecError` on a bad spec."""
    return Spec(load_spec(path))


def load_results(path: PathLike) -> "Results":
    """Read a results document that `abstract verify --json` (or `Results.save_json`) wrote."""
    from .verify.shape import document_problems
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("schema") != "abstract.results/1":
        raise ValueError(f"{path} is not an abstract.results/1 document (one spec's `verify --json` output)")
    problems = document_problems(doc)
    if problems:
        raise ValueError(f"{path} is a malformed abstract.results/1 document: " + "; ".join(problems[:5]))
    return Results(doc)


def _style(body: str) -> str:
    """A report fragment with the report's stylesheet, scoped to it so the notebook keeps its own look."""
    from .report.style import CSS
    return f'<div class="abstract-report"><style>{_scoped(CSS)}</style>{body}</div>'


def _scoped(css: str) -> str:
    """Prefix every selector of the report's stylesheet with `.abstract-report` (`:root`, `body` and
    `main` become the wrapper itself); `@media` blocks are dropped: they concern printing a page."""
    out = []
    depth, start, i = 0, 0, 0
    while i < len(css):
        ch = css[i]
        if ch == "@" and depth == 0:  # skip the whole at-rule block
            j = css.index("{", i)
            level = 0
            while j < len(css):
                level += {"{": 1, "}": -1}.get(css[j], 0)
                j += 1
                if level == 0:
                    break
            i = start = j
            continue
        if ch == "{":
            selectors = css[start:i].strip()
            close = css.index("}", i)
            scoped = ", ".join(_scope_one(s.strip()) for s in selectors.split(",") if s.strip())
            out.append(f"{scoped} {css[i:close + 1]}")
            i = start = close + 1
            continue
        i += 1
    return "\n".join(out)


def _scope_one(selector: str) -> str:
    for root in (":root", "body", "main"):
        if selector == root:
            return ".abstract-report"
        if selector.startswith(root + " "):
            return ".abstract-report" + selector[len(root):]
    if selector == "*":
        return ".abstract-report, .abstract-report *"
    return f".abstract-report {selector}"


# ------------------------------------------------------------------ checks
@dataclass(frozen=True)
class Check:
    """One z3 check of one model (or one `equivalent` claim)."""

    model: str
    name: str
    kind: str  # acyclic | total | in_domain | effective | assert | equivalent
    verdict: str  # proved | counterexample | unknown
    message: Optional[str] = None
    counterexample: Optional[Mapping[str, Any]] = None
    location: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.verdict == "proved"

    @staticmethod
    def from_json(entry: Mapping[str, Any]) -> "Check":
        return Check(str(entry.get("model")), str(entry.get("name")), str(entry.get("kind")),
                     str(entry.get("verdict")), entry.get("message"), entry.get("counterexample"),
                     entry.get("location"))

    def to_json(self) -> Json:
        return {"model": self.model, "name": self.name, "kind": self.kind, "verdict": self.verdict,
                "message": self.message, "counterexample": self.counterexample, "location": self.location}


class Checks(tuple):  # a tuple of Check, with a verdict and a display
    """The z3 checks of a spec; `ok` when every one is proved."""

    spec_path: str = ""

    def __new__(cls, checks: Sequence[Check], spec_path: str = "") -> "Checks":
        out = super().__new__(cls, checks)
        out.spec_path = spec_path
        return out

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self if not c.ok]

    def to_json(self) -> list[Json]:
        return [c.to_json() for c in self]

    def __str__(self) -> str:
        from .cli import format_checks
        return format_checks(self.to_json())

    def _repr_html_(self) -> str:
        from .report.html import render_checks
        return _style(render_checks({"checks": self.to_json(), "spec": {"path": self.spec_path}})
                      or "<p>No checks: the spec declares no model.</p>")


# ------------------------------------------------------------------ the spec
class Spec:
    """A loaded spec: its causal models, networks and hypotheses, to check and verify."""

    def __init__(self, compiled: _CompiledSpec) -> None:
        self.compiled = compiled  # abstract.language.Spec: the compiler's own object

    @property
    def path(self) -> str:
        return self.compiled.path

    @property
    def text(self) -> str:
        return self.compiled.text

    @property
    def sha256(self) -> str:
        return self.compiled.sha256

    @property
    def models(self) -> dict[str, Any]:
        """Model name -> `abstract.causal.CausalModel` (a networkx graph with mechanisms)."""
        return dict(self.compiled.models)

    @property
    def hypotheses(self) -> list[str]:
        """Hypothesis names, in spec order."""
        return [h.name for h in self.compiled.hypotheses]

    @property
    def networks(self) -> list[str]:
        return list(self.compiled.networks)

    def __repr__(self) -> str:
        return (f"<abstract.Spec {self.path}: models {', '.join(self.compiled.models) or '-'}; "
                f"hypotheses {', '.join(self.hypotheses) or '-'}>")

    def check(self, rlimit: Optional[int] = None, timeout: Optional[float] = None) -> Checks:
        """Prove the models' properties with z3, as `abstract check` does: `rlimit` bounds each
        query, `timeout` (seconds) the whole run; what is not decided in time is `unknown`."""
        from .solver import Bound, check_spec
        from .solver.checks import MAX_RLIMIT
        if rlimit is not None and not 0 < rlimit <= MAX_RLIMIT:
            raise ValueError(f"rlimit: expected 1..{MAX_RLIMIT:,}, got {rlimit}")
        if timeout is not None and not 0 < timeout < 10**7:
            raise ValueError(f"timeout: expected a positive number of seconds, got {timeout}")
        bound = Bound.of(rlimit or Bound().rlimit, timeout)
        results = check_spec(self.compiled, bound=bound)
        return Checks([Check.from_json(r.to_json()) for r in results], self.path)

    def verify(self, hypotheses: Union[str, Sequence[str], None] = None, *, device: Optional[str] = None,
               seed: int = 0, cache: Union[bool, PathLike] = True, progress: bool = True,
               align: bool = True, save_interventions: Optional[PathLike] = None,
               load_interventions: Optional[PathLike] = None, executor: Any = None,
               cell_cache: Union[bool, PathLike] = False) -> "Results":
        """Run the checks and alignments and judge every `expect`: `abstract verify` in Python.

        `hypotheses`: only these (and those their expectations compare with; default all);
        `device`: cpu, cuda, cuda:1 ... (default cuda when available); `seed`: the base seed;
        `cache`: True for the CLI's results cache (.abstract-cache/results), a folder for
        another, False to retrain; `progress`: progress bars and one line per step on stderr
        (the CLI's `--quiet` is `progress=False`). A spec error raises `SpecError`; a hypothesis
        that fails (network not loadable, crash) is in `Results.errors` and the rest still run.
        `save_interventions` / `load_interventions`: a folder to write every trained intervention
        to (safetensors), or to re-measure them from without training (the CLI's
        `--save-interventions` / `--load-interventions`; a mismatching spec or network is an error).
        `executor`: where the sweep's cells train: None/"local" (in this process), "ray" (a
        local Ray node, started and stopped here) or an executor from
        `abstract.executors.make_executor("ray", address=..., gpus_per_worker=...)` (yours to
        close); results are the same whichever runs them. `cell_cache`: True keeps finished
        cells in .abstract-cache/cells, a folder elsewhere (an interrupted sweep resumes)."""
        from .device import device_problem
        from .verify.cache import DEFAULT_DIR, ResultsCache
        from .verify.pipeline import verify_spec

        names = [hypotheses] if isinstance(hypotheses, str) else (list(hypotheses) if hypotheses else None)
        problem = device_problem(device)
        if problem:
            raise ValueError(f"device {device}: {problem}")
        if isinstance(cache, bool):
            store = ResultsCache(DEFAULT_DIR, enabled=cache)
        else:
            store = ResultsCache(Path(cache), enabled=True)
        say = (lambda m: print(f"[abstract] {m}", file=sys.stderr)) if progress else None
        own = isinstance(executor, str)
        if own:
            from .executors import ExecutorError, make_executor
            try:
                executor = make_executor(executor)
            except ExecutorError as err:
                raise ValueError(str(err)) from None
        extra: dict[str, Any] = {}
        if executor is not None or cell_cache:
            from .executors import DEFAULT_CELL_DIR, CellCache
            cells = None if not cell_cache else CellCache(DEFAULT_CELL_DIR if cell_cache is True else Path(cell_cache))
            extra = {"executor": executor, "cell_cache": cells}
        try:
            doc = verify_spec(self.path, hypotheses=names, device=device, cache=store, progress=progress, seed=seed,
                              align=align, on_event=say,
                              save_interventions=str(save_interventions) if save_interventions else None,
                              load_interventions=str(load_interventions) if load_interventions else None, **extra)
        finally:
            if own and executor is not None:
                executor.close()
        return Results(doc)


# ------------------------------------------------------------------ results
def _interval(correct: Optional[int], n: Optional[int]) -> tuple[Optional[float], Optional[float]]:
    from .verify.stats import wilson_interval
    if not isinstance(correct, int) or not isinstance(n, int) or not n or not 0 <= correct <= n:
        return None, None
    return wilson_interval(correct, n)


@dataclass(frozen=True)
class Control:
    """A control's score beside a variable (random network, random rotation)."""

    name: str
    iia: Optional[float]
    correct: Optional[int]
    n: Optional[int]

    @property
    def interval(self) -> tuple[Optional[float], Optional[float]]:
        return _interval(self.correct, self.n)


@dataclass(frozen=True)
class Variable:
    """One `align` line, measured: the judged IIA (best seed on dev), its interval, the mean over
    seeds, what doing nothing scores on the same pairs, the controls and the chosen site."""

    name: str
    iia: Optional[float]
    correct: int
    n: int
    mean: Optional[float]
    do_nothing: Optional[float]
    controls: dict[str, Control]
    site: dict[str, Any]
    raw: Json = field(repr=False, compare=False)

    @property
    def interval(self) -> tuple[Optional[float], Optional[float]]:
        """The Wilson 95% interval of `iia`, as expectations are judged."""
        return _interval(self.correct, self.n)

    @property
    def trivial(self) -> bool:
        """The site realises the variable by swapping only its input ancestors: the figure says
        nothing about what the network computes."""
        return bool(self.site.get("trivial"))

    @property
    def seeds(self) -> list[Json]:
        return list(self.raw.get("seeds") or [])

    @staticmethod
    def from_json(name: str, v: Mapping[str, Any]) -> "Variable":
        from .verify.stats import judged_iia
        from .verify.validity import do_nothing
        iia = dict(v.get("iia") or {})
        base = do_nothing(iia)
        controls = {k: Control(k, c.get("iia"), c.get("correct"), c.get("n"))
                    for k, c in (v.get("controls") or {}).items() if isinstance(c, Mapping)}
        return Variable(name, judged_iia(iia), int(iia.get("correct") or 0), int(iia.get("n") or 0),
                        iia.get("mean"), base["value"] if base else None, controls, dict(v.get("site") or {}),
                        dict(v))


@dataclass(frozen=True)
class Expectation:
    """One `expect` clause, judged on the interval of its figure (`passed`), with the reason."""

    text: str
    passed: bool
    value: Optional[float]
    interval: tuple[Optional[float], Optional[float]]
    reason: str
    location: Optional[str]
    raw: Json = field(repr=False, compare=False)

    @staticmethod
    def from_json(e: Mapping[str, Any]) -> "Expectation":
        return Expectation(str(e.get("text")), bool(e.get("passed")), e.get("value"),
                           (e.get("ci_low"), e.get("ci_high")), str(e.get("reason") or ""), e.get("location"),
                           dict(e))

    def __str__(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.text}: {self.reason}"


class HypothesisResult:
    """One hypothesis, aligned and judged; displays as its card of the HTML report."""

    def __init__(self, entry: Json, spec_path: str = "") -> None:
        self.raw = entry
        self.spec_path = spec_path

    @property
    def name(self) -> str:
        return str(self.raw.get("name"))

    @property
    def model(self) -> str:
        return str(self.raw.get("model"))

    @property
    def network(self) -> str:
        return str(self.raw.get("network"))

    @property
    def expectations(self) -> list[Expectation]:
        return [Expectation.from_json(e) for e in (self.raw.get("expectations") or [])]

    @property
    def passed(self) -> bool:
        """Every expectation met (a hypothesis with none passes, as in the report)."""
        return all(e.passed for e in self.expectations)

    @property
    def variables(self) -> dict[str, Variable]:
        return {k: Variable.from_json(k, v) for k, v in (self.raw.get("variables") or {}).items()}

    @property
    def multi(self) -> Optional[Json]:
        """Several-variable metrics (`cause`, `isolate`, `joint`) as the document has them."""
        return self.raw.get("multi")

    @property
    def train(self) -> Json:
        return dict(self.raw.get("train") or {})

    @property
    def dataset(self) -> Json:
        return dict(self.raw.get("dataset") or {})

    def to_json(self) -> Json:
        return copy.deepcopy(self.raw)

    def __repr__(self) -> str:
        exps = self.expectations
        return (f"<HypothesisResult {self.name}: {'PASS' if self.passed else 'FAIL'}, "
                f"{sum(e.passed for e in exps)}/{len(exps)} expectations met>")

    def _repr_html_(self) -> str:
        from .report.html import render_hypothesis
        return _style(render_hypothesis(self.raw, self.spec_path))


class Results(Mapping[str, HypothesisResult]):
    """A verified spec: the results document, read as typed objects. A mapping from hypothesis
    name to `HypothesisResult`; displays as the HTML report in Jupyter."""

    def __init__(self, doc: Json) -> None:
        self.doc = doc

    # the mapping: hypotheses by name, in spec order
    def __getitem__(self, name: str) -> HypothesisResult:
        for h in self.doc.get("hypotheses") or []:
            if h.get("name") == name:
                return HypothesisResult(h, self.spec_path)
        failed = [e for e in self.errors if e.get("hypothesis") == name]
        if failed:
            raise KeyError(f"hypothesis {name} errored: {failed[0].get('message')}")
        raise KeyError(f"no result for hypothesis {name}; have: {', '.join(self) or 'none'}")

    def __iter__(self) -> Iterator[str]:
        return iter([str(h.get("name")) for h in self.doc.get("hypotheses") or []])

    def __len__(self) -> int:
        return len(self.doc.get("hypotheses") or [])

    @property
    def spec_path(self) -> str:
        return str((self.doc.get("spec") or {}).get("path") or "")

    @property
    def hypotheses(self) -> list[HypothesisResult]:
        return [self[name] for name in self]

    @property
    def checks(self) -> Checks:
        return Checks([Check.from_json(c) for c in self.doc.get("checks") or []], self.spec_path)

    @property
    def errors(self) -> list[Json]:
        """Hypotheses that could not be run: {"hypothesis", "location", "message"}."""
        return list(self.doc.get("errors") or [])

    @property
    def warnings(self) -> list[str]:
        return list(self.doc.get("warnings") or [])

    @property
    def passed(self) -> bool:
        """Every check proved and every expectation met, and nothing errored."""
        return bool(self.doc.get("passed")) and not self.errors

    @property
    def exit_code(self) -> int:
        """What `abstract verify` would exit with: 0 holds, 1 a check or expectation fails, 2 an error."""
        from .verify.pipeline import exit_code
        return exit_code(self.doc)

    @property
    def cached(self) -> bool:
        return bool((self.doc.get("run") or {}).get("cached"))

    def summary(self) -> str:
        """The CLI's console summary."""
        from .verify.summary import format_summary
        return format_summary(self.doc)

    def to_json(self) -> Json:
        """The results document (a copy): what `abstract verify --json` writes."""
        return copy.deepcopy(self.doc)

    def save_json(self, path: PathLike) -> Path:
        """Write the document as `verify --json` does (readable by `abstract report` and `load_results`)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.doc, indent=1, default=str), encoding="utf-8")
        return path

    def save_html(self, path: PathLike) -> Path:
        """Write the self-contained HTML report (`verify --html`)."""
        from .report import write_report
        return write_report(self.doc, path)

    def __repr__(self) -> str:
        verdict = "ERROR" if self.errors else ("PASS" if self.passed else "FAIL")
        return (f"<Results {Path(self.spec_path).name}: {verdict}; {sum(h.passed for h in self.hypotheses)}"
                f"/{len(self)} hypotheses pass, {len(self.errors)} error(s)>")

    def _repr_html_(self) -> str:
        from .report.html import (render_checks, render_errors, render_header, render_hypothesis, render_models,
                                  render_spec, render_warnings)
        hyps = "".join(render_hypothesis(h, self.spec_path) for h in self.doc.get("hypotheses") or [])
        return _style(render_header(self.doc) + render_errors(self.doc) + render_warnings(self.doc)
                      + (f"<h2>Hypotheses</h2>{hyps}" if hyps else "") + render_models(self.doc)
                      + render_checks(self.doc) + render_spec(self.doc))
