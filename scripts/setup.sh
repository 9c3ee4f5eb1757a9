#!/usr/bin/env bash
# Sets up a fresh Debian machine and builds cca-train:
#   1. Debian packages (idempotent, non-interactive),
#   2. the pinned LibTorch (PyPI torch in a virtual environment shared by all clones),
#   3. configure and build the programs the README's first command runs (cca-train, cca-data,
#      cca-generate; scripts/test.sh builds the rest: tests and cca-bench),
#   4. the built-in corpus: tokenizer + token shards in data/builtin (skipped when present).
# Usage: bash scripts/setup.sh [--no-build]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

build=1
for arg in "$@"; do
  case "$arg" in
    --no-build) build=0 ;;
    -h|--help) sed -n '2,8p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) cca_die "unknown option '$arg' (allowed: --no-build)" ;;
  esac
done

install_torch() {
  local py="$CCA_TORCH_VENV/bin/python"
  if [[ -x "$py" ]] &&
     [[ "$("$py" -c 'import torch; print(torch.__version__)' 2>/dev/null)" == "$CCA_TORCH_VERSION"* ]]; then
    cca_log "LibTorch: torch $CCA_TORCH_VERSION present in $CCA_TORCH_VENV"
    { "$CCA_TORCH_VENV/bin/pip" show -q nvidia-cuda-crt && "$CCA_TORCH_VENV/bin/pip" show -q nvidia-cuda-cccl; } >/dev/null 2>&1 ||
      "$CCA_TORCH_VENV/bin/pip" install -q --disable-pip-version-check "${CCA_TORCH_EXTRAS[@]}"
    return
  fi
  cca_log "LibTorch: installing torch==$CCA_TORCH_VERSION from PyPI into $CCA_TORCH_VENV (~5 GB with its CUDA 13 runtime wheels, ~2 min)"
  mkdir -p "$(dirname "$CCA_TORCH_VENV")"
  python3 -m venv "$CCA_TORCH_VENV"
  "$CCA_TORCH_VENV/bin/pip" install -q --disable-pip-version-check "torch==$CCA_TORCH_VERSION" \
    "${CCA_TORCH_EXTRAS[@]}"
}

cca_apt_install "Debian packages" "${CCA_APT_PACKAGES[@]}"
install_torch
if ((build)); then
  CCA_TARGETS="cca-train cca-data cca-generate" bash "$CCA_ROOT/scripts/build.sh"
  "$CCA_BUILD_DIR/bin/cca-data" builtin --output "$CCA_ROOT/data/builtin"
fi
