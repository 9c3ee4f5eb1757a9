#!/usr/bin/env bash
# End-to-end checks of the apps as a user runs them: exit codes and messages.
# Usage: bash tests/apps/test_cli.sh [BIN_DIR]   (BIN_DIR defaults to build/bin)
# Prints one line per check and finally "N passed, M failed"; exits non-zero if any check failed.
set -u

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin_arg="${1:-$repo/build/bin}"
if ! bin_dir="$(cd "$bin_arg" 2>/dev/null && pwd)"; then
  echo "FAIL binary folder '$bin_arg' does not exist"
  echo "0 passed, 1 failed"
  exit 1
fi
cd "$repo" || exit 1

train="$bin_dir/cca-train"
bench="$bin_dir/cca-bench"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
problems=()
out=""
err=""
rc=0

# run CMD...: runs CMD (killed after 300 s), keeping stdout, stderr and the exit status.
run() {
  timeout 300 "$@" >"$tmp/stdout" 2>"$tmp/stderr"
  rc=$?
  out="$(cat "$tmp/stdout")"
  err="$(cat "$tmp/stderr")"
}

problem() { problems+=("$1"); }
expect_rc() { [[ $rc -eq $1 ]] || problem "exit status $rc, expected $1"; }
expect_failure() { [[ $rc -ne 0 ]] || problem "exit status 0, expected a failure"; }
stream() { if [[ $1 == out ]]; then printf '%s' "$out"; else printf '%s' "$err"; fi; }
# expect_has out|err TEXT / expect_lacks out|err TEXT / expect_match out|err REGEX
expect_has() { [[ "$(stream "$1")" == *"$2"* ]] || problem "std$1 lacks '$2'"; }
expect_lacks() { [[ "$(stream "$1")" != *"$2"* ]] || problem "std$1 contains '$2'"; }
expect_match() { grep -Eq -- "$2" <<<"$(stream "$1")" || problem "std$1 matches no line of /$2/"; }
expect_err_starts_with() {
  [[ $err == "$1"* ]] || problem "stderr does not start with '$1'"
}
# A failure must be a one-line-per-problem message, never a crash or an exception trace.
expect_clean_failure() {
  local marker
  for marker in "terminate called" "what():" "Aborted" "core dumped" "Exception raised from" \
    "frame #" "Segmentation fault" "std::"; do
    expect_lacks err "$marker"
  done
  expect_err_starts_with "error:"
}

