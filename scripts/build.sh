#!/usr/bin/env bash
# Configures (once) and builds cca-train into build/ (or $CCA_BUILD_DIR).
# Finds LibTorch through $CCA_TORCH_PREFIX, the project's venv or the system python's torch, and
# the offline dependency bundle in .deps/root when present.
# Extra arguments (and $CCA_CONFIGURE_ARGS) go to CMake's configure step,
# e.g. -DCCA_CUDA_ARCHITECTURES="90a;80".
# $CCA_TARGETS (space-separated) builds only those targets, e.g. CCA_TARGETS="cca-bench test_ops".
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

torch_prefix="$(cca_torch_prefix)" ||
  cca_die "LibTorch not found: run 'bash scripts/setup.sh' (or set CCA_TORCH_PREFIX)"
prefixes="$torch_prefix"
[[ -d "$CCA_DEPS_PREFIX/usr" ]] && prefixes="$prefixes;$CCA_DEPS_PREFIX/usr"

cca_ccache_env
cuda_args=()
if nvcc_path="$(cca_find_nvcc)"; then cuda_args=(-DCMAKE_CUDA_COMPILER="$nvcc_path"); fi

# Extra configure arguments: this script's own, then $CCA_CONFIGURE_ARGS (space-separated).
read -r -a env_args <<<"${CCA_CONFIGURE_ARGS:-}"
configure_args=("$@" "${env_args[@]}")
if [[ ! -f "$CCA_BUILD_DIR/build.ninja" || ${#configure_args[@]} -gt 0 ]]; then
  cmake -S "$CCA_ROOT" -B "$CCA_BUILD_DIR" -G Ninja \
    -DCMAKE_PREFIX_PATH="$prefixes" "${CCA_LAUNCHER_ARGS[@]}" "${cuda_args[@]}" "${configure_args[@]}"
fi
cmake --build "$CCA_BUILD_DIR" -j "${CCA_JOBS:-$(nproc)}" ${CCA_TARGETS:+--target $CCA_TARGETS}
