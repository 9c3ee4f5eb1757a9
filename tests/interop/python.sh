#!/usr/bin/env bash
# Runs an interoperability test script with the project venv's Python (scripts/interop-env.sh
# installs its pinned packages): python.sh SCRIPT.py ARGS...
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/common.sh"
[[ -x "$CCA_INTEROP_PYTHON" ]] ||
  cca_die "no Python at $CCA_INTEROP_PYTHON: run 'bash scripts/setup.sh' and 'bash scripts/interop-env.sh'"
exec env OMP_NUM_THREADS=1 PYTHONDONTWRITEBYTECODE=1 "$CCA_INTEROP_PYTHON" "$@"
