"""The results cache under faults: nothing stale, nothing lost, nothing crashes.

Each test first sets up the fault the way a user meets it (an edited helper module, a
corrupted or foreign cache entry, a cache folder that cannot be written, the same spec read
by a relative and an absolute path) and then checks what the run does about it."""
from __future__ import annotations

import importlib
import json
import sys
import uuid

import pytest

from abstract.verify import pipeline
from abstract.verify.cache import ResultsCache

from test_pipeline import SPEC, fake_result

BUILDER = """
import os, sys
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from {helper} import make
def build(width=4):
    return make(width)
"""

DYNAMIC_BUILDER = """
import importlib, os, sys
def build(width=4):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    return importlib.import_module("{helper}").make(width)
"""

HELPER = """
import torch
def make(width):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, width), torch.nn.Linear(width, 2))
# version 1
"""


@pytest.fixture
def isolated_imports(monkeypatch, tmp_path):
    """Builders here put their folder on sys.path and import helpers: undo both afterwards."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def calls(monkeypatch):
    made: list[str] = []

    def fake_align(spec, name, **kw):
        made.append(name)
        return fake_result(name, 970, 1000)

    monkeypatch.setattr(pipeline, "_align", fake_align)
    return made


def _spec_with_helper(tmp_path, builder=BUILDER):
    helper = f"helper_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{helper}.py").write_text(HELPER)
    (tmp_path / "net.py").write_text(builder.format(helper=helper))
    spec = tmp_path / "eq.causal"
    spec.write_text(SPEC.replace('torch "net.py:build"', 'torch "net.py:build" { width 4 }'))
    return spec, tmp_path / f"{helper}.py", helper


def _run(spec, cache, **kw):
    return pipeline.verify_spec(spec, cache=cache, progress=False, hypotheses=["good"], **kw)


@pytest.mark.parametrize("builder", [BUILDER, DYNAMIC_BUILDER], ids=["import", "import_module"])
def test_editing_a_helper_module_the_builder_imports_is_a_cache_miss(tmp_path, calls, isolated_imports, builder):
    spec, helper, _ = _spec_with_helper(tmp_path, builder)
    cache = ResultsCache(tmp_path / "cache")
    _run(spec, cache)
    assert _run(spec, cache)["run"]["cached"] is True and calls == ["good"]
    helper.write_text(HELPER.replace("# version 1", "# version 2: a different forward"))
    doc = _run(spec, cache)
    assert doc["run"]["cached"] is False and calls == ["good", "good"]


def test_a_helper_imported_before_the_builder_still_counts(tmp_path, calls, isolated_imports):
    """The key must not depend on what the process imported first (two builders sharing a helper)."""
    spec, helper, name = _spec_with_helper(tmp_path)
    cache = ResultsCache(tmp_path / "cache")
    sys.path.insert(0, str(tmp_path))
    importlib.import_module(name)  # already in sys.modules when the builder runs
    _run(spec, cache)
    helper.write_text(HELPER.replace("# version 1", "# version 2"))
    _run(spec, cache)
    assert calls == ["good", "good"]


def test_a_module_reached_by_a_relative_import_inside_a_helper_package_counts(tmp_path, calls, isolated_imports):
    """builder -> `from pkg import make` -> pkg/__init__.py -> `from .impl import make`: editing
    impl.py is a miss even when the package was imported before the builder ran."""
    pkg = f"pkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / pkg).mkdir()
    (tmp_path / pkg / "__init__.py").write_text("from .impl import make\n")
    (tmp_path / pkg / "impl.py").write_text(HELPER)
    (tmp_path / "net.py").write_text(BUILDER.format(helper=pkg))
    spec = tmp_path / "eq.causal"
    spec.write_text(SPEC.replace('torch "net.py:build"', 'torch "net.py:build" { width 4 }'))
    sys.path.insert(0, str(tmp_path))
    importlib.import_module(pkg)
    cache = ResultsCache(tmp_path / "cache")
    _run(spec, cache)
    _run(spec, cache)
    (tmp_path / pkg / "impl.py").write_text(HELPER.replace("# version 1", "# version 2"))
    _run(spec, cache)
    assert calls == ["good", "good"]


def test_same_key_for_a_relative_and_an_absolute_spec_path(tmp_path, calls, isolated_imports, monkeypatch):
    """The CLI is given `eq.causal`, pytest an absolute path: one cache entry serves both."""
    spec, _, _ = _spec_with_helper(tmp_path)
    monkeypatch.chdir(tmp_path)
    cache = ResultsCache(tmp_path / "cache")
    _run("eq.causal", cache)
    doc = _run(str(spec.resolve()), cache)
    assert calls == ["good"] and doc["run"]["cached"] is True
    # a served result speaks of this run's spec path, not the path that filled the cache
    assert doc["hypotheses"][0]["location"].startswith(str(spec.resolve()))


def _entry(cache_dir):
    [entry] = [p for p in cache_dir.iterdir() if p.suffix == ".json"]
    return entry


@pytest.mark.parametrize("content", [
    b"[]", b"{}", b'"x"', b"null", b"42", b"{not json", b"\xff\xfe binary",
    b'{"schema": "abstract.cache/1", "key": "KEY", "result": {}}',
    b'{"schema": "abstract.cache/1", "key": "KEY", "result": []}',
    b'{"schema": "abstract.cache/1", "key": "KEY", "result": {"name": "good", "variables": []}}',
    b'{"schema": "abstract.cache/1", "key": "KEY", "result": {"name": "bad", "variables": {}}}',
    b'{"schema": "abstract.cache/1", "key": "KEY", "result": {"name": "good", "variables": '
    b'{"left": {"iia": {"correct": "970", "n": 1000}}}}}',
    b'{"schema": "abstract.cache/1", "key": "other", "result": {"name": "good", "variables": {}}}',
], ids=lambda c: c[:60].decode("utf-8", "replace"))
def test_a_malformed_cache_entry_is_recomputed_and_replaced(spec_file, calls, tmp_path, content):
    cache_dir = tmp_path / "cache"
    first = _run(spec_file, ResultsCache(cache_dir))
    entry = _entry(cache_dir)
    entry.write_bytes(content.replace(b"KEY", entry.stem.encode()))
    doc = _run(spec_file, ResultsCache(cache_dir))
    assert calls == ["good", "good"] and not doc["errors"]
    assert doc["hypotheses"][0]["expectations"] == first["hypotheses"][0]["expectations"]
    assert json.loads(entry.read_text())["result"]["name"] == "good"  # replaced by the recomputed result
    assert _run(spec_file, ResultsCache(cache_dir))["run"]["cached"] is True


def test_an_unreadable_cache_entry_is_a_miss(spec_file, calls, tmp_path):
    cache_dir = tmp_path / "cache"
    _run(spec_file, ResultsCache(cache_dir))
    entry = _entry(cache_dir)
    entry.unlink()
    entry.mkdir()  # reading it raises IsADirectoryError
    doc = _run(spec_file, ResultsCache(cache_dir))
    assert calls == ["good", "good"] and not doc["errors"] and doc["hypotheses"][0]["name"] == "good"


def test_an_unwritable_cache_keeps_the_result_and_warns(spec_file, calls, tmp_path):
    (tmp_path / "file").write_text("a file where the cache folder should be")
    events: list[str] = []
    doc = _run(spec_file, ResultsCache(tmp_path / "file" / "results"), on_event=events.append)
    assert calls == ["good"] and not doc["errors"] and pipeline.exit_code(doc) == 0
    assert [h["name"] for h in doc["hypotheses"]] == ["good"]
    assert all(e["passed"] for e in doc["hypotheses"][0]["expectations"])
    [warning] = doc["warnings"]
    assert "cannot write" in warning and "kept" in warning and any(warning in e for e in events)


@pytest.fixture
def spec_file(tmp_path):
    from test_pipeline import NET
    (tmp_path / "net.py").write_text(NET)
    path = tmp_path / "eq.causal"
    path.write_text(SPEC)
    return path
