"""pytest plugin: `pytest specs/` collects every `*.causal` file and verifies it.

Each spec file yields one item for its symbolic checks and one per hypothesis; a failing
item shows the failed checks (with counterexamples) or expectations (with their intervals).
The symbolic checks run once per file; each hypothesis item aligns only its own hypothesis,
so `pytest specs/ -k name` trains just that one (and the results cache skips unchanged ones).
Registered through the `pytest11` entry point, so it is active wherever `abstract` is installed.
"""
from __future__ import annotations

import warnings
from typing import Any

import pytest

from .language.errors import SpecError


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("abstract", "causal-abstraction specs (*.causal)")
    group.addoption("--abstract-no-cache", action="store_true", help="retrain hypotheses even when cached")
    group.addoption("--abstract-device", default=None, help="device for alignments (default: cuda if available)")
    group.addoption("--abstract-checks-only", action="store_true", help="collect only the symbolic checks")
    group.addoption("--abstract-seed", type=int, default=0, help="base seed of the alignments (default 0)")
    group.addoption("--abstract-cache-dir", default=None,
                    help="results cache, shared with `abstract verify` (default .abstract-cache/results)")


def pytest_collect_file(parent: pytest.Collector, file_path) -> "CausalSpecFile | None":
    if file_path.suffix == ".causal":
        return CausalSpecFile.from_parent(parent, path=file_path)
    return None


class AbstractWarning(UserWarning):
    """Something a run could not do that did not change its verdict (e.g. caching its result)."""


class SpecVerificationFailed(Exception):
    """Raised by an item; its text is what pytest shows."""


class CausalSpecFile(pytest.File):
    _abstract_checks: dict[str, Any] | None = None  # the checks-only document, once computed

    def collect(self):
        from .language import load_spec
        try:
            spec = load_spec(self.path)
        except SpecError as err:
            yield SpecErrorItem.from_parent(self, name="spec", error=err)
            return
        yield SpecChecksItem.from_parent(self, name="checks")
        if not self.config.getoption("--abstract-checks-only"):
            for h in spec.hypotheses:
                yield HypothesisItem.from_parent(self, name=h.name, hypothesis=h.name)

    def results(self, hypothesis: str | None = None) -> dict[str, Any]:
        """The results document: the checks only (``hypothesis=None``, computed once per file),
        or the checks and that one hypothesis's alignment."""
        if hypothesis is None and self._abstract_checks is not None:
            return self._abstract_checks
        from .verify.cache import DEFAULT_DIR, ResultsCache
        from .verify.pipeline import verify_spec
        opt = self.config.getoption
        cache = ResultsCache(opt("--abstract-cache-dir") or DEFAULT_DIR, enabled=not opt("--abstract-no-cache"))
        doc = verify_spec(self.path, hypotheses=[hypothesis] if hypothesis else None,
                          device=opt("--abstract-device"), cache=cache,
                          progress=False, seed=opt("--abstract-seed"), align=hypothesis is not None)
        if hypothesis is None:
            self._abstract_checks = doc
        return doc


class _SpecItem(pytest.Item):
    @property
    def spec_file(self) -> CausalSpecFile:
        """The spec file this item was collected from (it computes and holds the results)."""
        assert isinstance(self.parent, CausalSpecFile), "spec items are collected by a CausalSpecFile"
        return self.parent

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, (SpecVerificationFailed, SpecError)):
            err = excinfo.value
            return err.render() if isinstance(err, SpecError) else str(err)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, None, self.name  # no dots: pytest would print them as "::"


class SpecErrorItem(_SpecItem):
    def __init__(self, *, error: SpecError, **kw) -> None:
        super().__init__(**kw)
        self.error = error

    def runtest(self) -> None:
        raise self.error


class SpecChecksItem(_SpecItem):
    def runtest(self) -> None:
        from .cli import format_checks
        from .verify.summary import checks_headline
        doc = self.spec_file.results()
        failed = [c for c in doc["checks"] if c["verdict"] != "proved"]
        if failed:  # counted over every check, as `abstract verify` and `abstract check` count them
            raise SpecVerificationFailed(f"{checks_headline(doc['checks'])}; {len(failed)} did not pass:\n"
                                         + format_checks(failed, counted=doc["checks"]))


class HypothesisItem(_SpecItem):
    def __init__(self, *, hypothesis: str, **kw) -> None:
        super().__init__(**kw)
        self.hypothesis = hypothesis

    def runtest(self) -> None:
        doc = self.spec_file.results(self.hypothesis)
        for message in doc.get("warnings") or []:  # e.g. an unwritable results cache
            warnings.warn(AbstractWarning(message), stacklevel=1)
        errors = [e for e in doc.get("errors", []) if e.get("hypothesis") == self.hypothesis]
        if errors:
            raise SpecVerificationFailed("\n".join(e["message"] for e in errors))
        result = next(h for h in doc["hypotheses"] if h["name"] == self.hypothesis)
        failed = [e for e in result["expectations"] if not e["passed"]]
        if failed:
            lines = [f"hypothesis {self.hypothesis}: {len(failed)} expectation(s) not met"]
            lines += [f"  {e['location']}: expect {e['text']}: {e['reason']}" for e in failed]
            raise SpecVerificationFailed("\n".join(lines))
