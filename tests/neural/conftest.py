"""Fixtures for tests/neural: one tiny model per LM family, built once per session."""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
for path in (ROOT, HERE):  # works under any --import-mode
    if path not in sys.path:
        sys.path.insert(0, path)

from neural_testkit import LM_FAMILIES, build_lm  # noqa: E402

_CACHE: dict = {}


@pytest.fixture(params=LM_FAMILIES)
def lm(request):
    fam = request.param
    if fam not in _CACHE:
        _CACHE[fam] = build_lm(fam)
    return _CACHE[fam]
