r"""A learned free-field map in momentum space: the long-distance correlations of a flow.

.. math::
    y = \mathcal F^{-1}\big[\sigma(p)\, \mathcal F x\big], \qquad
    \sigma(p)^{-2} = \sum_{k=0}^{K-1} e^{c_k} (\hat p^2)^k, \qquad
    \hat p^2 = \sum_\mu 4 \sin^2(p_\mu/2), \quad p_\mu = 2\pi n_\mu / L_\mu .

Applied to unit Gaussian noise it draws a free field with propagator :math:`\sigma(p)^2`
(``K = 2``: :math:`1/(m^2 + Z\hat p^2)` with learned :math:`m^2 = e^{c_0}`, :math:`Z = e^{c_1}`), so
as the first layer of a flow it turns the prior into a correlated Gaussian and leaves the local
coupling layers the interaction only: coupling layers with a conditioner of finite reach
cannot build correlations longer than their reach, which is what limits them as the
correlation length grows. The map is a real circulant matrix with eigenvalues :math:`\sigma(p)`
(:math:`\sigma(p) = \sigma(-p)`), so :math:`\log|\det J| = \sum_p \log\sigma(p)` over all
:math:`V` momenta, independent of the field. It is linear, hence odd under :math:`\phi\to-\phi`,
commutes with every translation, and depends on the lattice only through :math:`\hat p^2`, so a
flow trained on one volume runs on another.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from hpcflow.lattice.sublattice import SplitField

__all__ = ["FreeFieldLayer", "lattice_momentum_squared"]


def lattice_momentum_squared(shape: tuple[int, int], dtype: torch.dtype, device: torch.device) -> Tensor:
    r""":math:`\hat p^2` at every momentum of a periodic ``L0 x L1`` lattice (``fft2`` order)."""
    p0, p1 = (2 * math.pi * torch.fft.fftfreq(n, dtype=dtype, device=device) for n in shape)
    return 4 * torch.sin(p0 / 2)[:, None] ** 2 + 4 * torch.sin(p1 / 2)[None, :] ** 2


class FreeFieldLayer(nn.Module):
    r"""Scale every momentum mode by :math:`\sigma(p)` (module docstring).

    Arguments:
        terms: number :math:`K` of powers of :math:`\hat p^2` in :math:`\sigma^{-2}` (>= 1).

    The coefficients start at :math:`\sigma(p)^{-2} = 1 + 10^{-2}\hat p^2`, within 4% of the identity.
    """

    def __init__(self, terms: int = 2) -> None:
        super().__init__()
        if terms < 1:
            raise ValueError(f"terms = {terms}: must be >= 1")
        init = torch.full((terms,), math.log(1e-2))
        init[0] = 0.0
        self.log_coeffs = nn.Parameter(init)

    def log_sigma(self, shape: tuple[int, int], dtype: torch.dtype, device: torch.device) -> Tensor:
        r""":math:`\log\sigma(p)` at every momentum (``fft2`` order)."""
        q = lattice_momentum_squared(shape, dtype, device)
        powers = torch.stack([q**k for k in range(self.log_coeffs.numel())])
        coeffs = torch.exp(self.log_coeffs.to(dtype))[:, None, None]
        return -0.5 * torch.log((coeffs * powers).sum(0))

    def _scale_modes(self, field: SplitField, sign: float) -> tuple[SplitField, Tensor]:
        x = field.join()
        shape = tuple(x.shape[1:])
        log_sigma = sign * self.log_sigma(shape, x.dtype, x.device)
        half = torch.exp(log_sigma[:, : shape[1] // 2 + 1])  # the rfft2 half grid
        y = torch.fft.irfft2(torch.fft.rfft2(x) * half, s=shape)
        return SplitField.split(y), log_sigma.sum().expand(x.shape[0])

    def forward(self, field: SplitField) -> tuple[SplitField, Tensor]:
        """``(y, log|det dy/dx|)``."""
        return self._scale_modes(field, 1.0)

    def inverse(self, field: SplitField) -> tuple[SplitField, Tensor]:
        """``(x, log|det dx/dy|)``."""
        return self._scale_modes(field, -1.0)
