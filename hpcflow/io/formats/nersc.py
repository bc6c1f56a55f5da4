r"""NERSC gauge configurations (the "Gauge Connection" archive format, as MILC, Grid and CPS write it).

A text header between the lines ``BEGIN_HEADER`` and ``END_HEADER``, ``KEY = value`` per line, then
the links in the site and link order of ILDG (:mod:`hpcflow.io.formats.common`):

- ``DATATYPE``: ``4D_SU3_GAUGE_3x3`` (whole matrices) or ``4D_SU3_GAUGE`` (the first two rows; the
  third is :math:`(u_1 \times u_2)^*`, exact for SU(3));
- ``DIMENSION_1..4``: the extents along x, y, z, t;
- ``FLOATING_POINT``: ``IEEE32BIG``, ``IEEE64BIG``, ``IEEE32LITTLE`` or ``IEEE64LITTLE``;
- ``CHECKSUM``: the sum modulo :math:`2^{32}` of the stored numbers read as unsigned 32-bit words
  in little-endian order (after the byte order of ``FLOATING_POINT`` is undone), in hex;
- ``PLAQUETTE`` and ``LINK_TRACE``: :math:`P` and :math:`L` of :mod:`hpcflow.io.formats.common`.

The checksum, the plaquette and the link trace are verified on read; the checksum, a sum, is
combined over the ranks of a parallel read.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hpcflow.io.atomic import atomic_write
from hpcflow.io.formats.common import (GaugeFile, GaugeFileError, check_su3_links, collectively, from_lexicographic,
                                       gather_time, link_trace, plaquette, read_exactly, time_block, to_lexicographic)
from hpcflow.parallel.world import World

__all__ = ["nersc_checksum", "read_nersc", "write_nersc"]

_ROWS = {"4D_SU3_GAUGE_3x3": 3, "4D_SU3_GAUGE": 2}
_FLOATS = {"IEEE32BIG": ">c8", "IEEE64BIG": ">c16", "IEEE32LITTLE": "<c8", "IEEE64LITTLE": "<c16",
           "IEEE32": ">c8", "IEEE64": ">c16"}
_TOLERANCE = {8: 1e-5, 16: 1e-8}  # header observables against the data, by bytes per complex number


def nersc_checksum(values: np.ndarray) -> int:
    """The NERSC checksum of the stored numbers ``values`` (any byte order; module docstring)."""
    native = np.ascontiguousarray(values.astype(values.dtype.newbyteorder("<")))
    return int(native.view("<u4").sum(dtype=np.uint64) & np.uint64(0xFFFFFFFF))


def _header(path: Path, fh) -> dict[str, str]:
    if fh.readline() != b"BEGIN_HEADER\n":
        raise GaugeFileError(path, "not a NERSC file (its first line is not BEGIN_HEADER)")
    header: dict[str, str] = {}
    for _ in range(200):
        line = fh.readline()
        if not line:
            raise GaugeFileError(path, "truncated: no END_HEADER line")
        if line.strip() == b"END_HEADER":
            return header
        key, sep, value = line.decode("ascii", "replace").partition("=")
        if sep:
            header[key.strip()] = value.strip()
    raise GaugeFileError(path, "no END_HEADER within 200 header lines")


def _third_row(two: np.ndarray) -> np.ndarray:
    """SU(3) from its first two rows: the third row is the complex conjugate of their cross product."""
    a, b = two[..., 0, :], two[..., 1, :]
    third = np.conj(np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                              a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                              a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1))
    return np.concatenate([two, third[..., None, :]], axis=-2)


def _layout(path: Path) -> tuple[dict[str, str], int, np.dtype, tuple[int, int, int, int], int]:
    """The header, the stored rows, the number type, the extents (x, y, z, t) and where the links
    start; the file's size checked against them."""
    with open(path, "rb") as fh:
        h = _header(path, fh)
        offset = fh.tell()
    try:
        rows, dtype = _ROWS[h["DATATYPE"]], np.dtype(_FLOATS[h["FLOATING_POINT"]])
        dims = tuple(int(h[f"DIMENSION_{i}"]) for i in range(1, 5))
    except KeyError as err:
        raise GaugeFileError(path, f"header {err.args[0]!r}: missing or not one of the supported values "
                                   f"(DATATYPE {sorted(_ROWS)}, FLOATING_POINT {sorted(_FLOATS)})") from None
    need = int(np.prod(dims)) * 4 * rows * 3 * dtype.itemsize
    have = os.path.getsize(path) - offset
    if have < need:
        raise GaugeFileError(path, f"truncated: {'x'.join(map(str, dims))} links ({h['DATATYPE']}, "
                                   f"{h['FLOATING_POINT']}) need {need} bytes, {have} are left")
    if have > need:
        raise GaugeFileError(path, f"wrong size: {have - need} bytes left after the {need} of the links")
    return h, rows, dtype, dims, offset  # type: ignore[return-value]


