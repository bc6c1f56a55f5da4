r"""The compiled Wilson(-clover) operator and parallel transports (``csrc/wilson.h``), with the
tables they need and autograd rules, so that they drop in where the torch reference runs.

Spin projection needs a chiral basis: every :math:`\gamma_\mu = \begin{pmatrix}0 & A_\mu\\
A_\mu^\dagger & 0\end{pmatrix}` in blocks of :math:`H = S/2` spins, :math:`A_\mu` one power of
:math:`i` per row. The kernel has the 4D DeGrand-Rossi and the 2D Pauli bases of
:mod:`hpcflow.dirac.gamma` built in, and :class:`CompiledWilson` checks that the gamma matrices it
is given are those. The local term
(mass and clover) is then block diagonal in chirality, two :math:`HN\times HN` blocks per site.

Autograd: both maps are linear in the field, so the gradient of :math:`T_{+\mu}` is its adjoint
:math:`T_{+\mu}^\dagger = T_{-\mu}`, and that of :math:`D` is :math:`D^\dagger = \gamma_5D\gamma_5`;
gradients with respect to the links are not provided (links that require grad use the reference).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import torch
from torch import Tensor

from hpcflow.kernels import compiled

__all__ = ["CompiledTransport", "CompiledWilson", "chiral_blocks", "cpu_neighbour_table", "neighbour_table", "spin_tables"]


def neighbour_table(shape: tuple[int, ...], device: torch.device | str = "cpu") -> Tensor:
    """``(V, 2d)`` int64: the row-major site index of :math:`x + \\hat\\mu` (column ``2 mu``) and of
    :math:`x - \\hat\\mu` (column ``2 mu + 1``), periodic."""
    index = torch.arange(int(torch.tensor(shape).prod()), device=device).reshape(shape)
    cols = [torch.roll(index, -s, mu).flatten() for mu in range(len(shape)) for s in (1, -1)]
    return torch.stack(cols, 1).contiguous()


@lru_cache(maxsize=8)
def cpu_neighbour_table(shape: tuple[int, ...]) -> Tensor:
    """:func:`neighbour_table` on the CPU, built once per shape (the kernels only read it)."""
    return neighbour_table(shape)


def spin_tables(gammas: Tensor) -> tuple[Tensor, Tensor]:
    r"""``(perm, power)``, each ``(2, d, H)`` int64: :math:`(A_\mu\chi)_r = i^{\text{power}[0,\mu,r]}\,
    \chi_{\text{perm}[0,\mu,r]}` and the same for :math:`A_\mu^\dagger` in row 1.

    Raises ``ValueError`` when a gamma matrix is not of the chiral block form.
    """
    d, s = gammas.shape[0], gammas.shape[-1]
    h = s // 2
    g = gammas.to(torch.complex128).cpu()
    perm = torch.zeros(2, d, h, dtype=torch.int64)
    power = torch.zeros(2, d, h, dtype=torch.int64)
    for mu in range(d):
        a = g[mu, :h, h:]
        if g[mu, :h, :h].abs().max() > 0 or g[mu, h:, h:].abs().max() > 0 or not torch.allclose(g[mu, h:, :h], a.conj().T):
            raise ValueError(f"gamma_{mu} is not block off-diagonal: the compiled kernel needs a chiral basis")
        for k, block in enumerate((a, a.conj().T)):
            for r in range(h):
                cols = block[r].abs().nonzero().flatten()
                powers = [q for q in range(4) if len(cols) == 1 and abs(block[r, cols[0]] - 1j**q) < 1e-12]
                if not powers:
                    raise ValueError(f"gamma_{mu}: block row {r} is not a single power of i")
                perm[k, mu, r], power[k, mu, r] = cols[0], powers[0]
    return perm, power


def chiral_blocks(local: Tensor) -> Tensor:
    """``(*L, S N, S N) -> (V, 2, H N, H N)``: the chirality blocks of a site-local matrix, after
    checking that it has no other entries."""
    n2 = local.shape[-1]
    half = n2 // 2
    flat = local.reshape(-1, n2, n2)
    off = torch.cat([flat[:, :half, half:], flat[:, half:, :half]]).abs().max() if flat.numel() else 0
    if off > 1e-12 * max(1.0, float(flat.abs().max())):
        raise ValueError(f"the local term mixes chiralities (|off-block| = {float(off):.2e}): not a chiral basis")
    return torch.stack([flat[:, :half, :half], flat[:, half:, half:]], 1).contiguous()


class _Linear(torch.autograd.Function):
    """``y = A x`` with ``dL/dx = A^dagger dL/dy`` (A and its adjoint given as callables)."""

    @staticmethod
    def forward(ctx, x: Tensor, apply: Callable[[Tensor], Tensor], adjoint: Callable[[Tensor], Tensor]) -> Tensor:
        ctx.adjoint = adjoint
        return apply(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None, None]:
        return ctx.adjoint(grad.contiguous()), None, None


def _linear(x: Tensor, apply: Callable[[Tensor], Tensor], adjoint: Callable[[Tensor], Tensor]) -> Tensor:
    return _Linear.apply(x, apply, adjoint) if x.requires_grad else apply(x)


class CompiledTransport:
    """Single hops :math:`T_{\\pm\\mu}` of fields ``(..., *L, S, N)`` by the compiled kernel.

    Arguments:
        links: ``(d, *L, N, N)`` with the boundary phases on them, complex64 or complex128, CPU.
    """

    def __init__(self, links: Tensor) -> None:
        self.ext = compiled()
        if self.ext is None:
            raise RuntimeError("the compiled kernels are not available")
        self.dim, self.shape = links.shape[0], tuple(links.shape[1:-2])
        self.dtype = links.dtype
        self.site_links = links.movedim(0, -3).reshape(-1, self.dim, *links.shape[-2:]).contiguous()
        self.neighbours = neighbour_table(self.shape)

    def accepts(self, psi: Tensor) -> bool:
        """Whether the kernel can apply to ``psi`` (CPU, the links' dtype, lattice axes in place)."""
        return psi.device.type == "cpu" and psi.dtype == self.dtype and tuple(psi.shape[-2 - self.dim:-2]) == self.shape

    def _hop(self, psi: Tensor, step: int) -> Tensor:
        lead = psi.shape[:-2 - self.dim]
        flat = psi.reshape(*lead, -1, *psi.shape[-2:]).contiguous()
        return self.ext.hop(flat, self.site_links, self.neighbours, abs(step) - 1, step > 0).view(psi.shape)

    def hop(self, psi: Tensor, step: int) -> Tensor:
        """:math:`T_{\\pm\\mu}\\psi` for ``step = +-(mu + 1)`` (differentiable in ``psi``)."""
        return _linear(psi, lambda x: self._hop(x, step), lambda g: self._hop(g, -step))


class CompiledWilson:
    r""":math:`D\psi` by the compiled kernel: :math:`L(x)\psi(x) - \frac12\sum_\mu[\dots]` as in
    :class:`hpcflow.dirac.wilson.WilsonDirac`, whose operator it is.

    Arguments:
        transport: the compiled hops of the operator's links (boundary phases on them), whose
            site-major links and neighbour table the operator shares.
        gammas: ``(d, S, S)`` in a chiral basis; ``gamma5`` its chirality (for the adjoint).
        diagonal: :math:`d + m`.
        clover: the clover matrix ``(*L, S N, S N)`` or ``None``.
    """

    def __init__(self, transport: CompiledTransport, gammas: Tensor, gamma5: Tensor, diagonal: float,
                 clover: Tensor | None) -> None:
        self.transport = transport
        self.ext = transport.ext
        theirs, ours = spin_tables(gammas), self.ext.spin_basis(gammas.shape[0])
        if not all(torch.equal(a, b) for a, b in zip(theirs, ours)):
            raise ValueError("the gamma matrices differ from the chiral basis the compiled kernel implements")
        self.gamma5 = gamma5
        self.diagonal = diagonal
        if clover is None:
            self.local = torch.empty(0, dtype=transport.dtype)
        else:
            eye = torch.eye(clover.shape[-1], dtype=clover.dtype, device=clover.device)
            self.local = chiral_blocks(clover + diagonal * eye)

    def accepts(self, psi: Tensor) -> bool:
        """Whether the kernel can apply to ``psi``."""
        return self.transport.accepts(psi)

    def _apply(self, psi: Tensor) -> Tensor:
        t = self.transport
        flat = psi.reshape(-1, len(t.neighbours), *psi.shape[-2:]).contiguous()
        out = self.ext.wilson(flat, t.site_links, t.neighbours, self.local, self.diagonal)
        return out.view(psi.shape)

    def _adjoint(self, psi: Tensor) -> Tensor:
        return self.gamma5 @ self._apply(self.gamma5 @ psi)

    def __call__(self, psi: Tensor) -> Tensor:
        """:math:`D\\psi` for spinors ``(..., *L, S, N)`` (differentiable in ``psi``)."""
        return _linear(psi, self._apply, self._adjoint)
