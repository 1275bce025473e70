"""Specs written to a temporary folder name their builders in tests/validity by absolute path."""
from __future__ import annotations

from pathlib import Path

FAULTY_NETS = Path(__file__).resolve().parent / "faulty_nets.py"


def with_builders(spec_text: str) -> str:
    """``spec_text`` with every `torch "faulty_nets.py:fn"` pointing at this folder's file."""
    return spec_text.replace('"faulty_nets.py:', f'"{FAULTY_NETS}:')
