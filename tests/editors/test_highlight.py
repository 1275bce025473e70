"""The Pygments lexer (abstract/highlight.py) and the TextMate grammar (editors/vscode) agree with the
spec language itself: their reserved words are the grammar's, read from the parser (no copied list), and
on every shipped spec each token Lark's own lexer produces is classified as what it is (keyword, name,
number, string, operator), with no Error token and nothing left unclassified."""
from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from lark import Token
from lark.lexer import PatternStr
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, Punctuation, String, Whitespace

from abstract.highlight import RESERVED_WORDS, CausalLexer, highlight_html
from abstract.language.parser import _parser, parse_text

ROOT = Path(__file__).resolve().parents[2]
VSCODE = ROOT / "editors" / "vscode"
TMLANGUAGE = VSCODE / "syntaxes" / "causal.tmLanguage.json"
SPECS = sorted((ROOT / "specs").glob("*.causal")) + sorted((ROOT / "tests").rglob("*.causal"))

# Every construct of grammar/causal.lark once (it must parse: checked below), for what the shipped specs lack:
# string escapes, negative and exponent floats, keyword arguments, lists, `*`, tuple and default table keys.
SAMPLE = r'''
model M {
    domain D = {a, b,}
    input x, y : 0..3 ; input z : bool
    t : -2..4 = if x >= 1 and not z then x - 1 else y * 2 // 1 % 3
    table T : D, bool -> 0..9 { (a, true): 1, b: 2, _: 0 }
    output o : D = if T(a, z) == 1 or x != y then a else b
    assert named: o == a or o == b
}
assert M_ok: 1 + 1 < 3
equivalent M, M
network n = torch "pkg.mod:build" { hidden 16, lr 1e-3, scale -0.5, mode *, sizes [1, 2],
                                    tag "a\"b{x}", f g(k=1, 2..3) }
hypothesis h : M ~ n {
    align t to layer 0 position last via das(dim=2)
    align o via identity
    search layer *, position [0, 1]
    train samples 10, epochs 1, lr 0.01, seeds 2
    data balance o
    expect iia(t) >= 0.9, iia(o) > do_nothing + 0.1, iia(t) > control(random_rotation) - 0.05, iia(t) >= iia(h.t)
    control random_rotation, shuffled_labels
}
'''
TEXTS = {p.relative_to(ROOT).as_posix(): p.read_text() for p in SPECS} | {"<sample>": SAMPLE}


def lark_reserved_words() -> set[str]:
    """The quoted words of grammar/causal.lark that NAME would otherwise match: reserved everywhere."""
    terminals = {t.name: t for t in _parser().terminals}
    name = re.compile(terminals["NAME"].pattern.to_regexp())
    return {t.pattern.value for t in terminals.values()
            if isinstance(t.pattern, PatternStr) and name.fullmatch(t.pattern.value)}


def lark_tokens(text: str) -> list[Token]:
    return list(_parser().lex(text))


def expected_kind(tok: Token) -> str:
    if tok.value in RESERVED_WORDS or tok.value in lark_reserved_words():
        return "keyword"
    return {"NAME": "name", "INT": "int", "FLOAT": "float", "STRING": "string"}.get(tok.type, "symbol")


def test_the_specs_and_the_sample_are_there_and_parse():
    assert len(SPECS) >= 9 and (ROOT / "specs" / "ioi.causal") in SPECS
    parse_text(SAMPLE, strict=False)  # the syntax is what matters here


def test_grammar_keywords_are_read_not_copied():
    words = lark_reserved_words()
    assert {"model", "hypothesis", "if", "true", "bool", "control", "via"} <= words
    assert "NAME" not in words and "iia" not in words and "->" not in words


# ---------------------------------------------------------------- Pygments


def test_lexer_reserved_words_are_the_grammars():
    assert set(RESERVED_WORDS) == lark_reserved_words()
    for word in RESERVED_WORDS:  # each alone is one keyword token, and a name that starts with it is a name
        assert [(t, v) for t, v in CausalLexer().get_tokens(word) if v.strip()][0][1] == word
        kinds = [t for t, v in CausalLexer().get_tokens(word) if v.strip()]
        assert len(kinds) == 1 and (kinds[0] in Keyword or kinds[0] in Operator.Word), word
        assert [t for t, v in CausalLexer().get_tokens(word + "_x1") if v.strip()] == [Name]


PYGMENTS_KIND = {"keyword": (Keyword, Operator.Word), "name": (Name,), "int": (Number.Integer,),
                 "float": (Number.Float,), "string": (String,), "symbol": (Operator, Punctuation)}


