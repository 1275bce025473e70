#!/usr/bin/env bash
# Set up (if needed) and run the test suite. Extra arguments go to pytest, e.g. `-m slow`.
# Then the Ray executor tests (tests/executors/test_ray.py), which start a real local Ray node:
# Ray needs a loopback-only network namespace on sandboxed machines, so they run under
# `unshare -n` (root) or `unshare -rn` (unprivileged), and are skipped, saying so, when neither
# works. ABSTRACT_SKIP_RAY_TESTS=1 leaves them out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
if [ -n "${ABSTRACT_SKIP_RAY_TESTS:-}" ]; then
    exit 0
fi
if ! .venv/bin/python -c "import ray" >/dev/null 2>&1; then
    echo "skipping the Ray executor tests: ray is not installed (pip install -e '.[ray]')"
    exit 0
fi
RAY_TESTS=(.venv/bin/python -m pytest -q -p no:cacheprovider tests/executors/test_ray.py)
for ns in "unshare -n" "unshare -rn"; do
    if $ns sh -c 'ip link set lo up' >/dev/null 2>&1; then
        echo "Ray executor tests (a local Ray node, in a loopback-only network namespace: $ns)"
        exec $ns env ABSTRACT_RAY_TESTS=1 sh -c 'ip link set lo up && exec "$@"' sh "${RAY_TESTS[@]}"
    fi
done
echo "skipping the Ray executor tests: cannot make a network namespace here (unshare -n / unshare -rn failed)"
