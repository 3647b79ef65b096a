#!/usr/bin/env bash
# Installs missing Debian packages, puts the corpus in place and builds charlm into build/.
# Usage: scripts/setup.sh [extra cmake arguments]; CHARLM_TARGETS="charlm" builds only those targets (default: all)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

source scripts/install_missing.sh
install_missing setup g++ cmake make libcli11-dev nlohmann-json3-dev libspdlog-dev libopenblas-dev doctest-dev libdnnl-dev libarchive-dev \
  libopenmpi-dev openmpi-bin bsdutils man-db

mkdir -p corpus
if [ ! -f corpus/jaychou_lyrics.txt ]; then
  if [ -f ../shared/corpus/jaychou_lyrics.txt ]; then
    cp ../shared/corpus/jaychou_lyrics.txt corpus/jaychou_lyrics.txt
    echo "setup: copied the lyrics corpus to corpus/jaychou_lyrics.txt"
  else
    echo "setup: corpus/jaychou_lyrics.txt is missing and ../shared/corpus/ is not there;" \
         "put any UTF-8 text file at corpus/jaychou_lyrics.txt to train on it" >&2
  fi
fi

cmake_args=()
if [ "${CI:-}" = "true" ]; then cmake_args+=(-DCHARLM_WERROR=ON); fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${cmake_args[@]}" "$@" >/dev/null
# shellcheck disable=SC2086  # the targets are words
cmake --build build -j "$(nproc)" ${CHARLM_TARGETS:+--target $CHARLM_TARGETS}
