#!/usr/bin/env bash
# The GPU-side checks in one go, for a GPU machine with built (or carried) binaries in build/bin:
# every CUDA test, then compute-sanitizer memcheck and racecheck on the kernels' tests, then
# `cca-bench train` on the reference configs. Logs and JSON go to DIR (default gpu-check/), one
# file per step, and a summary line per step to stdout. Steps whose binary is missing are
# skipped, so a partial build still checks what it has.
#
#   bash scripts/gpu-check.sh [DIR]            # tests + sanitizers + benchmarks
#   CCA_GPU_CHECK="tests" bash scripts/gpu-check.sh   # any of: tests sanitize bench
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

out="${1:-$CCA_ROOT/gpu-check}"
steps="${CCA_GPU_CHECK:-tests sanitize bench}"
bin="$CCA_BUILD_DIR/bin"
mkdir -p "$out"
cd "$CCA_ROOT" || exit 1

cuda_tests='*Cuda*:CcaKernel*:Shapes/CcaKernelCase.*:TrainerCrossDevice.*'
kernel_tests='SwiGluCuda.*:RmsNormCuda.*:AddRmsNormCuda.*:RotaryCuda.*:ChunkedCrossEntropyCuda.*'

# Runs "$@" with its output in $out/$name.log and prints one line with the exit status.
step() {
  local name="$1"
  shift
  [[ -x "$1" ]] || { echo "skip  $name ($1 not built)"; return; }
  local start=$SECONDS
  "$@" >"$out/$name.log" 2>&1
  local rc=$?
  printf '%-4s  %s (%d s)\n' "$([[ $rc == 0 ]] && echo ok || echo FAIL)" "$name" $((SECONDS - start))
}

if [[ " $steps " == *" tests "* ]]; then
  for t in test_ops test_cuda_paths test_cca_kernels test_attention_cca test_trainer; do
    step "$t" "$bin/$t" --gtest_filter="$cuda_tests"
  done
fi

if [[ " $steps " == *" sanitize "* ]]; then
  sanitizer="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
  [[ -x "$sanitizer" ]] || cca_die "compute-sanitizer not found (PATH or /usr/local/cuda/bin)"
  for tool in memcheck racecheck; do
    # racecheck flags cuBLAS's Hopper GEMMs (nvjet_*, warp-specialised with async copies) on
    # every call; they are not ours to fix, and checking them takes most of the time.
    only_ours=()
    [[ $tool == racecheck ]] && only_ours=(--kernel-name-exclude kns=nvjet)
    step "sanitize-$tool-ops" "$sanitizer" --tool "$tool" "${only_ours[@]}" --error-exitcode 1 \
      "$bin/test_ops" --gtest_filter="$kernel_tests"
    step "sanitize-$tool-cca" "$sanitizer" --tool "$tool" "${only_ours[@]}" --error-exitcode 1 \
      "$bin/test_cca_kernels" --gtest_filter='CcaKernel*:Shapes/CcaKernelCase.*'
  done
fi

if [[ " $steps " == *" bench "* ]]; then
  bench="$bin/cca-bench train --warmup 3 --phase-steps 3 --profile-steps 2"
  [[ -d data/builtin ]] || step cca-data "$bin/cca-data" builtin \
    --dict "$CCA_DEPS_PREFIX/usr/share/dictd/gcide.dict.dz" \
    --index "$CCA_DEPS_PREFIX/usr/share/dictd/gcide.index"
  step bench-gpt2 $bench --config configs/gpt2-small/mha.yaml --compare configs/gpt2-small/cca.yaml \
    --steps 15 --json "$out/gpt2.json"
  step bench-1b-mha $bench --config configs/1b/mha.yaml --set train.grad_accum=2 --steps 5 \
    --json "$out/1b-mha.json"
  step bench-1b-8k $bench --config configs/1b/mha.yaml --compare configs/1b/cca.yaml \
    --set train.seq_len=8192 --set train.micro_batch_size=2 --set train.grad_accum=2 --steps 4 \
    --profile-steps 0 --json "$out/1b-8k.json"
  step bench-moe-mha $bench --config configs/moe/mha.yaml --set train.grad_accum=2 --steps 6 \
    --json "$out/moe-mha.json"
fi
