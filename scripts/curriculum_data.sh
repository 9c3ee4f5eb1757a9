#!/usr/bin/env bash
# Builds the two sources of configs/examples/curriculum.yaml from the built-in corpus: its
# dictionary entries split by kind, short ones ("glosses": a single definition, up to 200
# characters of JSONL) and long ones ("articles": several senses, etymology, quotations), each
# tokenized with the built-in tokenizer so that both sources share it (a mixture requires that).
#   bash scripts/curriculum_data.sh [builtin folder] [output folder]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

builtin="${1:-data/builtin}"
output="${2:-data/curriculum}"
cca_data="${CCA_BUILD_DIR}/bin/cca-data"
[[ -x "$cca_data" ]] || cca_die "$cca_data not found: build it first (bash scripts/build.sh)"
[[ -f "$builtin/manifest.json" ]] || "$cca_data" builtin -o "$builtin"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
awk -v dir="$work" '{ print > (dir "/" (length($0) <= 200 ? "glosses" : "articles") ".jsonl") }' \
  "$builtin/corpus.jsonl"
for kind in glosses articles; do
  "$cca_data" prepare -i "$work/$kind.jsonl" -t "$builtin/tokenizer.model" -o "$output/$kind" \
    --val-fraction 0.02 --force
done
