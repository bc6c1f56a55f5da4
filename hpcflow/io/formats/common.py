r"""What the gauge-file formats share: the site and link order of the standards, the header
observables, and errors that name the file.

hpcflow stores 4D links as ``(4, T, X, Y, Z, N, N)``: axis 0 is time, and link ``mu`` points along
array axis ``mu`` (so ``mu = 0`` is the time direction). ILDG and NERSC store the sites
lexicographically with ``x`` running fastest and ``t`` slowest, and the four links of a site in the
order ``x, y, z, t``: as an array ``(T, Z, Y, X, 4, N, N)`` (:func:`to_lexicographic`). Matrices
are row-major, complex numbers (real, imaginary).

The header observables, in the conventions of the formats (all three use the same two):

.. math::
    P = \frac{1}{6V}\sum_x\sum_{\mu<\nu}\frac13\mathrm{Re\,tr}\,U_{\mu\nu}(x), \qquad
    L = \frac{1}{4V}\sum_x\sum_\mu\frac13\mathrm{Re\,tr}\,U_\mu(x)

(openQCD records :math:`3P`, the trace without the :math:`\frac13`).

Parallel reads (ILDG, NERSC): time is the slowest index, so each rank of a :class:`World` reads
one contiguous block of time slices (:func:`time_block`) from the shared file, the checksums
(XOR and sums of per-site terms) are combined over the ranks, and the slabs are gathered so every
rank holds the configuration. Errors are collective (:func:`collectively`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, TypeVar

import numpy as np
import torch

from hpcflow.parallel.world import World, chain_blocks
from hpcflow.theories.gauge import WilsonGaugeAction

T = TypeVar("T")

__all__ = ["GaugeFile", "GaugeFileError", "check_su3_links", "collectively", "from_lexicographic", "gather_time",
           "link_trace", "plaquette", "read_exactly", "time_block", "to_lexicographic"]

ILDG_ORDER = (1, 2, 3, 0)  # the hpcflow direction of ILDG's mu = x, y, z, t


class GaugeFileError(ValueError):
    """A gauge file that cannot be read as its format says (one line, naming the file)."""

    def __init__(self, path: Path | str, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path, self.why = path, why


def collectively(world: World, path: Path | str, read: Callable[[], T]) -> T:
    """``read()`` on every rank of ``world``; if it fails on any rank, every rank raises that
    rank's :class:`GaugeFileError` (the first in rank order), so no rank waits in a collective."""
    try:
        result, why = read(), None
    except GaugeFileError as err:
        result, why = None, err.why
    failed = [w for w in world.allgather(why) if w is not None]
    if failed:
        raise GaugeFileError(path, failed[0])
    return result  # type: ignore[return-value]


def time_block(world: World, lt: int) -> range:
    """The time slices this rank reads: contiguous blocks of the ``lt`` slices in rank order."""
    return chain_blocks(lt, world.size)[world.rank] if lt >= world.size else range(0, lt if world.rank == 0 else 0)


@dataclass
class GaugeFile:
    """One configuration read from a file: links ``(4, T, X, Y, Z, 3, 3)`` complex128, the header's
    plaquette :math:`P` (normalised as in the module docstring; ``None`` if the format has none), the
    checksum the file carries (as text) and the rest of its metadata."""

    links: np.ndarray
    plaquette: float | None
    checksum: str
    meta: dict[str, Any] = field(default_factory=dict)


def to_lexicographic(links: np.ndarray) -> np.ndarray:
    """``(4, T, X, Y, Z, N, N)`` -> ``(T, Z, Y, X, 4, N, N)`` with the links in the order x, y, z, t."""
    lex = np.stack([links[mu] for mu in ILDG_ORDER], axis=4)  # (T, X, Y, Z, 4, N, N)
    return np.ascontiguousarray(lex.transpose(0, 3, 2, 1, 4, 5, 6))


def from_lexicographic(lex: np.ndarray) -> np.ndarray:
    """The inverse of :func:`to_lexicographic`."""
    sites = lex.transpose(0, 3, 2, 1, 4, 5, 6)  # (T, X, Y, Z, 4, N, N)
    links = np.empty((4, *sites.shape[:4], *sites.shape[5:]), dtype=lex.dtype)
    for i, mu in enumerate(ILDG_ORDER):
        links[mu] = sites[..., i, :, :]
    return links


def gather_time(world: World, slab: np.ndarray) -> np.ndarray:
    """Every rank's lexicographic slab ``(t, Z, Y, X, ...)`` joined along time, on every rank."""
    return slab if world.size == 1 else np.concatenate([s for s in world.allgather(slab) if len(s)], axis=0)


def plaquette(links: np.ndarray) -> float:
    """:math:`P` of ``(d, *L, N, N)`` links (module docstring): the gauge action's mean plaquette."""
    return float(WilsonGaugeAction.mean_plaquette(torch.from_numpy(np.ascontiguousarray(links))[None]))


def link_trace(links: np.ndarray) -> float:
    """:math:`L` of ``(d, *L, N, N)`` links (module docstring)."""
    return float(np.trace(links, axis1=-2, axis2=-1).real.mean() / links.shape[-1])


def check_su3_links(links: np.ndarray, what: str) -> None:
    """Refuse anything but 4D SU(3) links ``(4, T, X, Y, Z, 3, 3)``."""
    if links.ndim != 7 or links.shape[0] != 4 or links.shape[-2:] != (3, 3):
        raise ValueError(f"{what}: these formats hold 4D SU(3) links (4, T, X, Y, Z, 3, 3); got shape "
                         f"{list(links.shape)} (2D U(1) and SU(N) ensembles stay in hpcflow's HDF5 store)")


def read_exactly(fh: BinaryIO, n: int, path: Path | str, what: str) -> bytes:
    """``n`` bytes of ``fh``, or a :class:`GaugeFileError` saying the file is truncated."""
    data = fh.read(n)
    if len(data) != n:
        raise GaugeFileError(path, f"truncated: {what} needs {n} bytes, {len(data)} are left")
    return data