@pytest.mark.parametrize("label", list(TEXTS))
def test_lexer_classifies_every_token_of_every_spec(label):
    text = TEXTS[label]
    toks = list(CausalLexer().get_tokens_unprocessed(text))
    assert "".join(v for _, _, v in toks) == text
    assert not [v for _, t, v in toks if t in Error]
    starts = {i: (t, v) for i, t, v in toks}
    covered = set()
    for tok in lark_tokens(text):
        kind = expected_kind(tok)
        assert tok.start_pos in starts, f"{label}:{tok.line}:{tok.column}: {tok.value!r} split differently"
        ttype, value = starts[tok.start_pos]
        assert any(ttype in k for k in PYGMENTS_KIND[kind]), f"{label}:{tok.line}: {tok.value!r} is {ttype}"
        if kind == "string":  # a template string is split at its {placeholders}: all of it is String
            inside = [t for i, t, _ in toks if tok.start_pos <= i < tok.end_pos]
            assert all(t in String for t in inside)
            covered.update(i for i, _, _ in toks if tok.start_pos <= i < tok.end_pos)
        else:
            assert value == tok.value, f"{label}:{tok.line}: {tok.value!r} lexed as {value!r}"
            covered.add(tok.start_pos)
    # whatever Lark ignores is whitespace or a comment
    assert all(t in Whitespace or t in Comment for i, t, _ in toks if i not in covered)


def test_unterminated_string_and_stray_character_do_not_swallow_the_file():
    toks = list(CausalLexer().get_tokens('tag "open\nmodel M { }\n$'))
    assert (Keyword.Declaration, "model") in toks
    assert any(t in Error for t, _ in toks)


def test_entry_point_is_declared_and_pygments_finds_it(tmp_path, monkeypatch):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(dep.lower().startswith("pygments") for dep in project["dependencies"])
    target = project["entry-points"]["pygments.lexers"]["causal"]
    assert target == "abstract.highlight:CausalLexer"
    # an installed distribution declaring exactly that entry point: Pygments' plugin lookup resolves it
    dist = tmp_path / "causal_probe-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: causal-probe\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text(f"[pygments.lexers]\ncausal = {target}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename
    assert type(get_lexer_by_name("causal")).__name__ == "CausalLexer"
    assert type(get_lexer_for_filename("ioi.causal")).__name__ == "CausalLexer"


def test_highlight_html_escapes():
    html = highlight_html('network n = hf "<script>&" { }  # </pre>')
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;/pre&gt;" in html
    assert '<span class="kd">network</span>' in html


# ---------------------------------------------------------------- TextMate


def tm_grammar() -> dict:
    return json.loads(TMLANGUAGE.read_text())


def resolve(patterns: list[dict], repo: dict) -> Iterator[dict]:
    """The flat list of rules `patterns` stands for (includes expanded), in priority order."""
    for rule in patterns:
        if "include" in rule:
            ref = repo[rule["include"].lstrip("#")]
            yield from resolve(ref["patterns"], repo) if "match" not in ref and "begin" not in ref else [ref]
        elif "patterns" in rule and "match" not in rule and "begin" not in rule:
            yield from resolve(rule["patterns"], repo)
        else:
            yield rule


