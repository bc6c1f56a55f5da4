r"""The two checkerboard sublattices of a periodic 2D lattice, each packed into a dense rectangle.

A site :math:`(t, x)` has parity :math:`(t + x) \bmod 2`. Each parity class is a square lattice
of spacing :math:`\sqrt2` turned by 45 degrees; in its own coordinates :math:`(v, u)` the site of
parity :math:`s` is

.. math::
    t = (u + v + s) \bmod L_0,\qquad x = (u - v) \bmod L_1,

so a step in :math:`u` or :math:`v` is a diagonal step of the original lattice, and a
:math:`k\times k` convolution in :math:`(v, u)` (:math:`k = 2m+1`) sees every same-parity site
within taxicab distance :math:`2m`. The rectangle :math:`0 \le u < U`, :math:`0 \le v < V` with
:math:`U = \gcd(L_0, L_1)/2`, :math:`V = L_0L_1/(2U)` holds every site of a parity exactly once
(for a square lattice :math:`V = L`, :math:`U = L/2`); beyond its edges the periodic lattice
continues with a twist, which :meth:`SublatticeFrame.pad_index` takes care of by gathering.

Both extents must be even (otherwise the two parities are not each other's nearest neighbours).
Packed fields have shape ``(B, N)`` with ``N = V * U`` in row-major ``(v, u)`` order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["SplitField", "SublatticeFrame", "sublattice_frame"]


class SublatticeFrame:
    """Index tables of the packed sublattices of one lattice shape (use :func:`sublattice_frame`).

    Attributes:
        shape: ``(L0, L1)``.
        rows, cols: ``V`` and ``U`` of the packed rectangle.
        sites: ``(2, N)`` flat lattice index of packed entry ``n`` of parity ``s``.
    """

    def __init__(self, shape: tuple[int, int], device: torch.device) -> None:
        if len(shape) != 2 or any(n % 2 or n < 2 for n in shape):
            raise ValueError(f"lattice shape {tuple(shape)}: checkerboard sublattices need two even extents")
        l0, l1 = shape
        self.shape = (l0, l1)
        self.cols = math.gcd(l0, l1) // 2
        self.rows = l0 * l1 // (2 * self.cols)
        self.device = device
        v, u = torch.meshgrid(torch.arange(self.rows), torch.arange(self.cols), indexing="ij")
        sites = torch.stack([self._flat_site(v, u, s).flatten() for s in (0, 1)])
        order = torch.empty(l0 * l1, dtype=torch.long)
        order[sites.flatten()] = torch.arange(l0 * l1)
        self._packed_index = torch.empty(l0 * l1, dtype=torch.long)
        self._packed_index[sites] = torch.arange(self.rows * self.cols).expand(2, -1)
        self.sites, self._unpack = sites.to(device), order.to(device)
        self._pad: dict[tuple[int, int, int], Tensor] = {}

    def _flat_site(self, v: Tensor, u: Tensor, parity: int) -> Tensor:
        l0, l1 = self.shape
        return ((u + v + parity) % l0) * l1 + (u - v) % l1

    def pack(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, L0, L1) -> (even, odd)``, each ``(B, N)``."""
        flat = phi.flatten(1)
        return flat[:, self.sites[0]], flat[:, self.sites[1]]

    def unpack(self, even: Tensor, odd: Tensor) -> Tensor:
        """Inverse of :meth:`pack`."""
        return torch.cat([even, odd], 1)[:, self._unpack].view(-1, *self.shape)

    def pad_index(self, parity: int, before: int, after: int) -> Tensor:
        """Gather index ``(V + before + after) * (U + before + after)`` into a packed field of
        ``parity`` that continues the rectangle periodically by ``before``/``after`` rows and
        columns on each side."""
        key = (parity, before, after)
        if key not in self._pad:
            v, u = torch.meshgrid(torch.arange(-before, self.rows + after),
                                  torch.arange(-before, self.cols + after), indexing="ij")
            self._pad[key] = self._packed_index[self._flat_site(v, u, parity).flatten()].to(self.device)
        return self._pad[key]

    def padded(self, field: Tensor, parity: int, before: int, after: int) -> Tensor:
        """A packed field ``(B, N)`` of ``parity`` as an image ``(B, 1, V + b + a, U + b + a)``."""
        n = before + after
        return field.index_select(1, self.pad_index(parity, before, after)).view(-1, 1, self.rows + n, self.cols + n)


@lru_cache(maxsize=None)
def sublattice_frame(shape: tuple[int, int], device: torch.device = torch.device("cpu")) -> SublatticeFrame:
    """The (cached) :class:`SublatticeFrame` of ``shape`` with its tables on ``device``."""
    return SublatticeFrame(tuple(shape), torch.device(device))


@dataclass(frozen=True)
class SplitField:
    """A batch of fields held as its two packed sublattices (the state inside a flow)."""

    parts: tuple[Tensor, Tensor]
    frame: SublatticeFrame

    @classmethod
    def split(cls, phi: Tensor) -> SplitField:
        """From ``(B, L0, L1)``."""
        frame = sublattice_frame(tuple(phi.shape[1:]), phi.device)
        return cls(frame.pack(phi), frame)

    def join(self) -> Tensor:
        """Back to ``(B, L0, L1)``."""
        return self.frame.unpack(*self.parts)

    def replace(self, parity: int, values: Tensor) -> SplitField:
        """The same field with the sites of ``parity`` set to ``values``."""
        parts = (values, self.parts[1]) if parity == 0 else (self.parts[0], values)
        return SplitField(parts, self.frame)

    def scale(self, factor: Tensor) -> SplitField:
        """Every site multiplied by ``factor``."""
        return SplitField((self.parts[0] * factor, self.parts[1] * factor), self.frame)

    @property
    def volume(self) -> int:
        """Sites per configuration."""
        return 2 * self.parts[0].shape[1]
