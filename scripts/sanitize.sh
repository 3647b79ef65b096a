#!/usr/bin/env bash
# Builds charlm with AddressSanitizer + UndefinedBehaviorSanitizer in build-asan/ and runs the whole test suite there.
# Any sanitizer report aborts the test that caused it (-fno-sanitize-recover=all), so CTest fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup.sh >/dev/null  # packages and corpus, as for the plain build

cmake_args=()
if [ "${CI:-}" = "true" ]; then cmake_args+=(-DCHARLM_WERROR=ON); fi
# Optimized with debug info: the training tests stay fast enough, and reports still name files and lines.
# Without MPI: Open MPI's own allocations make LeakSanitizer fail every run under mpirun, and this way CI also builds
# and tests the build without MPI (whose mpirun tests say SKIPPED).
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHARLM_SANITIZE=ON -DCHARLM_MPI=OFF "${cmake_args[@]}" >/dev/null
cmake --build build-asan -j "$(nproc)"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
cd build-asan
start=$(date +%s)
ctest --output-on-failure -j "$(nproc)"
echo "sanitize: ASan+UBSan suite passed in $(($(date +%s) - start)) s"
