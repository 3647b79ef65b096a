#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan) in build-fuzz/ and runs each for FUZZ_SECONDS on a copy of its seeds.
# Usage: scripts/fuzz.sh [target ...]   (targets: utf8 config vocab checkpoint safetensors archive metrics; default all). FUZZ_SECONDS=30 by default.
# A crash, sanitizer report, timeout or out-of-memory fails the script; the input is kept in build-fuzz/artifacts/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${FUZZ_SECONDS:-30}
targets=("$@")
if ((${#targets[@]} == 0)); then targets=(utf8 config vocab checkpoint safetensors archive metrics); fi

source scripts/install_missing.sh
install_missing fuzz clang cmake make libcli11-dev nlohmann-json3-dev libspdlog-dev libopenblas-dev doctest-dev libarchive-dev
# libFuzzer and the sanitizer runtimes ship separately, versioned like the compiler.
clang_major=$(clang -dumpversion | cut -d. -f1)
install_missing fuzz "libclang-rt-${clang_major}-dev"

cmake_args=()
if [ "${CI:-}" = "true" ]; then cmake_args+=(-DCHARLM_WERROR=ON); fi
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHARLM_FUZZ=ON \
  "${cmake_args[@]}" >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/%/_fuzz}"

# The committed seeds stay as they are: the fuzzer grows a scratch copy.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p build-fuzz/artifacts
failed=()
for name in "${targets[@]}"; do
  cp -r "fuzz/corpus/$name" "$scratch/$name"
  echo "fuzz: $name for ${seconds}s on $(find "fuzz/corpus/$name" -type f | wc -l) seeds"
  # -timeout makes a hang on one input a finding; -rss_limit_mb does the same for runaway allocation.
  if ! "build-fuzz/${name}_fuzz" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/artifacts/${name}-" "$scratch/$name" >"$scratch/$name.log" 2>&1; then
    tail -n 60 "$scratch/$name.log" >&2
    failed+=("$name")
    continue
  fi
  grep -E "^stat::number_of_executed_units|^Done" "$scratch/$name.log" | tr '\n' ' '
  echo
done
if ((${#failed[@]})); then
  echo "fuzz: FINDINGS in ${failed[*]}; reproduce with build-fuzz/<name>_fuzz build-fuzz/artifacts/<file>" >&2
  exit 1
fi
echo "fuzz: no findings in ${targets[*]} (${seconds}s each)"