def all_regexes(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("match", "begin", "end") and isinstance(value, str):
                yield value
            else:
                yield from all_regexes(value)
    elif isinstance(node, list):
        for item in node:
            yield from all_regexes(item)


def test_extension_files_are_valid_and_consistent():
    grammar = tm_grammar()
    package = json.loads((VSCODE / "package.json").read_text())
    config = json.loads((VSCODE / "language-configuration.json").read_text())
    contributed = package["contributes"]["grammars"][0]
    assert contributed["scopeName"] == grammar["scopeName"] == "source.causal"
    assert (VSCODE / contributed["path"]).resolve() == TMLANGUAGE
    assert package["contributes"]["languages"][0]["extensions"] == [".causal"]
    assert config["comments"]["lineComment"] == "#"
    # written in the part of Oniguruma's syntax Python's re shares (no possessives, \h, (?<name>...))
    regexes = list(all_regexes(grammar))
    assert len(regexes) >= 15
    for rx in regexes:
        re.compile(rx)
        assert not re.search(r"\(\?<[A-Za-z]|\\[hHAzZG]|[+*?]\+", rx), rx


def test_textmate_reserved_words_are_the_grammars():
    words = set()
    for rule in tm_grammar()["repository"]["keyword"]["patterns"]:
        alternation = re.fullmatch(r"\\b\(\?:([\w|]+)\)\\b", rule["match"])
        assert alternation, rule["match"]
        words |= set(alternation.group(1).split("|"))
    assert words == lark_reserved_words()


def tm_tokenize(text: str) -> list[tuple[int, int, str]]:
    """A small TextMate engine (leftmost match wins, ties to the earlier rule; begin/end regions with their
    inner patterns): (start, end, scope) for each matched piece, the innermost scope of each capture."""
    grammar = tm_grammar()
    repo = grammar["repository"]
    rules = [(rule, re.compile(rule.get("match") or rule["begin"], re.M))
             for rule in resolve(grammar["patterns"], repo)]
    out: list[tuple[int, int, str]] = []
    pos = 0
    while pos < len(text):
        found = [(m.start(), i, m) for i, (_, rx) in enumerate(rules) if (m := rx.search(text, pos))]
        if not found:
            assert not text[pos:].strip(), f"unscoped text {text[pos:pos + 20]!r}"
            break
        start, i, m = min(found, key=lambda f: (f[0], f[1]))
        assert not text[pos:start].strip(), f"unscoped text {text[pos:start]!r} at {pos}"
        rule = rules[i][0]
        if "match" in rule:
            if "captures" in rule:
                rest = list(text[m.start():m.end()])
                for group, cap in rule["captures"].items():
                    g = int(group)
                    if m.group(g):
                        out.append((m.start(g), m.end(g), cap["name"]))
                        rest[m.start(g) - m.start():m.end(g) - m.start()] = " " * len(m.group(g))
                assert not "".join(rest).strip(), f"uncaptured text in {m.group()!r}"
            else:
                out.append((m.start(), m.end(), rule["name"]))
            pos = max(m.end(), pos + 1)
        else:  # a region: the inner patterns until the end pattern
            scope, end_rx = rule["name"], re.compile(rule["end"], re.M)
            inner = [(r, re.compile(r["match"])) for r in rule.get("patterns", [])]
            region_start, pos = m.start(), m.end()
            while True:
                e = end_rx.search(text, pos)
                hits = [(h.start(), h) for _, rx in inner if (h := rx.search(text, pos))]
                nearest = min(hits, key=lambda h: h[0], default=None)
                if nearest and e and nearest[0] < e.start():
                    pos = nearest[1].end()
                    continue
                pos = e.end() if e else len(text)
                break
            out.append((region_start, pos, scope))
    return out


TM_KIND = {"keyword": ("keyword.", "constant.language.", "support.type."), "name": ("variable.", "entity.name."),
           "int": ("constant.numeric.integer",), "float": ("constant.numeric.float",), "string": ("string.",),
           "symbol": ("keyword.operator.", "punctuation.")}


@pytest.mark.parametrize("label", list(TEXTS))
def test_textmate_classifies_every_token_of_every_spec(label):
    text = TEXTS[label]
    pieces = {start: (end, scope) for start, end, scope in tm_tokenize(text)}
    for tok in lark_tokens(text):
        where = f"{label}:{tok.line}:{tok.column}: {tok.value!r}"
        assert tok.start_pos in pieces, f"{where} not scoped on its own"
        end, scope = pieces[tok.start_pos]
        assert end == tok.end_pos, f"{where} scoped as {text[tok.start_pos:end]!r}"
        assert scope.startswith(TM_KIND[expected_kind(tok)]), f"{where} is {scope}"


def test_report_spec_lines_are_highlighted_and_escaped():
    from abstract.highlight import highlight_line
    from abstract.report.html import render_spec
    line = 'network n = hf "<b>{x}</b>" { tag "&amp;" }  # a <i>comment</i> with "quotes"'
    out = highlight_line(line)
    assert '<span class="k">network</span>' in out and '<span class="nd">n</span>' in out
    assert "<b>" not in out and "<i>" not in out and "&lt;b&gt;" in out and "&amp;amp;" in out
    assert '<span class="c"># a &lt;i&gt;comment&lt;/i&gt; with &quot;quotes&quot;</span>' in out
    # stripping the tags gives back the escaped line: nothing lost, nothing added
    import html
    assert html.unescape(re.sub(r"<[^>]+>", "", out)) == line
    page = render_spec({"spec": {"path": "x.causal", "text": "model M {\n  input a : 0..1\n}\n"}})
    assert '<span class="k">model</span> <span class="nd">M</span>' in page and 'class="m">0</span>' in page
