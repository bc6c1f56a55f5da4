"""Gauge files of other codes: ILDG/LIME, NERSC, openQCD. Round trips bitwise; site and link order,
checksums and header plaquettes against independent implementations (latqcdtools' NERSC and ILDG
readers and SciDAC checksum; a literal transcription of openQCD's export loop; struct-based word
sums); corrupted files give one line naming the file."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from hpcflow.io.formats import FORMATS, GaugeFileError, detect_format, read_gauge_file
from hpcflow.io.formats.common import link_trace, plaquette
from hpcflow.io.formats.ildg import read_lime_records, scidac_checksum
from hpcflow.theories.gauge import random_su_n


def _links(shape: tuple[int, int, int, int] = (6, 4, 2, 4), seed: int = 1) -> np.ndarray:
    """Random SU(3) links (4, T, X, Y, Z, 3, 3)."""
    return random_su_n((4, *shape), 3, torch.Generator().manual_seed(seed)).numpy()


def test_the_header_observables_of_one_rotated_link() -> None:
    """U = 1 except U_0(0) = diag(e^{ia}, e^{-ia}, 1): the 6 plaquettes through that link have
    Re tr = 1 + 2 cos a, so P = (6V - 6 + 2(1 + 2 cos a)) / 6V and L = (4V - 1 + (1 + 2 cos a)/3) / 4V."""
    a, shape = 0.7, (4, 2, 4, 6)
    links = np.broadcast_to(np.eye(3, dtype=np.complex128), (4, *shape, 3, 3)).copy()
    links[0, 0, 0, 0, 0] = np.diag([np.exp(1j * a), np.exp(-1j * a), 1.0])
    v = np.prod(shape)
    assert plaquette(links) == pytest.approx((6 * v - 6 + 2 * (1 + 2 * np.cos(a))) / (6 * v), abs=1e-15)
    assert link_trace(links) == pytest.approx((4 * v - 1 + (1 + 2 * np.cos(a)) / 3) / (4 * v), abs=1e-15)


@pytest.mark.parametrize("fmt, options", [("ildg", {}), ("nersc", {}), ("nersc", {"rows": 2}), ("openqcd", {}),
                                          ("ildg", {"precision": 32}), ("nersc", {"precision": 32})])
def test_round_trips(fmt: str, options: dict, tmp_path: Path) -> None:
    links = _links()
    read, write, ext = FORMATS[fmt]
    write(tmp_path / f"u.{ext}", links, **options)
    assert detect_format(tmp_path / f"u.{ext}") == fmt and not list(tmp_path.glob(".*"))  # no temporary left
    back = read(tmp_path / f"u.{ext}").links
    if options.get("precision") == 32:
        np.testing.assert_array_equal(back, links.astype(np.complex64))
    elif options.get("rows") == 2:  # the third row rebuilt from the first two
        np.testing.assert_allclose(back, links, rtol=0, atol=1e-14)
    else:
        assert np.array_equal(back, links)  # bitwise


def test_the_site_and_link_order_and_checksums_agree_with_latqcdtools(tmp_path: Path) -> None:
    errors, handler = np.geterr(), np.geterrcall()
    try:  # latqcdtools sets numpy's global error handling when imported (np.seterr(all="call")): undone
        latqcd = pytest.importorskip("latqcdtools.interfaces.confReader", reason="latqcdtools (a test dependency) is not installed")
        from latqcdtools.interfaces.lime import scidacChecksum
    finally:
        np.seterr(**errors)
        np.seterrcall(handler)

    links = _links((6, 4, 4, 4), seed=3)  # latqcdtools reads Ns^3 x Nt lattices
    FORMATS["nersc"][1](tmp_path / "u.nersc", links)
    FORMATS["ildg"][1](tmp_path / "u.lime", links)
    nersc = latqcd.NERSCReader(Ns=4, Nt=6, nproc=1).readConf(str(tmp_path / "u.nersc"))  # checks P and L itself
    ildg = latqcd.ILDGReader(Ns=4, Nt=6, nproc=1).readConf(str(tmp_path / "u.lime"))
    for t, x, y, z in [(0, 0, 0, 0), (5, 3, 1, 2), (2, 1, 3, 0), (4, 0, 2, 3)]:
        for mu, ours in enumerate((1, 2, 3, 0)):  # latqcdtools' mu = x, y, z, t
            np.testing.assert_allclose(np.asarray(nersc.getLink(x, y, z, t, mu)), links[ours, t, x, y, z], atol=1e-14)
            np.testing.assert_allclose(np.asarray(ildg.getLink(x, y, z, t, mu)), links[ours, t, x, y, z], atol=1e-14)
    assert nersc.getPlaquette() == pytest.approx(plaquette(links), abs=1e-12)
    data = read_lime_records(tmp_path / "u.lime")["ildg-binary-data"]
    assert scidac_checksum(data, 6 * 4 ** 3) == scidacChecksum(data, 6 * 4 ** 3, 4 * 9 * 16)


def test_the_nersc_checksum_is_the_sum_of_the_words(tmp_path: Path) -> None:
    links = _links()
    checksum = FORMATS["nersc"][1](tmp_path / "u.nersc", links)
    raw = (tmp_path / "u.nersc").read_bytes().split(b"END_HEADER\n", 1)[1]
    doubles = struct.unpack(f">{len(raw) // 8}d", raw)  # the file's big-endian doubles
    words = struct.unpack(f"<{2 * len(doubles)}I", struct.pack(f"<{len(doubles)}d", *doubles))
    assert int(checksum, 16) == sum(words) % 2**32


def _openqcd_reference(links: np.ndarray) -> bytes:
    """openQCD's export_cnfg transcribed loop by loop: the sizes, the plaquette sum / 6V, then for
    x0, x1, x2, x3 (x3 fastest) at odd points U(x,0), U(x-0,0), ..., U(x,3), U(x-3,3)."""
    n = links.shape[1:5]
    out = [struct.pack("<4i", *n), struct.pack("<d", 3 * plaquette(links))]
    for x0 in range(n[0]):
        for x1 in range(n[1]):
            for x2 in range(n[2]):
                for x3 in range(n[3]):
                    x = [x0, x1, x2, x3]
                    if sum(x) % 2 == 0:
                        continue
                    for mu in range(4):
                        back = list(x)
                        back[mu] = (back[mu] - 1) % n[mu]
                        for u in (links[mu][tuple(x)], links[mu][tuple(back)]):
                            out.append(struct.pack("<18d", *[v for c in u.flatten() for v in (c.real, c.imag)]))
    return b"".join(out)


def test_openqcd_files_are_written_as_openqcd_exports_them(tmp_path: Path) -> None:
    links = _links()
    FORMATS["openqcd"][1](tmp_path / "u.oqcd", links)
    assert (tmp_path / "u.oqcd").read_bytes() == _openqcd_reference(links)
    (tmp_path / "ref.oqcd").write_bytes(_openqcd_reference(links))
    read = read_gauge_file(tmp_path / "ref.oqcd")
    assert np.array_equal(read.links, links) and read.plaquette == pytest.approx(plaquette(links), abs=1e-15)


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_corrupted_files_are_one_line_errors(fmt: str, tmp_path: Path) -> None:
    links = _links()
    read, write, ext = FORMATS[fmt]
    good = tmp_path / f"good.{ext}"
    write(good, links)
    size = good.stat().st_size
    expect = {"ildg": "SciDAC checksum mismatch", "nersc": "checksum mismatch", "openqcd": "plaquette"}
    cases = {"flipped byte": (lambda p: _flip(p, size // 2), expect[fmt]),
             "truncated": (lambda p: p.write_bytes(p.read_bytes()[: size - 100]), "truncated"),
             "appended": (lambda p: p.write_bytes(p.read_bytes() + b"\0" * 8), "wrong size" if fmt != "ildg" else "")}
    if fmt == "openqcd":
        cases["wrong header size"] = (lambda p: p.write_bytes(struct.pack("<i", 8) + p.read_bytes()[4:]), "truncated")
    if fmt == "nersc":
        cases["wrong header size"] = (lambda p: p.write_bytes(p.read_bytes().replace(b"DIMENSION_1 = 4", b"DIMENSION_1 = 8")),
                                      "truncated")
    for name, (corrupt, why) in cases.items():
        bad = tmp_path / f"{name.replace(' ', '_')}.{ext}"
        bad.write_bytes(good.read_bytes())
        corrupt(bad)
        if fmt == "ildg" and name == "appended":  # LIME: a short trailing record header
            why = "truncated"
        with pytest.raises(GaugeFileError) as err:
            read(bad)
        assert str(bad) in str(err.value) and why in str(err.value) and "\n" not in str(err.value), (name, err.value)
    assert zlib.crc32(good.read_bytes()) and np.array_equal(read(good).links, links)  # the good file still reads
