"""docs/api.md stays true: every Python block of it runs, in order, in an empty folder."""
from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_docs_have_examples():
    blocks = python_blocks(DOC.read_text(encoding="utf-8"))
    assert len(blocks) >= 5, "docs/api.md lost its examples"


def test_every_python_block_of_docs_api_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {"__name__": "__docs_api__"}
    for i, block in enumerate(python_blocks(DOC.read_text(encoding="utf-8")), 1):
        code = compile(block, f"docs/api.md (python block {i})", "exec")
        exec(code, namespace)  # noqa: S102 -- the documentation's own examples
    assert (tmp_path / "out" / "report.html").is_file()
    printed = capsys.readouterr().out
    assert "FAIL  iia(a) >= 0.9" in printed and "<Results pair.causal: FAIL" in printed
