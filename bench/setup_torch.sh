#!/bin/sh
# Makes bench/.venv, a virtual environment with today's PyTorch from PyPI, for the reference benchmarks (not the tests).
#   python=$(sh bench/setup_torch.sh)          # the interpreter's path is the last (and only) line on stdout
#   bench/compare.py --python "$python"        # the comparison against today's PyTorch (docs/benchmarks.md)
#   sh bench/setup_torch.sh --upgrade          # install the newest torch again into an existing bench/.venv
# An existing bench/.venv whose torch imports is reused as it is, so later runs measure the same torch (and need no
# network); pip's messages and the torch version go to stderr, so that stdout carries the path alone.
# PyPI's Linux wheel brings CUDA libraries it does not use on a CPU (about 3 GB); charlm's benchmarks use the CPU only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
python=${PYTHON:-python3}
upgrade=no
case "${1:-}" in
  --upgrade) upgrade=yes ;;
  "") ;;
  *) echo "setup_torch.sh: unknown argument \"$1\": expected nothing or --upgrade" >&2; exit 2 ;;
esac
if [ "$upgrade" = no ] && [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import torch' 2>/dev/null; then
  echo "bench/.venv exists with torch: reused (sh bench/setup_torch.sh --upgrade installs the newest)" >&2
else
  if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv" >&2
  fi
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet --upgrade torch numpy >&2
fi
"$venv/bin/python" -c 'import torch; print("bench/.venv: torch", torch.__version__, "threads", torch.get_num_threads())' >&2
echo "$venv/bin/python"
