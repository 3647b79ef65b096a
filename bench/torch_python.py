"""Which Python runs the PyTorch side of a comparison (--python, --extra-python) and what its torch is.

The scripts run by hand with whichever torch the interpreter has: Debian's 1.13 under /usr/bin/python3 (the default,
as before), today's PyTorch under bench/.venv/bin/python (sh bench/setup_torch.sh makes it). A script that imports
torch itself re-executes under --python before the import; one that starts the PyTorch side as a child runs the
child with --python. Every table names the torch that made its figures (describe()).
"""

import argparse
import json
import os
import subprocess
import sys

DEFAULT_PYTHON = "/usr/bin/python3"  # Debian's torch 1.13 (apt-get install python3-torch)
VENV_PYTHON = os.path.join(os.path.dirname(os.path.abspath(__file__)), ".venv", "bin", "python")
_REEXEC_MARK = "CHARLM_BENCH_PYTHON"  # the interpreter this script already re-executed under: never twice

PYTHON_HELP = (f"the Python (and so the torch) that runs PyTorch's side (default {DEFAULT_PYTHON}, Debian's torch "
               "1.13; today's PyTorch: bench/.venv/bin/python from sh bench/setup_torch.sh)")


def add_python_argument(parser):
    parser.add_argument("--python", default=DEFAULT_PYTHON, help=PYTHON_HELP)


def python_in(argv):
    """--python's value in argv, read before the script's own parser runs (and before torch is imported)."""
    early = argparse.ArgumentParser(add_help=False)
    add_python_argument(early)
    return early.parse_known_args(argv)[0].python


def run_under(python):
    """Re-executes this script under `python` unless it is the interpreter already; at most once."""
    if os.path.abspath(python) == os.path.abspath(sys.executable) or os.environ.get(_REEXEC_MARK) == python:
        return
    if not os.access(python, os.X_OK):
        sys.exit(f"--python {python} is not an executable: give an interpreter with torch, e.g. "
                 f"$(sh bench/setup_torch.sh) or {DEFAULT_PYTHON}")
    os.environ[_REEXEC_MARK] = python
    os.execv(python, [python] + sys.argv)


# What the interpreter's torch is: version, the BLAS its float products go to (OpenBLAS when the process maps it,
# as Debian's torch does through libblas.so.3; otherwise the BLAS torch was built with, MKL for PyPI's), oneDNN,
# its default thread count and the thread variables it saw.
_DESCRIBE = r"""
import json, os, re, torch
a = torch.ones(64, 64)
a @ a  # loads the BLAS the float products use
maps = open("/proc/self/maps").read()
config = torch.__config__.show()
blas = "openblas" if "libopenblas" in maps else (re.search(r"BLAS_INFO=(\w+)", config) or [None, "unknown"])[1]
onednn = re.search(r"(?:Intel\(R\) MKL-DNN|oneDNN) v([\w.]+)", config)
print(json.dumps({"torch": torch.__version__, "blas": blas, "onednn": onednn[1] if onednn else None,
                  "threads": torch.get_num_threads(),
                  "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                      "OPENBLAS_CORETYPE", "OMP_WAIT_POLICY") if k in os.environ}}))
"""


def describe(python):
    """{"python", "torch", "blas", "onednn", "threads", "env"} of the torch under `python`; exits with the reason
    when it has none."""
    done = subprocess.run([python, "-c", _DESCRIBE], capture_output=True, text=True)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"
        sys.exit(f"--python {python}: no usable torch ({last}); today's PyTorch: sh bench/setup_torch.sh")
    info = json.loads(done.stdout.strip().splitlines()[-1])
    info["python"] = python
    return info


def describe_line(info):
    """'torch 2.15.0 (bench/.venv/bin/python; BLAS mkl, oneDNN 3.7.1; default threads 2)'."""
    env = "".join(f", {k}={v}" for k, v in info.get("env", {}).items())
    onednn = f", oneDNN {info['onednn']}" if info.get("onednn") else ""
    return f"torch {info['torch']} ({info['python']}; BLAS {info['blas']}{onednn}; default threads {info['threads']}{env})"

