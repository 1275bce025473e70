"""`pytest specs/` collects *.causal files: one item for the checks, one per hypothesis."""
from __future__ import annotations


# Imported here, before any in-process pytest run: pytester restores sys.modules after each
# run, and dropping torch's extension modules that a run imported first crashes the next one
# (a segfault when this file runs on its own).
import abstract.engine.networks  # noqa: F401
import torch  # noqa: F401

from abstract.verify import pipeline

pytest_plugins = ["pytester"]

PASSING = """
model Eq {
    input a, b : 0..3
    output label = a == b
    assert label == (b == a)
}
network net = torch "net.py:build"
hypothesis h : Eq ~ net {
    align label to layer 0 via full
    expect iia(label) >= 0.9
}
"""


NET = "import torch\ndef build():\n    return torch.nn.Linear(8, 2)\n"


def _fake(correct):
    def align(spec, name, **kw):
        return {"name": name, "variables": {"label": {"iia": {"correct": correct, "n": 1000}}}, "multi": None}
    return align


def test_spec_items_pass(pytester, monkeypatch):
    monkeypatch.setattr(pipeline, "_align", _fake(990))
    pytester.makefile(".causal", eq=PASSING)
    pytester.makepyfile(net=NET)
    result = pytester.runpytest_inprocess("--abstract-no-cache", "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*eq.causal::checks PASSED*", "*eq.causal::h PASSED*"])


def test_failed_expectation_reads_well(pytester, monkeypatch):
    monkeypatch.setattr(pipeline, "_align", _fake(500))
    pytester.makefile(".causal", eq=PASSING)
    pytester.makepyfile(net=NET)
    result = pytester.runpytest_inprocess("--abstract-no-cache")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*hypothesis h: 1 expectation(s) not met*",
                                 "*eq.causal:9:12: expect iia(label) >= 0.9*"])


def test_failed_assert_and_spec_error(pytester):
    pytester.makefile(".causal", bad="model M {\n input a : 0..3\n output o = a\n assert o > 0\n}\n",
                      broken="model M {\n input a : 0..3\n output o = a +\n}\n")
    result = pytester.runpytest_inprocess("--abstract-checks-only")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*counterexample: a=0*", "*broken.causal:4:1: error: unexpected*"])


def test_each_hypothesis_item_aligns_only_its_own(pytester, monkeypatch):
    """`-k` selects hypotheses; a broken network fails only the hypothesis that uses it."""
    calls = []

    def align(spec, name, **kw):
        calls.append(name)
        return _fake(990)(spec, name)

    monkeypatch.setattr(pipeline, "_align", align)
    text = PASSING.replace('network net = torch "net.py:build"',
                           'network net = torch "net.py:build"\nnetwork gone = torch "gone.py:build"')
    text += "hypothesis h2 : Eq ~ gone {\n    align label to layer 0 via full\n}\n"
    pytester.makefile(".causal", two=text)
    pytester.makepyfile(net=NET)
    result = pytester.runpytest_inprocess("--abstract-no-cache", "-k", "not checks and not h2")
    result.assert_outcomes(passed=1, deselected=2)
    assert calls == ["h"]
    result = pytester.runpytest_inprocess("--abstract-no-cache")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*two.causal:*: error: cannot find gone.py*"])
    assert calls == ["h", "h"]


def test_pytest_and_the_cli_share_cache_entries(pytester, monkeypatch):
    """`abstract verify eq.causal` (a relative path) fills the cache; `pytest` (absolute paths)
    reuses it, also for a network declared with options, without aligning again."""
    from abstract.cli import main
    calls = []

    def align(spec, name, **kw):
        calls.append(name)
        return _fake(990)(spec, name)

    monkeypatch.setattr(pipeline, "_align", align)
    pytester.makefile(".causal", eq=PASSING.replace('torch "net.py:build"', 'torch "net.py:build" { width 8 }'))
    pytester.makepyfile(net="import torch\ndef build(width):\n    torch.manual_seed(0)\n"
                            "    return torch.nn.Linear(width, 2)\n")
    assert main(["verify", "eq.causal", "--quiet", "--cache-dir", "c"]) == 0 and calls == ["h"]
    result = pytester.runpytest_inprocess("--abstract-cache-dir", "c")
    result.assert_outcomes(passed=2)
    assert calls == ["h"]


def test_an_unwritable_cache_is_a_warning_not_a_failure(pytester, monkeypatch):
    monkeypatch.setattr(pipeline, "_align", _fake(990))
    pytester.makefile(".causal", eq=PASSING)
    pytester.makepyfile(net=NET)
    pytester.makefile(".txt", blocked="a file where the cache folder should be")
    result = pytester.runpytest_inprocess("--abstract-cache-dir", "blocked.txt/results")
    result.assert_outcomes(passed=2, warnings=1)
    result.stdout.fnmatch_lines(["*AbstractWarning: hypothesis h: results cache: cannot write*"])


TWO_BAD = """
model M {
    input a : 0..3
    output o = a
    assert o > 0
    assert o < 3
    assert o >= 0
}
"""


def test_the_check_summary_counts_what_the_cli_counts(pytester, capsys):
    """A failing checks item gives the whole file's numbers, the very lines `abstract verify`
    and `abstract check` print (not the counts of the failed checks alone)."""
    import re
    from abstract.cli import main
    spec = pytester.makefile(".causal", bad=TWO_BAD)
    assert main(["verify", str(spec), "--no-cache", "--cache-dir", str(pytester.path / "c")]) == 1
    verify_out = capsys.readouterr().out
    assert main(["check", str(spec)]) == 1
    check_out = capsys.readouterr().out
    headline = re.search(r"Symbolic checks: \d+/\d+ proved", verify_out).group(0)
    counts = re.search(r"\d+ proved, \d+ counterexample, \d+ unknown", check_out).group(0)
    assert (headline, counts) == ("Symbolic checks: 3/5 proved", "3 proved, 2 counterexample, 0 unknown")
    result = pytester.runpytest_inprocess("--abstract-checks-only")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*{headline}; 2 did not pass*", f"*{counts}*"])
