#!/usr/bin/env bash
# The README's second command (and all that .ci/run does): installs what is missing, builds,
# and runs every test (unit and integration) with CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir "${DAGD_BUILD_DIR:-build}" --output-on-failure -j2 "$@"
