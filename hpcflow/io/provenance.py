"""Provenance recorded with every run: code version, library versions, machine."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import hpcflow

__all__ = ["code_version", "provenance"]

_PACKAGES = ("torch", "numpy", "scipy", "h5py", "mpi4py")


def code_version() -> str:
    """``<version>+g<commit>[.dirty]`` inside a git checkout, else the package version."""
    root = Path(hpcflow.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return hpcflow.__version__
    return f"{hpcflow.__version__}+g{commit}{'.dirty' if dirty else ''}"


def provenance() -> dict[str, str]:
    """Versions of the code, Python and the numerical libraries, the platform, and the CPU kernel
    path (``"compiled"`` or ``"torch"``: phi^4 chains agree bitwise between them, Dirac results to
    rounding)."""
    from hpcflow.kernels import kernel_path

    out = {"hpcflow": code_version(), "python": sys.version.split()[0], "platform": platform.platform(),
           "cpu_kernels": kernel_path()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
