r"""Parallel transport of colour fields along paths of links: the one implementation that the
Wilson operator's hop, the parallel-transport convolutions and the multigrid setup share.

A hop along :math:`\pm\hat\mu` brings the field at the neighbour back to :math:`x`:

.. math::
    (T_{+\mu}\psi)(x) = U_\mu(x)\,\psi(x+\hat\mu), \qquad
    (T_{-\mu}\psi)(x) = U_\mu(x-\hat\mu)^\dagger\,\psi(x-\hat\mu),

acting on the colour index (the last one). A path is a tuple of signed directions
``(+(mu+1) or -(mu+1), ...)``, read from :math:`x`: :math:`T_{(s_1, s_2)} = T_{s_1} T_{s_2}`, so
:math:`(T_{(+1, +2)}\psi)(x) = U_0(x) U_1(x+\hat 0)\psi(x+\hat 0+\hat 1)`; the empty path is the
identity. Under a gauge transformation :math:`U_\mu(x) \to \Omega(x)U_\mu(x)\Omega(x+\hat\mu)^\dagger`,
:math:`\psi \to \Omega\psi`, every transport is covariant: :math:`T_p\psi \to \Omega\,T_p\psi`.

Shapes: links ``(d, *L, N, N)``; fields ``(..., *L, S, N)`` with any leading axes (batch,
channels), the lattice axes right before the spin and colour axes.

On the CPU a hop runs in the compiled kernel of :mod:`hpcflow.kernels.dirac` where it is built
(``backend="auto"``); the torch code here is the reference it is tested against.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import Tensor

from hpcflow.kernels import compiled
from hpcflow.kernels.dirac import CompiledTransport
from hpcflow.theories.gauge import dagger

__all__ = ["Path", "Transporter", "one_hop_paths", "paths_up_to"]

Path = tuple[int, ...]


def one_hop_paths(dim: int) -> list[Path]:
    """The identity and the :math:`2d` one-hop paths ``(+1,), (-1,), (+2,), ...``."""
    return [(), *[(s * (mu + 1),) for mu in range(dim) for s in (1, -1)]]


def paths_up_to(dim: int, hops: int) -> list[Path]:
    """Every path of at most ``hops`` hops that never steps straight back (no ``+mu`` then ``-mu``)."""
    out: list[Path] = [()]
    frontier: list[Path] = [()]
    for _ in range(hops):
        frontier = [p + (s,) for p in frontier for s in (*range(1, dim + 1), *range(-dim, 0)) if not p or p[-1] != -s]
        out += frontier
    return out


class Transporter:
    """The transports of one gauge field: single hops, and paths with their partial products cached.

    Arguments:
        links: ``(d, *L, N, N)`` (the operator's own, boundary phases included).
        backend: ``"auto"`` (the compiled hop for CPU fields where it is built) or ``"torch"``.
    """

    def __init__(self, links: Tensor, backend: str = "auto") -> None:
        if backend not in ("auto", "torch"):
            raise ValueError(f"backend = {backend!r}: expected 'auto' or 'torch'")
        self.dim = links.shape[0]
        self.links = links
        usable = backend == "auto" and compiled() is not None and links.device.type == "cpu" and links.is_complex()
        self.kernel = CompiledTransport(links) if usable and links.shape[-1] <= 3 and not links.requires_grad else None
        # psi @ U^T applies U to the colour index; the backward hop uses U(x - mu)^dagger
        self.forward_t = links.transpose(-1, -2)
        self.backward_t = torch.stack([dagger(torch.roll(links[mu], 1, mu)).transpose(-1, -2) for mu in range(self.dim)])

    def _lattice_axis(self, psi: Tensor, mu: int) -> int:
        return psi.dim() - 2 - self.dim + mu

    def hop(self, psi: Tensor, step: int) -> Tensor:
        """:math:`T_{\\pm\\mu}\\psi` for ``step = +-(mu + 1)``."""
        mu = abs(step) - 1
        if step == 0 or mu >= self.dim:
            raise ValueError(f"hop {step}: expected +-1 .. +-{self.dim}")
        if self.kernel is not None and self.kernel.accepts(psi):
            return self.kernel.hop(psi, step)
        axis = self._lattice_axis(psi, mu)
        if step > 0:
            return torch.roll(psi, -1, axis) @ self.forward_t[mu]
        return torch.roll(psi, 1, axis) @ self.backward_t[mu]

    def transport(self, psi: Tensor, paths: Iterable[Path]) -> list[Tensor]:
        """:math:`T_p\\psi` for each path, each partial path computed once (shared suffixes reused)."""
        cache: dict[Path, Tensor] = {(): psi}

        def along(path: Path) -> Tensor:
            if path not in cache:
                cache[path] = self.hop(along(path[1:]), path[0])
            return cache[path]

        return [along(tuple(p)) for p in paths]

    def hops(self, paths: Iterable[Path]) -> int:
        """Single hops that :meth:`transport` of ``paths`` computes (its cost: one colour
        matrix-vector product per site and spin each)."""
        seen: set[Path] = set()
        for p in paths:
            for i in range(len(p)):
                seen.add(tuple(p[i:]))
        return len(seen)
