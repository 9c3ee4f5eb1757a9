#!/usr/bin/env bash
# Installs the interop tests' Python packages, builds (incrementally) and runs every test.
# GPU tests skip, saying so, where no GPU is visible.
# Extra arguments go to ctest, e.g. -R Config.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bash "$CCA_ROOT/scripts/interop-env.sh"
bash "$CCA_ROOT/scripts/build.sh"
ctest --test-dir "$CCA_BUILD_DIR" --output-on-failure -j "${CCA_JOBS:-$(nproc)}" "$@"
