r"""A learned Gaussian layer in momentum space: long-range correlations at the cost of an FFT.

The map is diagonal in momentum space,

.. math::
    \tilde y(k) = e^{a(k)}\,\tilde x(k),\qquad
    \log|\det J| = \sum_k a(k),

with :math:`\tilde x(k) = \sum_x e^{-ik\cdot x} x_x`, :math:`k_\mu = 2\pi n_\mu / L_\mu`. The
log-scale depends on :math:`k` only through the lattice momentum
:math:`\hat p^2 = \sum_\mu 4\sin^2(k_\mu/2) \in [0, 4d]`:

.. math::
    a(k) = c_0 + \sum_{n=1}^{3} c_n u^n - \tfrac{g}{2}\log\frac{\hat p^2 + m^2}{4d + m^2},
    \qquad u = \hat p^2 / 4d,\ m^2 = e^{\mu},

so :math:`a(-k) = a(k)` and the map is a real, symmetric, translation-invariant linear map of the
field (odd under :math:`\phi\to-\phi`, so it keeps Z2 equivariance). At :math:`g = 1`,
:math:`c_n = 0` it turns unit Gaussians into a free field of mass :math:`m` (up to a constant
factor): the two-point function :math:`\propto 1/(\hat p^2 + m^2)`. The parameters do not depend on
the lattice size (volume transfer); all start at zero, so a fresh layer is the identity map.
Placed first in a flow it makes the prior a learned correlated Gaussian, and the coupling layers
only have to add the short-distance non-Gaussianity.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hpcflow.lattice.geometry import lattice_momentum_squared
from hpcflow.lattice.sublattice import SplitField

__all__ = ["MomentumScaling"]


class MomentumScaling(nn.Module):
    """The layer of the module docstring, acting on a :class:`SplitField` (the full field in between)."""

    def __init__(self) -> None:
        super().__init__()
        self.poly = nn.Parameter(torch.zeros(4))
        self.power = nn.Parameter(torch.zeros(()))
        self.log_mass2 = nn.Parameter(torch.zeros(()))

    def log_scale(self, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
        """:math:`a(k)` on the full momentum grid ``shape``."""
        p2 = lattice_momentum_squared(shape, dtype).to(device)
        top = 4.0 * len(shape)
        u = p2 / top
        poly = self.poly.to(dtype)
        m2 = torch.exp(self.log_mass2.to(dtype))
        series = poly[0] + u * (poly[1] + u * (poly[2] + u * poly[3]))
        return series - 0.5 * self.power.to(dtype) * torch.log((p2 + m2) / (top + m2))

    def _scaled(self, field: SplitField, sign: float) -> tuple[SplitField, Tensor]:
        x = field.join()
        shape = tuple(x.shape[1:])
        a = sign * self.log_scale(shape, x.dtype, x.device)
        half = a[..., : shape[-1] // 2 + 1]  # the rfft half of the grid; a(-k) = a(k)
        y = torch.fft.irfftn(torch.fft.rfftn(x, dim=(1, 2)) * torch.exp(half), s=shape, dim=(1, 2))
        return SplitField.split(y), a.sum().expand(x.shape[0])

    def forward(self, field: SplitField) -> tuple[SplitField, Tensor]:
        """``(y, log|det dy/dx|)``, the log-det the same for every configuration ``(B,)``."""
        return self._scaled(field, 1.0)

    def inverse(self, field: SplitField) -> tuple[SplitField, Tensor]:
        """``(x, log|det dx/dy|)``."""
        return self._scaled(field, -1.0)
