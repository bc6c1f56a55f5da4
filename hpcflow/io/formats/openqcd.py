r"""openQCD gauge configurations (the "universal" format of openQCD's ``export_cnfg``, main/README.io).

Little-endian throughout: the lattice sizes :math:`N_0, N_1, N_2, N_3` (int32; direction 0 is
time, as hpcflow's axis 0), the average plaquette :math:`\frac{1}{6V}\sum_p \mathrm{Re\,tr}\,U_p`
(float64: :math:`3P` in :mod:`hpcflow.io.formats.common`'s normalisation), then for every odd point
:math:`x` (:math:`x_0 + x_1 + x_2 + x_3` odd) in lexicographic order with :math:`x_3` fastest the
eight double-precision matrices :math:`U_0(x), U_0(x - \hat0), U_1(x), U_1(x - \hat1), \dots,
U_3(x - \hat3)`: every link once, as the links of the odd points. The extents must be even.
openQCD has no checksum; the plaquette is verified on read, as openQCD's ``import_cnfg`` does.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from hpcflow.io.atomic import atomic_write
from hpcflow.io.formats.common import GaugeFile, GaugeFileError, check_su3_links, plaquette, read_exactly

__all__ = ["read_openqcd", "write_openqcd"]

_HEADER = struct.Struct("<iiiid")
_TOLERANCE = 1e-10  # |3P(header) - 3P(links)|: openQCD allows about 64 sqrt(6V) ulp of the sum


def _odd(shape: tuple[int, ...]) -> np.ndarray:
    return np.indices(shape).sum(0) % 2 == 1


def read_openqcd(path: Path) -> GaugeFile:
    """An openQCD configuration (module docstring), its plaquette verified."""
    with open(path, "rb") as fh:
        n = _HEADER.unpack(read_exactly(fh, _HEADER.size, path, "the openQCD header"))
        shape, plaq = tuple(n[:4]), n[4]
        if any(s < 2 or s % 2 or s > 1 << 16 for s in shape):
            raise GaugeFileError(path, f"lattice sizes {list(shape)} in the header: not an openQCD configuration "
                                       "(even sizes from 2 expected)")
        volume = int(np.prod(shape))
        data = read_exactly(fh, volume * 4 * 9 * 16, path, f"{'x'.join(map(str, shape))} links")
        if fh.read(1):
            raise GaugeFileError(path, f"wrong size: bytes left after the {volume * 4 * 9 * 16} of the links")
    pairs = np.frombuffer(data, dtype="<c16").reshape(volume // 2, 4, 2, 3, 3).astype(np.complex128)
    odd = _odd(shape)
    links = np.empty((4, *shape, 3, 3), dtype=np.complex128)
    for mu in range(4):
        backward = np.zeros((*shape, 3, 3), dtype=np.complex128)
        backward[odd] = pairs[:, mu, 1]  # U_mu(x - mu) at odd x
        links[mu] = np.roll(backward, -1, axis=mu)  # at even y: U_mu(y) = (U_mu(x - mu) at x = y + mu)
        links[mu][odd] = pairs[:, mu, 0]
    measured = 3 * plaquette(links)
    if abs(measured - plaq) > _TOLERANCE * max(1.0, abs(plaq)):
        raise GaugeFileError(path, f"plaquette {plaq:.15g} in the header, {measured:.15g} from the links")
    return GaugeFile(links, plaq / 3, "none (openQCD files carry none; plaquette verified)",
                     {"format": "openqcd"})


def write_openqcd(path: Path, links: np.ndarray) -> str:
    """Write ``links`` ``(4, N0, N1, N2, N3, 3, 3)`` as an openQCD file (atomically); returns the
    recorded plaquette (openQCD's normalisation) as text."""
    check_su3_links(links, str(path))
    shape = links.shape[1:5]
    if any(s % 2 for s in shape):
        raise ValueError(f"{path}: openQCD needs even lattice sizes; this lattice is {list(shape)}")
    odd = _odd(shape)
    pairs = np.stack([np.stack([links[mu], np.roll(links[mu], 1, axis=mu)], axis=-3) for mu in range(4)], axis=-4)
    plaq = 3 * plaquette(links)
    payload = _HEADER.pack(*shape, plaq) + np.ascontiguousarray(pairs[odd]).astype("<c16").tobytes()

    def write(tmp: Path) -> None:
        tmp.write_bytes(payload)

    atomic_write(Path(path), write)
    return f"plaquette {plaq:.15g}"
