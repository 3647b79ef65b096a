#!/usr/bin/env bash
# Builds charlm and runs the whole test suite (CTest prints the summary line).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bash "$root/scripts/setup.sh"
cd "$root/build"
ctest --output-on-failure -j "$(nproc)"
