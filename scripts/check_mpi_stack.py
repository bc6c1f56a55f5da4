"""Check that h5py and mpi4py share one MPI in one process (two MPIs in a process abort).

Run by scripts/install.sh with the venv's interpreter::

    python scripts/check_mpi_stack.py MPI_LIBRARY MPI_NAME HDF5_TAG

``MPI_LIBRARY`` is the soname the flavour must load (``libmpi.so.40``), ``MPI_NAME`` a word of
``MPI_Get_library_version`` (``Open MPI``), ``HDF5_TAG`` a word of the parallel HDF5's file name
(``openmpi``); empty strings skip the checks of the site flavour that cannot be known in advance.
The libraries are read from ``/proc/self/maps`` after the imports, that is, what the dynamic
loader really mapped, not what ``ldd`` of one extension module lists. A failure prints every
MPI and HDF5 library of the process and the ``ldd`` of h5py's modules, so that a CI log tells
which build went wrong.
"""

from __future__ import annotations

import glob
import os
import re
import subprocess
import sys

MPI_SONAME = re.compile(r"^lib(mpi|mpich|mpi_cray|mpi_ibm)\.so(\.|$)")
"""The MPI library itself (Open MPI, MPICH, Cray MPICH, Spectrum MPI), not its C++/Fortran layers."""


def mapped_libraries() -> list[str]:
    """The distinct shared objects of MPI and HDF5 mapped into this process."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if ".so" in line}
    return sorted(p for p in paths if "libhdf5" in p or MPI_SONAME.search(os.path.basename(p)))


def h5py_ldd(h5py_dir: str) -> str:
    """``ldd`` of h5py's extension modules, their MPI and HDF5 lines only."""
    lines = []
    for stem in ("defs", "h5p", "_conv"):
        module = (glob.glob(os.path.join(h5py_dir, f"{stem}.*so")) or [stem])[0]
        try:
            out = subprocess.run(["ldd", module], capture_output=True, text=True)
        except OSError as error:
            lines.append(f"  {stem}: ldd failed: {error}")
            continue
        wanted = [ln.strip() for ln in out.stdout.splitlines() if "hdf5" in ln or "mpi" in ln]
        found = "; ".join(wanted) or out.stderr.strip() or "no MPI or HDF5 library"
        lines.append(f"  {os.path.basename(module)} (ldd rc {out.returncode}): {found}")
    return "\n".join(lines)


def problems(mpi_library: str, mpi_name: str, hdf5_tag: str) -> list[str]:
    import h5py
    import h5py.h5p  # noqa: F401  (the module that calls the MPI-IO driver)
    from mpi4py import MPI

    found = []
    if not h5py.get_config().mpi:
        found.append("h5py is the serial build (h5py.get_config().mpi is False): a later install replaced the MPI build")
    libs = mapped_libraries()
    mpis = {os.path.basename(p).split(".so")[0] for p in libs if MPI_SONAME.search(os.path.basename(p))}
    if len(mpis) > 1:
        found.append(f"two MPI libraries in one process: {sorted(mpis)}")
    if mpi_library and not any(os.path.basename(p).startswith(mpi_library) for p in libs):
        found.append(f"{mpi_library} is not loaded")
    hdf5 = [os.path.basename(p) for p in libs if "libhdf5" in p]
    if hdf5_tag and not any(hdf5_tag in name for name in hdf5):
        found.append(f"h5py loads {hdf5 or 'no libhdf5'}, not the {hdf5_tag} build of HDF5")
    version = MPI.Get_library_version().splitlines()[0]
    if mpi_name and mpi_name not in version:
        found.append(f"mpi4py loads {version}, not {mpi_name}")
    if found:
        found.append("mapped: " + (", ".join(libs) or "none") + "\n" + h5py_ldd(os.path.dirname(h5py.__file__)))
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: check_mpi_stack.py MPI_LIBRARY MPI_NAME HDF5_TAG", file=sys.stderr)
        return 2
    found = problems(*argv)
    for line in found:
        print(f"hpcflow: {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
