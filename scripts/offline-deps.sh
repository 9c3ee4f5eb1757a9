#!/usr/bin/env bash
# The offline dependency bundle, for GPU machines that cannot download anything.
#
#   bash scripts/offline-deps.sh fetch  [DIR]          # where the network is: .debs into DIR
#   bash scripts/offline-deps.sh unpack [DIR] [PREFIX] # on the air-gapped machine
#
# DIR defaults to .deps/debs and PREFIX to .deps/root (both ignored by git). scripts/build.sh
# adds PREFIX/usr to CMAKE_PREFIX_PATH when it exists; CMake records the library folder in the
# binaries' rpath, so nothing needs LD_LIBRARY_PATH. LibTorch is not in the bundle: the GPU
# machine's own PyTorch provides it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# Headers, CMake configs and the shared libraries they need at run time (Debian 12 builds; they
# run on newer glibc/libstdc++ such as Ubuntu 24.04's).
CCA_BUNDLE_PACKAGES=(
  libyaml-cpp-dev libyaml-cpp0.7
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9
  libcli11-dev
  libgtest-dev libgmock-dev googletest
  libsentencepiece-dev libsentencepiece0
  libxxhash-dev  # linked statically (libxxhash.a): no run-time package to carry
  libpcre2-dev libunistring-dev  # tokenizer.json regexes and normalization, linked statically too
  libgloo-dev  # headers only: ProcessGroupGloo.hpp includes them; the code is in libtorch_cpu
  dict-gcide  # the built-in corpus's text: cca-data builtin --dict .deps/root/usr/share/dictd/...
)

fetch() {
  local dir="${1:-$CCA_ROOT/.deps/debs}"
  mkdir -p "$dir"
  command -v apt-get >/dev/null || cca_die "fetch needs apt-get (a Debian machine with network)"
  cca_log "fetching ${#CCA_BUNDLE_PACKAGES[@]} packages into $dir"
  (cd "$dir" && apt-get download -qq "${CCA_BUNDLE_PACKAGES[@]}") ||
    cca_die "apt-get download failed; run 'apt-get update' first"
  (cd "$dir" && sha256sum ./*.deb > SHA256SUMS)
  cca_log "bundle ready: $(du -sh "$dir" | cut -f1) in $dir (carry this folder to the GPU machine)"
}

unpack() {
  local dir="${1:-$CCA_ROOT/.deps/debs}" prefix="${2:-$CCA_DEPS_PREFIX}" deb pkg missing=()
  [[ -d "$dir" ]] || cca_die "no bundle folder '$dir'; make one with: bash scripts/offline-deps.sh fetch"
  for pkg in "${CCA_BUNDLE_PACKAGES[@]}"; do
    compgen -G "$dir/${pkg}_*.deb" >/dev/null || missing+=("$pkg")
  done
  ((${#missing[@]} == 0)) || cca_die "bundle '$dir' lacks: ${missing[*]}"
  if [[ -f "$dir/SHA256SUMS" ]]; then
    (cd "$dir" && sha256sum --quiet -c SHA256SUMS) || cca_die "bundle '$dir' is corrupt (checksum mismatch)"
  fi
  mkdir -p "$prefix"
  for deb in "$dir"/*.deb; do dpkg-deb -x "$deb" "$prefix"; done
  cca_log "unpacked $(ls "$dir"/*.deb | wc -l) packages into $prefix"
}

case "${1:-}" in
  fetch) shift; fetch "$@" ;;
  unpack) shift; unpack "$@" ;;
  *) sed -n '2,11p' "${BASH_SOURCE[0]}"; exit 2 ;;
esac
