"""Gauge configurations in the formats of other codes: ILDG/LIME, NERSC, openQCD (4D SU(3) links).

Each format reads to a :class:`~hpcflow.io.formats.common.GaugeFile` and writes atomically (a
temporary name, then a rename). 2D U(1) and SU(N) ensembles have no standard exchange format and
stay in hpcflow's HDF5 store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from hpcflow.io.formats.common import GaugeFile, GaugeFileError
from hpcflow.io.formats.ildg import LIME_MAGIC, read_ildg, write_ildg
from hpcflow.io.formats.nersc import read_nersc, write_nersc
from hpcflow.io.formats.openqcd import read_openqcd, write_openqcd
from hpcflow.parallel.world import World

__all__ = ["FORMATS", "PARALLEL_READS", "GaugeFile", "GaugeFileError", "detect_format", "read_gauge_file"]

FORMATS: dict[str, tuple[Callable[[Path], GaugeFile], Callable[..., str], str]] = {
    "ildg": (read_ildg, write_ildg, "lime"),
    "nersc": (read_nersc, write_nersc, "nersc"),
    "openqcd": (read_openqcd, write_openqcd, "oqcd"),
}
"""name -> (read, write, file extension)."""
PARALLEL_READS = ("ildg", "nersc")


def detect_format(path: Path) -> str:
    """The format of a gauge file from its first bytes: the LIME magic, ``BEGIN_HEADER``, or else openQCD."""
    with open(path, "rb") as fh:
        head = fh.read(16)
    if len(head) >= 4 and int.from_bytes(head[:4], "big") == LIME_MAGIC:
        return "ildg"
    return "nersc" if head.startswith(b"BEGIN_HEADER") else "openqcd"


def read_gauge_file(path: Path, fmt: str | None = None, world: World | None = None) -> GaugeFile:
    """Read ``path`` in format ``fmt`` (detected when ``None``); with a ``world`` of several ranks
    ILDG and NERSC files are read in parallel (each rank a block of time slices), openQCD files by
    every rank whole."""
    path = Path(path)
    if not path.is_file():
        raise GaugeFileError(path, "no such file")
    fmt = fmt or detect_format(path)
    if fmt not in FORMATS:
        raise GaugeFileError(path, f"format {fmt!r}: expected one of {sorted(FORMATS)}")
    read = FORMATS[fmt][0]
    return read(path, world) if fmt in PARALLEL_READS else read(path)
