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
  for t in test_ops test_cuda_paths test_cca_kernels test_attention_cca test_moe test_trainer; do
    step "$t" "$bin/$t" --gtest_filter="$cuda_tests"
  done
fi

# racecheck reports the vendors' Hopper kernels (cuBLAS's nvjet_* GEMMs, cuDNN's generated SDPA:
# warp-specialised, asynchronous copies) on every call, and excluding them makes the tool fail;
# so the log is read instead: the step passes when every test passed and no hazard names a kernel
# of anyone else (ours).
race_step() {
  local name="$1"
  shift
  local start=$SECONDS log="$out/$name.log"
  "$sanitizer" --tool racecheck "$@" >"$log" 2>&1
  local ours
  ours=$(grep "access at" "$log" | grep -v -e nvjet -e cudnn_generated -c)
  local verdict=ok
  grep -q '^\[  PASSED  \]' "$log" && ! grep -q '^\[  FAILED  \]' "$log" && [[ $ours == 0 ]] ||
    verdict=FAIL
  printf '%-4s  %s (%d s; %s hazards outside cuBLAS/cuDNN)\n' "$verdict" "$name" $((SECONDS - start)) \
    "$ours"
}

if [[ " $steps " == *" sanitize "* ]]; then
  sanitizer="$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)"
  [[ -x "$sanitizer" ]] || cca_die "compute-sanitizer not found (PATH or /usr/local/cuda/bin)"
  cca_cases='CcaKernels.*:Shapes/CcaKernelCase.*'
  step sanitize-memcheck-ops "$sanitizer" --tool memcheck --error-exitcode 1 \
    "$bin/test_ops" --gtest_filter="$kernel_tests"
  step sanitize-memcheck-cca "$sanitizer" --tool memcheck --error-exitcode 1 \
    "$bin/test_cca_kernels" --gtest_filter="$cca_cases"
  step sanitize-memcheck-moe "$sanitizer" --tool memcheck --error-exitcode 1 \
    "$bin/test_moe" --gtest_filter='TokenPermutationCuda.*'
  # The bf16 cross-entropy test is mostly cuBLAS (minutes under racecheck); its kernel is the
  # one the fp32 test runs. The CCA cases: one per dtype and head dim, conv layout and length.
  race_step sanitize-racecheck-ops "$bin/test_ops" \
    --gtest_filter="$kernel_tests:-ChunkedCrossEntropyCuda.Bf16AutocastCloseToFp32"
  race_step sanitize-racecheck-cca "$bin/test_cca_kernels" --gtest_filter="CcaKernels.*:$(
    printf 'Shapes/CcaKernelCase.*/%s:' zaya_bf16_d128_g4 cca_bf16_d128_g1_long bf16_d64_g1_k3_k4 \
      bf16_d256_g2_k4_k1 bf16_d64_seq1 bf16_convs0 fp16_d128_g4 fp32_d64_g2 fp32_convs1_no_shift
  )"
fi

if [[ " $steps " == *" bench "* ]]; then
  bench="$bin/cca-bench train --warmup 3 --phase-steps 3"
  [[ -d data/builtin ]] || step cca-data "$bin/cca-data" builtin \
    --dict "$CCA_DEPS_PREFIX/usr/share/dictd/gcide.dict.dz" \
    --index "$CCA_DEPS_PREFIX/usr/share/dictd/gcide.index"
  step bench-gpt2 $bench --config configs/gpt2-small/mha.yaml \
    --compare configs/gpt2-small/cca.yaml --steps 15 --profile-steps 2 --json "$out/gpt2.json"
  step bench-gpt2-graphs $bench --config configs/gpt2-small/mha.yaml --set train.cuda_graphs=true \
    --steps 15 --profile-steps 2 --json "$out/gpt2-graphs.json"
  step bench-1b-mha $bench --config configs/1b/mha.yaml --set train.grad_accum=2 --steps 10 \
    --profile-steps 2 --json "$out/1b-mha.json"
  step bench-1b-8k $bench --config configs/1b/mha.yaml --compare configs/1b/cca.yaml \
    --set train.seq_len=8192 --set train.micro_batch_size=2 --set train.grad_accum=2 --steps 4 \
    --profile-steps 0 --json "$out/1b-8k.json"
  step bench-1b-fp8 $bench --config configs/1b/mha.yaml --compare configs/examples/fp8.yaml \
    --set train.grad_accum=2 --steps 10 --profile-steps 2 --json "$out/1b-fp8.json"
  step bench-moe-mha $bench --config configs/moe/mha.yaml --set train.grad_accum=2 --steps 6 \
    --profile-steps 2 --json "$out/moe-mha.json"
fi
