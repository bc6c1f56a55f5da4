"""Periodic lattice geometry for batched fields ``(B, L0, ..., L_{d-1})``.

Conventions: the batch (chain) axis comes first; lattice axis ``mu`` is tensor axis ``mu + 1``;
boundaries are periodic. ``shift(phi, mu, +1)[x] = phi[x + mu_hat]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["lattice_momenta", "lattice_momentum_squared", "shift"]


def shift(field: Tensor, mu: int, sign: int = 1) -> Tensor:
    r"""Return the field translated so that ``out[x] = field[x + sign * mu_hat]``.

    Arguments:
        field: tensor ``(B, L0, ..., L_{d-1}, ...)``; trailing internal indices are kept.
        mu: lattice direction, ``0 <= mu < d``.
        sign: ``+1`` for the forward neighbour, ``-1`` for the backward one.

    Example:
        >>> shift(torch.arange(4.0).reshape(1, 4), 0, +1)
        tensor([[1., 2., 3., 0.]])
    """
    return torch.roll(field, shifts=-sign, dims=mu + 1)


def lattice_momenta(shape: tuple[int, ...], dtype: torch.dtype = torch.float64) -> list[Tensor]:
    r"""Momenta :math:`p_\mu = 2\pi n_\mu / L_\mu` on the periodic lattice, broadcast to ``shape``.

    Returns one tensor of shape ``shape`` per direction, ordered like ``torch.fft.fftn``.
    """
    axes = [2 * math.pi * torch.fft.fftfreq(n, dtype=dtype) for n in shape]
    return list(torch.meshgrid(*axes, indexing="ij"))


def lattice_momentum_squared(shape: tuple[int, ...], dtype: torch.dtype = torch.float64) -> Tensor:
    r""":math:`\hat p^2 = \sum_\mu 4\sin^2(p_\mu/2) \in [0, 4d]` on the momentum grid of ``shape``
    (ordered like ``torch.fft.fftn``): the eigenvalues of minus the lattice Laplacian."""
    return sum(4.0 * torch.sin(p / 2) ** 2 for p in lattice_momenta(shape, dtype))