def read_nersc(path: Path, world: World | None = None) -> GaugeFile:
    """A NERSC configuration (module docstring), its checksum, plaquette and link trace verified;
    with a ``world`` of several ranks each reads a block of time slices."""
    world = world or World()
    h, rows, dtype, (lx, ly, lz, lt), offset = collectively(world, path, lambda: _layout(path))
    block, per_slice = time_block(world, lt), lz * ly * lx * 4 * rows * 3

    def read_block() -> np.ndarray:
        with open(path, "rb") as fh:
            fh.seek(offset + block.start * per_slice * dtype.itemsize)
            data = read_exactly(fh, len(block) * per_slice * dtype.itemsize, path, "the time slices of the links")
        return np.frombuffer(data, dtype=dtype)

    values = collectively(world, path, read_block)
    checksum = sum(world.allgather(nersc_checksum(values))) % 2**32
    if "CHECKSUM" in h and int(h["CHECKSUM"], 16) != checksum:
        raise GaugeFileError(path, f"checksum mismatch: the header says {h['CHECKSUM']}, the data give {checksum:x}")
    lex = gather_time(world, values.reshape(len(block), lz, ly, lx, 4, rows, 3).astype(np.complex128))
    links = from_lexicographic(lex if rows == 3 else _third_row(lex))
    measured = {"PLAQUETTE": plaquette(links), "LINK_TRACE": link_trace(links)}
    for key, value in measured.items():
        if key in h and abs(float(h[key]) - value) > _TOLERANCE[dtype.itemsize] * max(1.0, abs(value)):
            raise GaugeFileError(path, f"{key} {h[key]} in the header, {value:.10g} from the links")
    return GaugeFile(links, float(h["PLAQUETTE"]) if "PLAQUETTE" in h else None, f"{checksum:x}",
                     {"format": "nersc", "datatype": h["DATATYPE"], "floating_point": h["FLOATING_POINT"],
                      "ensemble_id": h.get("ENSEMBLE_ID", "")})


def write_nersc(path: Path, links: np.ndarray, rows: int = 3, precision: int = 64, ensemble: str = "hpcflow",
                sequence: int = 0) -> str:
    """Write ``links`` as a NERSC file (big-endian, ``rows`` 3 or 2 stored rows; atomically);
    returns the checksum in hex."""
    check_su3_links(links, str(path))
    if rows not in (2, 3) or precision not in (32, 64):
        raise ValueError(f"rows = {rows}, precision = {precision}: expected rows 2 or 3, precision 32 or 64")
    lt, lx, ly, lz = links.shape[1:5]
    values = to_lexicographic(links)[..., :rows, :].astype(f">c{precision // 4}")
    checksum = nersc_checksum(values)
    header = {"HDR_VERSION": "1.0", "DATATYPE": "4D_SU3_GAUGE_3x3" if rows == 3 else "4D_SU3_GAUGE",
              "STORAGE_FORMAT": "1.0", "DIMENSION_1": lx, "DIMENSION_2": ly, "DIMENSION_3": lz, "DIMENSION_4": lt,
              "LINK_TRACE": f"{link_trace(links):.12g}", "PLAQUETTE": f"{plaquette(links):.12g}",
              **{f"BOUNDARY_{i}": "PERIODIC" for i in range(1, 5)}, "CHECKSUM": f"{checksum:x}",
              "ENSEMBLE_ID": ensemble, "SEQUENCE_NUMBER": sequence, "CREATOR": "hpcflow",
              "FLOATING_POINT": f"IEEE{precision}BIG"}
    text = "BEGIN_HEADER\n" + "".join(f"{k} = {v}\n" for k, v in header.items()) + "END_HEADER\n"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(text.encode("ascii"))
            fh.write(values.tobytes())

    atomic_write(Path(path), write)
    return f"{checksum:x}"
