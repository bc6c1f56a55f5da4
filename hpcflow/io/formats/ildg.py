"""ILDG gauge configurations in LIME files (the ILDG binary file format, version 1.1).

A LIME file is a sequence of records, each a 144-byte big-endian header (magic ``0x456789ab``,
version 1, the message-begin/end flags, the data length, a 128-byte type name) followed by the
data padded with zeros to a multiple of 8 bytes. An ILDG configuration has the records

- ``ildg-format``: XML with ``field`` (``su3gauge``), ``precision`` (32 or 64) and ``lx ly lz lt``;
- ``ildg-binary-data``: the links, big-endian IEEE floats, sites lexicographic with x fastest and
  four links per site in the order x, y, z, t (:mod:`hpcflow.io.formats.common`);
- ``scidac-checksum``: XML with ``suma`` and ``sumb`` (:func:`scidac_checksum`), verified on read;
- ``ildg-data-lfn``: the logical file name.

Other records (SciDAC private file and record XML, as Chroma and Grid write them) are skipped.
"""

from __future__ import annotations

import functools
import operator
import os
import re
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from hpcflow.io.atomic import atomic_write
from hpcflow.io.formats.common import (GaugeFile, GaugeFileError, check_su3_links, collectively, from_lexicographic,
                                       gather_time, read_exactly, time_block, to_lexicographic)
from hpcflow.parallel.world import World

__all__ = ["LIME_MAGIC", "lime_index", "read_ildg", "read_lime_records", "scidac_checksum", "write_ildg"]

LIME_MAGIC = 0x456789AB
_HEADER = struct.Struct(">ihHq128s")  # magic, version, MB/ME flags, data length, type
_MESSAGE_BEGIN, _MESSAGE_END = 1 << 15, 1 << 14
_FORMAT_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<ildgFormat xmlns="http://www.lqcd.org/ildg" '
               'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
               'xsi:schemaLocation="http://www.lqcd.org/ildg http://www.lqcd.org/ildg/filefmt.xsd">\n'
               "<version>1.0</version>\n<field>su3gauge</field>\n<precision>{precision}</precision>\n"
               "<lx>{lx}</lx>\n<ly>{ly}</ly>\n<lz>{lz}</lz>\n<lt>{lt}</lt>\n</ildgFormat>")
_CHECKSUM_XML = ('<?xml version="1.0" encoding="UTF-8"?>\n<scidacChecksum>\n<version>1.0</version>\n'
                 "<suma>{suma:x}</suma>\n<sumb>{sumb:x}</sumb>\n</scidacChecksum>")


def scidac_checksum(data: bytes, sites: int, first: int = 0) -> tuple[int, int]:
    r"""The SciDAC checksum of ``data`` holding ``sites`` equal-sized sites in lexicographic order,
    the first of rank ``first``: with :math:`c_r` the CRC-32 of site :math:`r`'s bytes,
    :math:`a = \bigoplus_r \mathrm{rotl}(c_r, r \bmod 29)` and :math:`b = \bigoplus_r \mathrm{rotl}(c_r, r \bmod 31)`
    (32-bit rotations). XOR is associative: the checksums of consecutive parts XOR to the whole's."""
    if sites == 0:
        return 0, 0
    size = len(data) // sites
    view = memoryview(data)
    crc = np.array([zlib.crc32(view[r * size : (r + 1) * size]) for r in range(sites)], dtype=np.uint64)
    ranks = np.arange(first, first + sites, dtype=np.uint64)

    def fold(k: int) -> int:
        s = ranks % np.uint64(k)
        rotated = ((crc << s) | (crc >> (np.uint64(32) - s))) & np.uint64(0xFFFFFFFF)
        return int(np.bitwise_xor.reduce(rotated))

    return fold(29), fold(31)


def lime_index(path: Path) -> dict[str, tuple[int, int]]:
    """``{type: (offset, length)}`` of the data of a LIME file's records (the first of each type),
    checked against the file's size; one-line errors name the file."""
    index: dict[str, tuple[int, int]] = {}
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        while header := fh.read(_HEADER.size):
            if len(header) < _HEADER.size:
                raise GaugeFileError(path, f"truncated: a LIME record header needs {_HEADER.size} bytes, {len(header)} are left")
            magic, _, _, length, kind = _HEADER.unpack(header)
            if magic != LIME_MAGIC:
                raise GaugeFileError(path, f"not a LIME file (magic {magic & 0xFFFFFFFF:#x} where {LIME_MAGIC:#x} belongs)")
            name, offset = kind.split(b"\0", 1)[0].decode("ascii", "replace"), fh.tell()
            if offset + length > size:
                raise GaugeFileError(path, f"truncated: record {name!r} needs {length} bytes, {size - offset} are left")
            index.setdefault(name, (offset, length))
            fh.seek(length + (-length % 8), os.SEEK_CUR)
    return index


def read_lime_records(path: Path, names: tuple[str, ...] | None = None) -> dict[str, bytes]:
    """The data of a LIME file's records by type (those in ``names``, or all)."""
    out = {}
    with open(path, "rb") as fh:
        for name, (offset, length) in lime_index(path).items():
            if names is None or name in names:
                fh.seek(offset)
                out[name] = fh.read(length)
    return out


