#!/usr/bin/env bash
# Set up (if needed) and verify the shipped hierarchical-equality spec on an MLP the tool trains
# itself; writes out/results.json, out/junit.xml and out/report.html.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/abstract demo "$@"
