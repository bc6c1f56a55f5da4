"""The install's check of the MPI stack (scripts/check_mpi_stack.py): it reads the libraries the
loader mapped after importing h5py and mpi4py, passes for the MPI this environment was built
with, and names every mismatch otherwise."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import REPO

pytest.importorskip("mpi4py", reason="the MPI stack check needs mpi4py")
h5py = pytest.importorskip("h5py", reason="the MPI stack check needs h5py")
if not h5py.get_config().mpi:
    pytest.skip("h5py is the serial build: the check would fail by design", allow_module_level=True)

CHECK = REPO / "scripts" / "check_mpi_stack.py"


def _check(*expected: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), *expected], capture_output=True, text=True, timeout=120)


def _built_flavour() -> tuple[str, str, str]:
    from mpi4py import MPI

    version = MPI.Get_library_version()
    if "Open MPI" in version:
        return "libmpi.so.40", "Open MPI", "openmpi"
    if "MPICH" in version:
        return "libmpich.so.12", "MPICH", "mpich"
    pytest.skip(f"neither Debian MPI: {version.splitlines()[0]}")


def test_the_check_passes_for_the_mpi_this_environment_was_built_with() -> None:
    res = _check(*_built_flavour())
    assert res.returncode == 0, res.stderr


def test_the_check_names_each_mismatch_and_what_the_process_mapped() -> None:
    library, name, tag = _built_flavour()
    other = ("libmpich.so.12", "MPICH", "mpich") if tag == "openmpi" else ("libmpi.so.40", "Open MPI", "openmpi")
    res = _check(*other)
    assert res.returncode == 1
    assert f"{other[0]} is not loaded" in res.stderr
    assert f"not the {other[2]} build of HDF5" in res.stderr
    assert f"not {other[1]}" in res.stderr
    assert re.search(rf"mapped: .*{library}", res.stderr)


def test_the_site_flavour_checks_only_that_one_mpi_is_mapped() -> None:
    assert _check("", "", "").returncode == 0
    assert _check("libmpi.so").returncode == 2


def test_install_sh_pipes_nothing_into_an_early_exiting_grep() -> None:
    """Under ``set -o pipefail``, ``ldd lib | grep -q x`` fails whenever grep exits before ldd's
    last write (ldd writes a line at a time): the CI of 2026-12-02 failed on it."""
    script = (REPO / "scripts" / "install.sh").read_text()
    assert "set -euo pipefail" in script
    assert not re.search(r"\|\s*grep -q", script)