def _xml(path: Path, text: bytes, tag: str, record: str) -> str:
    found = re.findall(rf"<{tag}>\s*([^<]*?)\s*</{tag}>".encode(), text)
    if len(found) != 1:
        raise GaugeFileError(path, f"record {record!r} has no single <{tag}> element")
    return found[0].decode()


def read_ildg(path: Path, world: World | None = None) -> GaugeFile:
    """An ILDG configuration (module docstring), its SciDAC checksum verified; with a ``world`` of
    several ranks each reads a block of time slices (:mod:`hpcflow.io.formats.common`)."""
    world = world or World()
    records = collectively(world, path, lambda: _ildg_header(path))
    lx, ly, lz, lt, dtype = records.pop("dims")
    block = time_block(world, lt)
    slice_bytes = lz * ly * lx * 4 * 9 * dtype.itemsize
    offset = records.pop("data_offset")

    def read_block() -> bytes:
        with open(path, "rb") as fh:
            fh.seek(offset + block.start * slice_bytes)
            return read_exactly(fh, len(block) * slice_bytes, path, "the time slices of ildg-binary-data")

    data = collectively(world, path, read_block)
    parts = world.allgather(scidac_checksum(data, len(block) * lz * ly * lx, block.start * lz * ly * lx))
    got = (functools.reduce(operator.xor, (a for a, _ in parts)), functools.reduce(operator.xor, (b for _, b in parts)))
    checksum = "none"
    if "scidac-checksum" in records:
        want = tuple(int(_xml(path, records["scidac-checksum"], t, "scidac-checksum"), 16) for t in ("suma", "sumb"))
        if got != want:
            raise GaugeFileError(path, f"SciDAC checksum mismatch: the file says {want[0]:x} {want[1]:x}, "
                                       f"the data give {got[0]:x} {got[1]:x}")
        checksum = f"{got[0]:x} {got[1]:x}"
    slab = np.frombuffer(data, dtype=dtype).reshape(len(block), lz, ly, lx, 4, 3, 3).astype(np.complex128)
    meta = {"format": "ildg", "precision": dtype.itemsize * 4}
    if "ildg-data-lfn" in records:
        meta["lfn"] = records["ildg-data-lfn"].split(b"\0", 1)[0].decode("utf-8", "replace")
    return GaugeFile(from_lexicographic(gather_time(world, slab)), None, checksum, meta)


def _ildg_header(path: Path) -> dict:
    """The small records of an ILDG file, its lattice and precision, and where its links start."""
    index = lime_index(path)
    for needed in ("ildg-format", "ildg-binary-data"):
        if needed not in index:
            raise GaugeFileError(path, f"no {needed!r} record: not an ILDG configuration")
    records = read_lime_records(path, ("ildg-format", "scidac-checksum", "ildg-data-lfn"))
    fmt = records["ildg-format"]
    if (field := _xml(path, fmt, "field", "ildg-format")) != "su3gauge":
        raise GaugeFileError(path, f"field {field!r}: only su3gauge is read")
    precision = int(_xml(path, fmt, "precision", "ildg-format"))
    if precision not in (32, 64):
        raise GaugeFileError(path, f"precision {precision}: expected 32 or 64")
    lx, ly, lz, lt = (int(_xml(path, fmt, t, "ildg-format")) for t in ("lx", "ly", "lz", "lt"))
    dtype = np.dtype(f">c{precision // 4}")
    offset, length = index["ildg-binary-data"]
    if length != lx * ly * lz * lt * 4 * 9 * dtype.itemsize:
        raise GaugeFileError(path, f"ildg-binary-data holds {length} bytes; {lx}x{ly}x{lz}x{lt} SU(3) links in "
                                   f"{precision}-bit precision need {lx * ly * lz * lt * 4 * 9 * dtype.itemsize}")
    return {**records, "dims": (lx, ly, lz, lt, dtype), "data_offset": offset}


def _record(fh: BinaryIO, kind: str, data: bytes, flags: int) -> None:
    fh.write(_HEADER.pack(LIME_MAGIC, 1, flags, len(data), kind.encode()))
    fh.write(data + b"\0" * (-len(data) % 8))


def write_ildg(path: Path, links: np.ndarray, lfn: str = "", precision: int = 64) -> str:
    """Write ``links`` ``(4, T, X, Y, Z, 3, 3)`` as an ILDG file (atomically); returns the checksum."""
    check_su3_links(links, str(path))
    if precision not in (32, 64):
        raise ValueError(f"precision = {precision}: expected 32 or 64")
    lt, lx, ly, lz = links.shape[1:5]
    data = to_lexicographic(links).astype(f">c{precision // 4}").tobytes()
    suma, sumb = scidac_checksum(data, lt * lx * ly * lz)
    records = [("ildg-format", _FORMAT_XML.format(precision=precision, lx=lx, ly=ly, lz=lz, lt=lt).encode()),
               ("ildg-binary-data", data),
               ("scidac-checksum", _CHECKSUM_XML.format(suma=suma, sumb=sumb).encode()),
               ("ildg-data-lfn", lfn.encode())]

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            for i, (kind, payload) in enumerate(records):
                _record(fh, kind, payload, (_MESSAGE_BEGIN if i == 0 else 0) | (_MESSAGE_END if i == len(records) - 1 else 0))

    atomic_write(Path(path), write)
    return f"{suma:x} {sumb:x}"
