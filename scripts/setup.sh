#!/usr/bin/env bash
# Set up everything from nothing: a virtualenv in .venv with the CPU build of torch and abstract.
# Idempotent: a second run only checks that the install is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, abstract, pytest, hypothesis, tracr, ruff, mypy, ray" >/dev/null 2>&1; then
    .venv/bin/python -m pip install -q --upgrade pip
    # torch first, pinned: on this project's machines torch==2.13.0 resolves to a CPU wheel kept on
    # local disk; an unpinned torch would pull a multi-GB CUDA build. Elsewhere, install any torch
    # build you like first (pyproject's range accepts it) and this step leaves it alone.
    .venv/bin/python -c "import torch" >/dev/null 2>&1 || .venv/bin/python -m pip install -q torch==2.13.0
    # groundtruth: tracr (with JAX and dm-haiku, ~20 s) for the tracr-compiled ground-truth tests;
    # without it those tests skip. ray: the Ray executor and its tests (tests/executors/test_ray.py);
    # multi-device: accelerate, for `device_map` on hf networks
    .venv/bin/python -m pip install -q -e ".[test,groundtruth,ray,multi-device]"
fi
