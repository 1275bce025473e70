"""The index page for several verified specs: one row per spec with its verdict, linked to its
report; every string escaped; written by `verify --html DIR/` (or a file, for several specs) and by
`report` for a results set."""
from __future__ import annotations

import argparse
import copy
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from abstract.cli import html_targets, main, write_outputs
from abstract.report import render_index, write_index

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "results_example.json"


@pytest.fixture
def docs():
    base = json.loads(FIXTURE.read_text())
    ok = copy.deepcopy(base)
    ok["spec"]["path"] = "specs/a.causal"
    ok["passed"] = True
    bad = copy.deepcopy(base)
    bad["spec"]["path"] = 'specs/<b>&"x.causal'
    bad["passed"] = False
    err = copy.deepcopy(base)
    err["spec"]["path"] = "other/c.causal"
    err["errors"] = [{"message": "<script>alert(1)</script>", "location": None}]
    return [ok, bad, err]


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"])


def test_index_lists_every_spec_with_its_verdict_and_escapes(docs) -> None:
    html = render_index([(d, f"r-{i}.html") for i, d in enumerate(docs)])
    assert html.count("<tr class=") == 3
    rows = re.findall(r'<tr class="(\w+)"><td><span class="badge \w+">(\w+)</span>', html)
    assert rows == [("pass", "PASS"), ("fail", "FAIL"), ("fail", "ERROR")]
    assert "<b>&" not in html and "&lt;b&gt;&amp;&quot;x.causal" in html
    assert "<script" not in html and "http" not in html.replace('content="width=device-width', "")
    assert "<b>1</b>/3 specs pass" in html
    p = Links()
    p.feed(html)
    assert "script" not in p.tags
    assert sorted(set(p.hrefs)) == ["r-0.html", "r-1.html", "r-2.html"]


def test_links_are_percent_encoded(docs) -> None:
    html = render_index([(docs[1], 'odd "name" <x>.html')])
    p = Links()
    p.feed(html)
    assert p.hrefs[0] == "odd%20%22name%22%20%3Cx%3E.html"
    assert unquote(p.hrefs[0]) == 'odd "name" <x>.html'


def test_html_targets() -> None:
    one = [{"spec": {"path": "specs/a.causal"}}]
    two = one + [{"spec": {"path": "x/a.causal"}}]
    assert html_targets("r.html", one) == ([Path("r.html")], None)
    assert html_targets("out/r.html", two) == ([Path("out/r-a.html"), Path("out/r-a-2.html")], Path("out/r.html"))
    assert html_targets("out/", two) == ([Path("out/a.html"), Path("out/a-2.html")], Path("out/index.html"))


def _args(html: str) -> argparse.Namespace:
    return argparse.Namespace(json=None, junit=None, html=html)


def test_verify_outputs_write_reports_and_an_index_into_a_folder(docs, tmp_path) -> None:
    out = tmp_path / "site"
    assert write_outputs(_args(str(out) + "/"), docs)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["<b>&\"x.html", "a.html", "c.html", "index.html"]
    p = Links()
    p.feed((out / "index.html").read_text())
    assert {unquote(h) for h in p.hrefs} == {"a.html", '<b>&"x.html', "c.html"}
    for h in p.hrefs:
        assert (out / unquote(h)).is_file()


def test_verify_outputs_put_the_index_at_the_named_file(docs, tmp_path) -> None:
    assert write_outputs(_args(str(tmp_path / "r.html")), docs[:2])
    assert (tmp_path / "r-a.html").is_file() and (tmp_path / 'r-<b>&"x.html').is_file()
    index = (tmp_path / "r.html").read_text()
    assert "r-a.html" in index and "specs pass" in index
    assert write_outputs(_args(str(tmp_path / "one.html")), docs[:1])  # one spec: its report, no index
    assert "Alignment report" in (tmp_path / "one.html").read_text()


def test_write_index_links_relative_to_the_index(docs, tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    write_index([(docs[0], tmp_path / "sub" / "a.html")], tmp_path / "index.html")
    assert 'href="sub/a.html"' in (tmp_path / "index.html").read_text()


def test_report_command_writes_an_index_for_a_results_set(docs, tmp_path, capsys) -> None:
    src = tmp_path / "set.json"
    src.write_text(json.dumps({"schema": "abstract.results-set/1", "results": docs[:2]}))
    assert main(["report", str(src), "-o", str(tmp_path / "rep.html")]) == 0
    assert (tmp_path / "rep-a.html").is_file() and (tmp_path / 'rep-<b>&"x.html').is_file()
    index = (tmp_path / "rep.html").read_text()
    assert 'href="rep-a.html"' in index and ">FAIL<" in index


@pytest.mark.parametrize("target", ["r.html", "site/"])
def test_report_and_verify_html_name_files_alike(docs, tmp_path, target) -> None:
    """One naming scheme: `abstract report` writes the files `verify --html` writes (spec stems,
    a suffix only on collision), for a file target and a folder target alike."""
    same = docs[:2] + [{**docs[0], "spec": {**docs[0]["spec"], "path": "other/a.causal"}}]
    src = tmp_path / "set.json"
    src.write_text(json.dumps({"schema": "abstract.results-set/1", "results": same}))
    (tmp_path / "v").mkdir()
    (tmp_path / "r").mkdir()
    assert write_outputs(_args(str(tmp_path / "v" / target)), same)
    assert main(["report", str(src), "-o", str(tmp_path / "r" / target)]) == 0

    def names(root: Path) -> list[str]:
        return sorted(str(p.relative_to(root)) for p in root.rglob("*.html"))

    assert names(tmp_path / "v") == names(tmp_path / "r")
    assert any(n.endswith("a-2.html") for n in names(tmp_path / "r"))  # the collision, suffixed
