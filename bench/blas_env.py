"""Gives the PyTorch side of a comparison the OpenBLAS kernel table charlm chose for this CPU (lib/ops/blas.h).

OpenBLAS 0.3.21 falls back to generic Prescott kernels on a CPU model it does not know; charlm then asks for a table
that fits (OPENBLAS_CORETYPE) before OpenBLAS loads. A PyTorch on the same OpenBLAS would stay on the fallback, so
the scripts set the same variable for both sides, before torch is imported. A variable the user set is kept.
"""

import os
import re
import subprocess
import sys


def charlm_chosen_core(charlm):
    """The table charlm chose over OpenBLAS's fallback, from `charlm --version`, or None when it kept OpenBLAS's."""
    version = subprocess.run([charlm, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"OpenBLAS: (\S+) kernels \(chosen by charlm", version)
    return match.group(1) if match else None


def match_charlm_blas_core(charlm, reexec=False):
    """Sets OPENBLAS_CORETYPE to charlm's choice when it is unset; with reexec, restarts this script so that a torch
    imported at its top loads OpenBLAS with it."""
    if "OPENBLAS_CORETYPE" in os.environ:
        return
    core = charlm_chosen_core(charlm)
    if core is None:
        return
    os.environ["OPENBLAS_CORETYPE"] = core
    print(f"# OPENBLAS_CORETYPE={core} for both sides: charlm chose it over OpenBLAS's generic fallback on this CPU",
          file=sys.stderr, flush=True)
    if reexec:
        os.execv(sys.executable, [sys.executable] + sys.argv)
