#!/bin/sh
# Makes bench/.venv, a virtual environment with today's PyTorch from PyPI, for the reference benchmarks (not the tests).
#   sh bench/setup_torch.sh            # then: bench/.venv/bin/python bench/torch_gpt_reference.py --help
# PyPI's Linux wheel brings CUDA libraries it does not use on a CPU (about 3 GB); charlm's benchmarks use the CPU only.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet torch numpy
"$venv/bin/python" -c 'import torch; print("bench/.venv: torch", torch.__version__, "threads", torch.get_num_threads())'
