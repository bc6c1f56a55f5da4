r"""Gauge-equivariant layers for Dirac-operator preconditioners (Lehner & Wettig 2023).

Fields carry a channel axis: ``(B, C, *L, S, N)`` (batch of right-hand sides, channels, lattice,
spin, colour). A parallel-transport convolution (PTC) maps ``C_in`` channels to ``C_out``:

.. math::
    \psi^{out}_a(x) = \sum_{b=1}^{C_{in}}\sum_{p} W_{abp}\,(T_p\psi^{in}_b)(x),

with :math:`T_p` the transport along path :math:`p` (:mod:`hpcflow.dirac.transport`; the empty
path is the identity) and :math:`W_{abp}` complex :math:`S\times S` matrices acting on spin. The
local version (LPTC) has weights per site, :math:`W_{abp}(x)`. Since :math:`T_p\psi \to \Omega\,T_p\psi`
under a gauge transformation and :math:`W` acts on spin only, every layer and every composition
of them is gauge equivariant: :math:`M(U^\Omega)(\Omega\psi) = \Omega\,M(U)\psi`.

Layers are structure (paths, channels) plus weights; they are applied with a
:class:`TransportCache`, so that the transports of an input are computed once and shared by every
layer of a :class:`Parallel` that reads it. Combinators compose layers into models:
:class:`Sequence`, :class:`Parallel` (the sum of its branches) and :class:`Residual`
(:math:`\psi + f(\psi)`).

References:
    | C. Lehner, T. Wettig, arXiv:2302.05419 and arXiv:2304.10438
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from hpcflow.dirac.transport import Path, Transporter

__all__ = ["LPTC", "PTC", "Parallel", "PrecondLayer", "Residual", "Sequence", "TransportCache"]


class TransportCache:
    """The transports of the fields of one forward pass, each (field, path) computed once."""

    def __init__(self, transporter: Transporter) -> None:
        self.transporter = transporter
        self._cache: dict[tuple[int, Path], Tensor] = {}
        self._fields: dict[int, Tensor] = {}  # keeps the keyed fields alive (ids stay unique)

    def transport(self, psi: Tensor, paths: list[Path]) -> Tensor:
        """``(B, C, P, *L, S, N)``: :math:`T_p\\psi` for every path, from the cache where possible."""
        key = id(psi)
        self._fields[key] = psi
        missing = [p for p in paths if (key, p) not in self._cache]
        for path, out in zip(missing, self.transporter.transport(psi, missing)):
            self._cache[(key, path)] = out
        return torch.stack([self._cache[(key, p)] for p in paths], 2)


class PrecondLayer(nn.Module):
    """A layer or a combination of layers: ``(B, C_in, *L, S, N) -> (B, C_out, *L, S, N)``."""

    c_in: int
    c_out: int

    def forward(self, psi: Tensor, cache: TransportCache) -> Tensor:  # noqa: D102
        raise NotImplementedError

    def flops_per_site(self, colours: int) -> float:
        """Real floating-point operations per lattice site and right-hand side."""
        raise NotImplementedError


def _complex_weights(shape: tuple[int, ...], fan_in: int, dtype: torch.dtype) -> nn.Parameter:
    scale = 1.0 / math.sqrt(2.0 * fan_in)
    real = torch.randn(*shape, 2, dtype=torch.float64) * scale
    return nn.Parameter(torch.view_as_complex(real).to(dtype))


class PTC(PrecondLayer):
    """Parallel-transport convolution with one set of weights for every site (volume independent).

    Arguments:
        c_in, c_out: channels.
        paths: transport paths (``()`` the identity; :func:`~hpcflow.dirac.transport.one_hop_paths`).
        spin: spin components ``S`` (2 in 2D, 4 in 4D).
        dtype: complex64 or complex128.
    """

    def __init__(self, c_in: int, c_out: int, paths: list[Path], spin: int, dtype: torch.dtype = torch.complex128) -> None:
        super().__init__()
        self.c_in, self.c_out, self.paths, self.spin = c_in, c_out, [tuple(p) for p in paths], spin
        self.weight = _complex_weights((c_out, c_in, len(self.paths), spin, spin), c_in * len(self.paths) * spin, dtype)

    def forward(self, psi: Tensor, cache: TransportCache) -> Tensor:
        moved = cache.transport(psi, self.paths)  # (B, C_in, P, *L, S, N)
        return torch.einsum("abpst,Bbp...tn->Ba...sn", self.weight, moved)

    def flops_per_site(self, colours: int) -> float:
        hops = cache_free_hops(self.paths)
        transport = self.c_in * hops * self.spin * colours * (8 * colours - 2)  # N x N complex mat-vec per hop
        weights = self.c_out * self.c_in * len(self.paths) * self.spin * self.spin * colours * 8
        return float(transport + weights)


class LPTC(PTC):
    """Local PTC: the weights differ from site to site (``W_{abp}(x)``), for one lattice shape."""

    def __init__(self, c_in: int, c_out: int, paths: list[Path], spin: int, shape: tuple[int, ...],
                 dtype: torch.dtype = torch.complex128) -> None:
        super().__init__(c_in, c_out, paths, spin, dtype)
        self.shape = tuple(shape)
        fan_in = c_in * len(self.paths) * spin
        self.weight = _complex_weights((c_out, c_in, len(self.paths), *self.shape, spin, spin), fan_in, dtype)

    def forward(self, psi: Tensor, cache: TransportCache) -> Tensor:
        if tuple(psi.shape[2:-2]) != self.shape:
            raise ValueError(f"LPTC weights are for lattice {self.shape}, the field has {tuple(psi.shape[2:-2])}")
        moved = cache.transport(psi, self.paths)
        return torch.einsum("abp...st,Bbp...tn->Ba...sn", self.weight, moved)


def cache_free_hops(paths: list[Path]) -> int:
    """Single hops needed by ``paths`` with shared suffixes computed once."""
    return len({tuple(p[i:]) for p in paths for i in range(len(p))})


class Sequence(PrecondLayer):
    """Layers applied one after the other."""

    def __init__(self, layers: list[PrecondLayer]) -> None:
        super().__init__()
        for a, b in zip(layers[:-1], layers[1:]):
            if a.c_out != b.c_in:
                raise ValueError(f"a layer with {a.c_out} output channels is followed by one with {b.c_in} inputs")
        self.layers = nn.ModuleList(layers)
        self.c_in, self.c_out = layers[0].c_in, layers[-1].c_out

    def forward(self, psi: Tensor, cache: TransportCache) -> Tensor:
        for layer in self.layers:
            psi = layer(psi, cache)
        return psi

    def flops_per_site(self, colours: int) -> float:
        return sum(layer.flops_per_site(colours) for layer in self.layers)


class Parallel(PrecondLayer):
    """The sum of branches that read the same input (its transports shared through the cache)."""

    def __init__(self, branches: list[PrecondLayer]) -> None:
        super().__init__()
        if len({(b.c_in, b.c_out) for b in branches}) != 1:
            raise ValueError("parallel branches need the same input and output channels")
        self.branches = nn.ModuleList(branches)
        self.c_in, self.c_out = branches[0].c_in, branches[0].c_out

    def forward(self, psi: Tensor, cache: TransportCache) -> Tensor:
        return sum(branch(psi, cache) for branch in self.branches)

    def flops_per_site(self, colours: int) -> float:
        return sum(b.flops_per_site(colours) for b in self.branches)


class Residual(PrecondLayer):
    """:math:`\\psi + f(\\psi)` for an ``f`` that keeps the channels."""

    def __init__(self, inner: PrecondLayer) -> None:
        super().__init__()
        if inner.c_in != inner.c_out:
            raise ValueError("a residual block keeps the channels")
        self.inner, self.c_in, self.c_out = inner, inner.c_in, inner.c_out

    def forward(self, psi: Tensor, cache: TransportCache) -> Tensor:
        return psi + self.inner(psi, cache)

    def flops_per_site(self, colours: int) -> float:
        return self.inner.flops_per_site(colours)
