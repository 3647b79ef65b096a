#!/usr/bin/env bash
# Builds charlm and trains the default config on the Jay Chou lyrics: perplexity and generated text; the last line
# it prints is the path of the run's report.html (learning curves and samples, rewritten after every epoch).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# The demo builds only what it runs: the executable, not the test suite.
CHARLM_TARGETS="charlm" bash "$root/scripts/setup.sh"
cd "$root"
if [ ! -f corpus/jaychou_lyrics.txt ]; then
  echo "demo: corpus/jaychou_lyrics.txt is missing; put any UTF-8 text file there and run again" >&2
  exit 1
fi
exec build/charlm train --config configs/default.json "$@"
