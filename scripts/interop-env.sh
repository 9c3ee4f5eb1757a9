#!/usr/bin/env bash
# Installs the Python packages the interoperability tests use as an independent client of our
# files (transformers loads our Hugging Face exports, tokenizers checks our BPE, tbparse reads our
# TensorBoard events) into the project's own venv, pinned. Never needed to train: only tests run
# Python. Idempotent: a stamp in the venv records what was installed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

packages=("${CCA_INTEROP_PACKAGES[@]}")
python="$CCA_TORCH_VENV/bin/python"
[[ -x "$python" ]] || cca_die "no project venv at $CCA_TORCH_VENV: run 'bash scripts/setup.sh' first"
stamp="$CCA_TORCH_VENV/.cca-interop"
if [[ -f "$stamp" && "$(cat "$stamp")" == "${packages[*]}" ]]; then exit 0; fi
cca_log "installing the interop test packages: ${packages[*]}"
"$python" -m pip install --quiet --disable-pip-version-check "${packages[@]}" ||
  cca_die "pip could not install ${packages[*]} into $CCA_TORCH_VENV (PyPI unreachable?)"
echo "${packages[*]}" > "$stamp"
