# Shared by the project's scripts: where things live and how to find LibTorch. Source, don't run.
# shellcheck shell=bash

CCA_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CCA_BUILD_DIR="${CCA_BUILD_DIR:-$CCA_ROOT/build}"
# The one pinned LibTorch: PyPI's torch 2.11.0 is built for CUDA 13.0, like the GPU machine's.
CCA_TORCH_VERSION="2.11.0"
# LibTorch's CUDA headers include the CUDA runtime's, which need the crt/ headers: pip's torch
# brings the runtime but not those, nor the CCCL headers they include (3.3 MB together), which a
# machine without the CUDA toolkit lacks.
CCA_TORCH_EXTRAS=("cuda-toolkit[crt,cccl]==13.0.2")
# Shared by every clone on the machine, so a fresh clone (CI) reuses it.
CCA_TORCH_VENV="${CCA_TORCH_VENV:-$HOME/.cache/cca-train/torch-$CCA_TORCH_VERSION}"
# Where scripts/offline-deps.sh unpacks the .deb bundle on machines without a package manager.
CCA_DEPS_PREFIX="${CCA_DEPS_PREFIX:-$CCA_ROOT/.deps/root}"

# Debian packages a development or CI machine needs (the offline bundle carries the runtime ones).
CCA_APT_PACKAGES=(
  cmake ninja-build ccache g++ pkg-config git python3 python3-venv python3-pip clang-format
  libyaml-cpp-dev libspdlog-dev libfmt-dev libcli11-dev libgtest-dev libgmock-dev
  libsentencepiece-dev libxxhash-dev zlib1g-dev dict-gcide libgloo-dev libpcre2-dev
  libunistring-dev
)

# PyPI packages of the interoperability tests (scripts/interop-env.sh), pinned; tests only.
CCA_INTEROP_PACKAGES=(
  transformers==5.25.0 tokenizers==0.23.3 safetensors==0.8.0 tensorboard==2.21.0 tbparse==0.0.9
  sentencepiece==0.2.1  # transformers converts an exported tokenizer.model with it
)
# The interpreter the interoperability tests run (CMake passes it to ctest).
CCA_INTEROP_PYTHON="$CCA_TORCH_VENV/bin/python"

cca_log() { printf '[cca] %s\n' "$*" >&2; }
cca_die() { printf '[cca] error: %s\n' "$*" >&2; exit 1; }

# Prints the CMake prefix of LibTorch: $Torch_DIR's, our venv's, or the system python's torch.
cca_torch_prefix() {
  if [[ -n "${CCA_TORCH_PREFIX:-}" ]]; then echo "$CCA_TORCH_PREFIX"; return; fi
  local py
  for py in "$CCA_TORCH_VENV/bin/python" python3; do
    if command -v "$py" >/dev/null 2>&1 &&
       "$py" -c 'import torch' >/dev/null 2>&1; then
      "$py" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null
      return
    fi
  done
  return 1
}

# Installs the Debian packages given that are not installed yet (non-interactive, idempotent);
# $1 names them in the log ("Debian packages", "corpus packages").
cca_apt_install() {
  local what="$1" missing=() pkg
  shift
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$pkg")
  done
  if ((${#missing[@]} == 0)); then
    cca_log "$what: all present"
    return
  fi
  local sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  cca_log "$what: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# nvcc is often installed without being on PATH.
cca_find_nvcc() {
  if command -v nvcc >/dev/null 2>&1; then command -v nvcc; return; fi
  local candidate
  for candidate in /usr/local/cuda/bin/nvcc /usr/local/cuda-*/bin/nvcc; do
    [[ -x "$candidate" ]] && { echo "$candidate"; return; }
  done
  return 1
}

cca_ccache_env() {
  if command -v ccache >/dev/null 2>&1; then
    export CCACHE_BASEDIR="$CCA_ROOT"          # paths inside the clone hash alike in every clone
    export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
    export CCACHE_NOHASHDIR=1
    export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
    CCA_LAUNCHER_ARGS=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  else
    CCA_LAUNCHER_ARGS=()
  fi
}
