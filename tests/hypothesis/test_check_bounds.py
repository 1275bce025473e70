"""`check` stays bounded and located on hostile input: resource limits, a time budget, huge
domains, thousands of unknown names, deep nesting, bad bytes, odd line breaks, and an input
encoding that would need gigabytes."""
from __future__ import annotations

import difflib
import time
import tracemalloc

import pytest

from abstract.cli import main
from abstract.hypothesis.encoding import MAX_ONE_HOT_BYTES, one_hot_bytes
from abstract.language import SpecError, compile_text, load_spec
from abstract.language import errors as errors_mod
from abstract.language.errors import SpecErrors
from abstract.language.parser import MAX_DEPTH, MAX_OPEN
from abstract.solver import Bound, MAX_RLIMIT, check_spec

HARD = """
model Cubes {
    input x, y, z : 1..2000
    output o = x * x * x + y * y * y == z * z * z
    assert not o
}
"""


def _write(tmp_path, text, name="spec.causal"):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


# ------------------------------------------------------------------ --rlimit and --timeout
@pytest.mark.parametrize("value", [str(2**32), str(2**40)])
def test_rlimit_past_z3s_32_bits_is_refused(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_:
        main(["check", "--rlimit", value, _write(tmp_path, HARD)])
    assert exit_.value.code == 2
    assert "at most 4,294,967,295" in capsys.readouterr().err


def test_largest_rlimit_is_accepted():
    assert Bound(MAX_RLIMIT).rlimit == 2**32 - 1
    with pytest.raises(ValueError):
        Bound(2**32)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_timeout_must_be_a_positive_number(tmp_path, capsys, value):
    with pytest.raises(SystemExit):
        main(["check", "--timeout", value, _write(tmp_path, HARD)])
    assert "--timeout" in capsys.readouterr().err


def test_a_spent_time_budget_leaves_checks_unknown_with_the_reason(tmp_path, capsys):
    out = tmp_path / "c.json"
    code = main(["check", "--timeout", "0.000001", _write(tmp_path, HARD), "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 1
    assert "time budget (--timeout 1e-06 s) was spent" in printed
    assert " unknown" in printed.splitlines()[-1]


def test_the_budget_caps_each_query_to_the_time_left():
    """Even with z3's largest resource limit, a hard query stops when the run's time is up."""
    spec = compile_text(HARD)
    start = time.monotonic()
    results = check_spec(spec, bound=Bound.of(MAX_RLIMIT, 0.5))
    assert time.monotonic() - start < 10
    hard = next(r for r in results if r.kind == "assert")
    assert hard.verdict == "unknown" and "--timeout 0.5 s" in hard.message


# ------------------------------------------------------------------ big domains are not enumerated
def test_big_table_domains_are_not_materialised():
    """Ten tables over a million values each: before, every range was enumerated (and cached)
    as a tuple, ~36 MB apiece; now the compile and all checks stay within a few MB."""
    lines = ["model Big {", "  input x : 0..999999"]
    for i in range(10):
        lines += [f"  domain D{i} = {i}..{999999 + i}", f"  table T{i} : D{i} -> D{i} {{ {i} : {i}, _ : {i} }}",
                  f"  v{i} = T{i}(x + {i})"]
    lines += ["  output o = " + " + ".join(f"v{i}" for i in range(10)), "}"]
    tracemalloc.start()
    try:
        spec = compile_text("\n".join(lines))
        check_spec(spec, rlimit=100_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 30 * 2**20, f"peak {peak / 2**20:.0f} MiB"


# ------------------------------------------------------------------ did-you-mean is bounded
def test_did_you_mean_on_thousands_of_unknown_names_is_bounded(monkeypatch):
    n = 600
    text = ("model M {\n  input a : 0..3\n" + "".join(f"  variable_{i} = a + 1\n" for i in range(n))
            + "".join(f"  other_{i} = varaible_{i} + a\n" for i in range(n)) + "  output o = a\n}\n")
    compared: list[int] = []
    real = difflib.get_close_matches

    def counting(word, possibilities, *args, **kw):
        compared.append(len(possibilities))
        return real(word, possibilities, *args, **kw)

    monkeypatch.setattr(errors_mod.difflib, "get_close_matches", counting)
    with pytest.raises(SpecErrors) as err:
        compile_text(text, "t.causal")
    assert len(err.value.errors) == n
    assert "did you mean 'variable_0'?" in err.value.errors[0].render()
    assert len(compared) <= 100 and max(compared) <= errors_mod.MAX_CANDIDATES
    rendered = err.value.render()
    assert f"... and {n - SpecErrors.MAX_SHOWN:,} more errors" in rendered


# ------------------------------------------------------------------ nesting is checked while parsing
@pytest.mark.parametrize("expr", ["not " * 100_000 + "(a == 1)", "- " * 100_000 + "a",
                                  "(" * 100_000 + "a" + ")" * 100_000, "max(" * 50_000 + "a" + ", 1)" * 50_000,
                                  " + ".join(["a"] * 50_000)],
                         ids=["nots", "signs", "parens", "calls", "sum"])
def test_deep_nesting_is_refused_while_parsing(expr):
    """The error comes from the point where the nesting passed the limit, not from the end of
    a 100,000-level expression (the parser stopped there), and never as a RecursionError."""
    text = "model M {\n  input a : 0..3\n  output o = " + expr + "\n}\n"
    with pytest.raises(SpecError) as err:
        compile_text(text, "t.causal")
    assert f"nested more than {MAX_DEPTH} levels" in err.value.message
    assert err.value.pos.line == 3 and err.value.pos.column < 8 * MAX_OPEN


@pytest.mark.parametrize("expr", [
    "not " * 100 + "(" * 100 + " + ".join(["a"] * 100) + ")" * 100 + " > 3",
    "if a == 0 then 0 else " * 250 + "1",
    "max(a, " * 250 + "1" + ")" * 250,
], ids=["mixed", "ifs", "calls"])
def test_nesting_within_the_limit_still_compiles(expr):
    spec = compile_text("model M {\n  input a : 0..3\n  output o = " + expr + "\n}\n")
    assert "o" in spec.models["M"].outputs


# ------------------------------------------------------------------ bytes and line breaks
def test_invalid_utf8_is_located(tmp_path):
    p = tmp_path / "bad.causal"
    p.write_bytes(b"model M {\n  input a : 0..3\n  output y = a # caf\xe9 \xff\n}\n")
    with pytest.raises(SpecError) as err:
        load_spec(p)
    e = err.value
    assert (e.pos.line, e.pos.column) == (3, 21) and "not valid UTF-8" in e.message and "0xe9" in e.message
    shown = e.render().splitlines()
    assert shown[1].startswith("    3 |   output y = a # caf") and shown[2].index("^") == len("    3 | ") + 20


@pytest.mark.parametrize("brk", ["\v", "\f", "\u2028", "\u2029", "\x85", "\x1c"])
def test_excerpts_count_lines_as_the_parser_does(brk):
    """lark counts only '\\n'; a \\v, \\f or U+2028 inside a comment must not shift the excerpt."""
    text = f"# one{brk}two\nmodel M {{\n  input a : 0..3\n  output y = zz\n}}\n"
    with pytest.raises(SpecError) as err:
        compile_text(text, "t.causal")
    lines = err.value.render().splitlines()
    assert lines[0].startswith("t.causal:4:14: error: unknown name 'zz'")
    assert lines[1] == "    4 |   output y = zz" and lines[2].index("^") == len("    4 | ") + 13


def test_syntax_error_at_end_of_file_with_odd_line_breaks():
    with pytest.raises(SpecError) as err:
        compile_text("# a\vb\nmodel M {\n  input a : 0..3\n", "t.causal")
    assert err.value.pos.line == 3 and "end of file" in err.value.message


# ------------------------------------------------------------------ one-hot encodings that need gigabytes
ONE_HOT = """model Wide {{
    input x, y : 0..999999
    output o = x < y
}}
network mlp = torch "m.py:build" {{ width 8{extra} }}
hypothesis h : Wide ~ mlp {{
    align o to layer 1
    train samples 20000
}}
"""


def test_a_gigabyte_one_hot_encoding_is_refused_at_check(tmp_path, capsys):
    text = ONE_HOT.format(extra="")
    code = main(["check", _write(tmp_path, text)])
    err = capsys.readouterr().err
    assert code == 2
    assert ":8:11: error: the default one-hot input encoding of network 'mlp' would need" in err
    assert "2,000,000 columns x 48,000 encoded inputs" in err and "encoder builder" in err
    assert "note: the network is declared here" in err


def test_a_declared_encoder_or_a_small_encoding_is_accepted():
    spec = compile_text(ONE_HOT.format(extra=", encoder builder"))
    assert one_hot_bytes(spec.plans["h"], spec.models["Wide"]) > MAX_ONE_HOT_BYTES  # but the builder encodes
    small = compile_text(ONE_HOT.format(extra="").replace("0..999999", "0..99"))
    assert one_hot_bytes(small.plans["h"], small.models["Wide"]) == 200 * 48_000 * 4