finish() {
  if ((${#problems[@]} == 0)); then
    passed=$((passed + 1))
    echo "ok   $1"
  else
    failed=$((failed + 1))
    echo "FAIL $1"
    local p
    for p in "${problems[@]}"; do echo "       $p"; done
    echo "       exit status: $rc"
    echo "       stdout: $(head -c 2000 <<<"$out" | sed '2,$s/^/               /')"
    echo "       stderr: $(head -c 2000 <<<"$err" | sed '2,$s/^/               /')"
  fi
  problems=()
}

# --- cca-train ------------------------------------------------------------------------------------

run "$train" --help
expect_rc 0
expect_has out "--config"
expect_has out "--dry-run"
expect_has out "--set"
finish "cca-train --help exits 0 and documents --config"

run "$train" --help-config
expect_rc 0
expect_has out "attention.cca.q_compression"
expect_has out "model.d_model  (int, default 768"
expect_has out "attention.kind  (enum, default mha; allowed mha | gqa | mla | cca | ccgqa | swa)"
finish "cca-train --help-config lists every key"

run "$train" --config configs/gpt2-small/cca.yaml --dry-run
expect_rc 0
expect_has out "parameters"
expect_has out "kv cache"
expect_has out "configs/gpt2-small/cca.yaml"
expect_has out "cca: 3 query heads, 3 kv heads"
expect_lacks err "error"
finish "cca-train --dry-run prints the derived values"

run "$train" --config configs/gpt2-small/cca.yaml --print-config
expect_rc 0
expect_match out "^  kind: cca  # configs/gpt2-small/cca\.yaml:[0-9]+:[0-9]+$"
expect_match out "^  d_model: 768  # configs/gpt2-small/base\.yaml:[0-9]+:[0-9]+$"
expect_match out "^  head_dim: 0$"
finish "cca-train --print-config shows values with their origins"

run "$train" --config configs/gpt2-small/cca.yaml --set train.steps=777 --print-config
expect_rc 0
expect_has out "steps: 777  # --set train.steps=777"
finish "cca-train --set overrides the file and is named as the origin"

printf 'model:\n  d_modle: 512\n' >"$tmp/unknown.yaml"
run "$train" --config "$tmp/unknown.yaml" --dry-run
expect_rc 2
expect_has err "did you mean"
expect_has err "unknown key 'model.d_modle' (did you mean 'model.d_model'?)"
expect_has err "$tmp/unknown.yaml:2:3"
expect_clean_failure
finish "cca-train: an unknown key exits 2 with a suggestion and no trace"

printf 'model:\n  n_layers: zero\n  d_model: 4\ntrain:\n  seq_len: 1\n' >"$tmp/three.yaml"
run "$train" --config "$tmp/three.yaml" --dry-run
expect_rc 2
expect_has err "(3 errors)"
expect_has err "$tmp/three.yaml:2:3"
expect_has err "$tmp/three.yaml:3:3"
expect_has err "$tmp/three.yaml:5:3"
expect_clean_failure
finish "cca-train reports every problem of a config at once"

printf 'model:\n  d_model: [768\n' >"$tmp/syntax.yaml"
run "$train" --config "$tmp/syntax.yaml" --dry-run
expect_rc 2
expect_has err "YAML syntax error"
expect_match err "syntax\.yaml:[0-9]+:[0-9]+: YAML syntax error"
expect_clean_failure
finish "cca-train: a YAML syntax error exits 2 naming file:line:col"

run "$train" --config configs/gpt2-small/cca.yaml --set attention.kind=bogus --dry-run
expect_rc 2
expect_has err "--set attention.kind=bogus"
expect_has err "'bogus' is not one of mha | gqa | mla | cca | ccgqa"
expect_clean_failure
finish "cca-train --set attention.kind=bogus exits 2"

run "$train" --config configs/gpt2-small/cca.yaml --set train.lr=0.1 --dry-run
expect_rc 2
expect_has err "did you mean 'optim.lr'"
expect_clean_failure
finish "cca-train --set with an unknown key exits 2 with a suggestion"

run "$train" --config "$tmp/does-not-exist.yaml" --dry-run
expect_rc 2
expect_has err "does-not-exist.yaml"
expect_has err "does not exist"
expect_clean_failure
finish "cca-train: a missing --config file exits 2 (usage) with a clear message"

run "$train" --dry-run
expect_rc 2
expect_has err "--config FILE is required"
expect_clean_failure
finish "cca-train without --config asks for one and exits 2 (usage)"

run "$train" --config configs/quickstart.yaml --dry-rn
expect_rc 2
expect_has err "--dry-rn"
expect_clean_failure
finish "cca-train: an unknown flag exits 2 (usage), not CLI11's own code"

run "$train" --config configs/quickstart.yaml --set "data.train=$tmp/nowhere/train_*.bin" \
  --set "run.dir=$tmp/run"
expect_rc 1
expect_err_starts_with "error:"
expect_has err "$tmp/nowhere/train_*.bin"
expect_clean_failure
finish "cca-train names the training data it cannot find"

run "$train" --config configs/quickstart.yaml --resume "$tmp/no-such-run" --set "run.dir=$tmp/run"
expect_rc 1
expect_has err "no-such-run"
expect_clean_failure
finish "cca-train --resume with a path that holds no checkpoint fails clearly"

run "$train" export --checkpoint "$tmp/no-such-run" --out "$tmp/export"
expect_rc 1
expect_has err "--checkpoint '$tmp/no-such-run': not a complete, intact checkpoint"
expect_clean_failure
finish "cca-train export without a checkpoint fails clearly"

run "$train" verify "$tmp/no-such-run"
expect_rc 1
expect_has err "verify '$tmp/no-such-run': no such folder"
expect_clean_failure
finish "cca-train verify of a missing run fails clearly"

run "$train" eval "$tmp/no-such-run" --device cpu
expect_rc 1
expect_has err "eval: run folder '$tmp/no-such-run' does not exist"
expect_clean_failure
finish "cca-train eval of a missing run fails clearly"

run "$train" eval "$tmp/no-such-run" --device tpu
expect_rc 2
expect_has err "--device"
finish "cca-train eval refuses a device other than cpu or cuda"

WORLD_SIZE=2 run "$train" --config configs/gpt2-small/mha.yaml --dry-run
expect_rc 0
expect_has out "(world size 2)"
expect_has out "128 sequences"
finish "cca-train takes the world size from WORLD_SIZE"

WORLD_SIZE=two run "$train" --config configs/gpt2-small/mha.yaml --dry-run
expect_rc 1
expect_has err "WORLD_SIZE"
expect_clean_failure
finish "cca-train rejects a malformed WORLD_SIZE"

# From a scratch folder: out_dir is relative to the current one, and runs this checkout has
# already finished would be listed as finished instead of with their commands.
pushd "$tmp" >/dev/null || exit 1
run "$train" sweep --config "$repo/configs/ablations/attention.yaml" --dry-run
popd >/dev/null || exit 1
expect_rc 0
expect_has out "mha: cca-train --config $repo/configs/ablations/base/small.yaml"
expect_has out "ccgqa"
expect_lacks err "error"
finish "cca-train sweep --dry-run prints the plan of a shipped sweep"

printf 'base: %s/configs/quickstart.yaml\nruns:\n  a: {attention.knd: mha}\n' "$repo" >"$tmp/sweep.yaml"
run "$train" sweep --config "$tmp/sweep.yaml" --dry-run
expect_rc 2
expect_has err "$tmp/sweep.yaml:3:7: unknown key 'attention.knd' (did you mean 'attention.kind'?) [run 'a']"
expect_clean_failure
finish "cca-train sweep names the sweep file's line, the run and the key of a bad setting"

mkdir -p "$tmp/not-a-run"
run "$train" report "$tmp/not-a-run"
expect_rc 1
expect_has err "'$tmp/not-a-run' has no metrics.jsonl"
expect_clean_failure
finish "cca-train report on a folder without runs fails clearly"

# --- cca-bench ------------------------------------------------------------------------------------

run "$bench" device
expect_rc 0
expect_has out "LibTorch 2."
finish "cca-bench device exits 0 and names the runtime"

run "$bench"
expect_rc 2
expect_has err "A subcommand is required"
expect_lacks err "terminate called"
finish "cca-bench without a subcommand fails"

run "$bench" train --config configs/quickstart.yaml --dry-run
expect_rc 0
expect_has out "parameters"
finish "cca-bench train --dry-run validates the config"

run "$bench" train --config configs/quickstart.yaml --compare "$tmp/no-such.yaml" --steps 1
expect_rc 2
expect_has err "no-such.yaml"
expect_has err "does not exist"
expect_clean_failure
finish "cca-bench train --compare with a missing config fails before training"

# --- cca-data -------------------------------------------------------------------------------------

data_app="$bin_dir/cca-data"
run "$data_app" --help
expect_rc 0
expect_has out "builtin"
finish "cca-data --help lists the subcommands"

run "$data_app" inspect "$tmp/no-such-shard.bin"
expect_rc 1
expect_err_starts_with "error:"
expect_has err "no-such-shard.bin"
expect_clean_failure
finish "cca-data inspect of a missing file names it"

printf 'not a shard at all' >"$tmp/garbage.bin"
run "$data_app" inspect "$tmp/garbage.bin"
expect_failure
expect_has err "garbage.bin"
expect_clean_failure
finish "cca-data inspect of a garbage file is a clean error"

echo "$passed passed, $failed failed"
((failed == 0))
