"""A builder is the user's Python: whatever it does (sys.exit, any exception) fails only the
hypotheses on its network, located at the `network` line; everything else still runs."""
from __future__ import annotations

import json
import sys

import pytest

from abstract.cli import main
from abstract.verify import pipeline

from test_pipeline import NET, SPEC, fake_result

FAULTS = {
    "sys_exit": "import sys\ndef build():\n    sys.exit(3)\n",
    "sys_exit_none": "import sys\ndef build():\n    sys.exit()\n",
    "value_error": "def build():\n    raise ValueError('no weights here')\n",
    "base_exception": "class Weird(BaseException):\n    pass\ndef build():\n    raise Weird('odd')\n",
    "exit_on_import": "import sys\nsys.exit('refusing to load')\ndef build():\n    pass\n",
}


@pytest.fixture
def calls(monkeypatch):
    made: list[str] = []

    def fake_align(spec, name, **kw):
        made.append(name)
        return fake_result(name, 970, 1000)

    monkeypatch.setattr(pipeline, "_align", fake_align)
    return made


def _two_networks(tmp_path, fault: str):
    """`good` runs on a sound network, `bad` on the faulty one."""
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "faulty.py").write_text(FAULTS[fault])
    text = (SPEC.replace('network net = torch "net.py:build"',
                         'network net = torch "net.py:build"\nnetwork broken = torch "faulty.py:build"')
            .replace("hypothesis bad : Eq ~ net", "hypothesis bad : Eq ~ broken"))
    path = tmp_path / "eq.causal"
    path.write_text(text)
    line = text.splitlines().index('network broken = torch "faulty.py:build"') + 1
    return path, f"{path}:{line}:"


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_faulty_builder_fails_only_its_own_hypotheses(tmp_path, calls, fault):
    spec, network_line = _two_networks(tmp_path, fault)
    doc = pipeline.verify_spec(spec, progress=False)
    assert [h["name"] for h in doc["hypotheses"]] == ["good"] and calls == ["good"]
    [err] = doc["errors"]
    assert err["hypothesis"] == "bad" and err["location"].startswith(network_line)
    assert "building network broken failed" in err["message"] or "importing faulty.py failed" in err["message"]
    assert "^" in err["message"]  # the network line, with a caret
    assert pipeline.exit_code(doc) == 2


def test_sys_exit_says_so(tmp_path, calls):
    spec, _ = _two_networks(tmp_path, "sys_exit")
    [err] = pipeline.verify_spec(spec, progress=False)["errors"]
    assert "its builder called sys.exit(3)" in err["message"] and "sys.exit(3)" in err["traceback"]


def test_a_builder_that_exits_on_import_fails_the_same_way_every_time(tmp_path, calls):
    """pytest loads a network once per hypothesis item: the second load must not find a half-imported module."""
    spec, _ = _two_networks(tmp_path, "exit_on_import")
    first = pipeline.verify_spec(spec, progress=False, hypotheses=["bad"])["errors"][0]["message"]
    second = pipeline.verify_spec(spec, progress=False, hypotheses=["bad"])["errors"][0]["message"]
    assert first == second and "sys.exit('refusing to load')" in second


def test_sys_exit_during_alignment_fails_only_that_hypothesis(tmp_path, monkeypatch):
    (tmp_path / "net.py").write_text(NET)
    spec = tmp_path / "eq.causal"
    spec.write_text(SPEC)

    def align(spec, name, **kw):
        if name == "good":
            sys.exit("an encoder gave up")
        return fake_result(name, 500, 1000)

    monkeypatch.setattr(pipeline, "_align", align)
    doc = pipeline.verify_spec(spec, progress=False)
    assert [h["name"] for h in doc["hypotheses"]] == ["bad"]
    assert doc["errors"][0]["hypothesis"] == "good" and "SystemExit" in doc["errors"][0]["message"]


def test_keyboard_interrupt_still_stops_the_run(tmp_path, monkeypatch):
    (tmp_path / "net.py").write_text(NET)
    spec = tmp_path / "eq.causal"
    spec.write_text(SPEC)
    monkeypatch.setattr(pipeline, "_align", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        pipeline.verify_spec(spec, progress=False)


def test_other_specs_still_run_and_every_output_is_written(tmp_path, calls, capsys):
    """verify over two specs: the one whose builder exits is an error, the other is verified;
    JSON, JUnit and HTML all say so; exit 2."""
    import xml.etree.ElementTree as ET
    (tmp_path / "a").mkdir()
    broken, _ = _two_networks(tmp_path / "a", "sys_exit")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "net.py").write_text(NET)
    (tmp_path / "b" / "ok.causal").write_text(SPEC)
    out = tmp_path / "out"
    code = main(["verify", str(broken), str(tmp_path / "b" / "ok.causal"), "--quiet", "--no-cache",
                 "--json", str(out / "r.json"), "--junit", str(out / "j.xml"), "--html", str(out / "r.html")])
    assert code == 2
    docs = json.loads((out / "r.json").read_text())["results"]
    assert [len(d["hypotheses"]) for d in docs] == [1, 2]
    assert len(ET.parse(out / "j.xml").getroot().findall("testsuite")) == 2
    assert (out / "r-eq.html").exists() and (out / "r-ok.html").exists()
