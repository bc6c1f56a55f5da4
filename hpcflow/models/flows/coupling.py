r"""Coupling layers on checkerboard sublattices.

A layer of parity ``p`` transforms the active sites :math:`A = \{x: \sum_\mu x_\mu \equiv p\}`
element-wise, conditioned on the frozen sites :math:`P` (the other parity) through a
convolutional network from the frozen to the active sublattice
(:class:`~hpcflow.models.flows.conditioner.SublatticeConditioner`). Layers act on a
:class:`~hpcflow.lattice.sublattice.SplitField` (the two sublattices packed). The Jacobian is
triangular, so :math:`\log|\det J| = \sum_{x\in A} \log|\partial y_x/\partial x_x|`.

Z2 equivariance :math:`f(-\phi) = -f(\phi)` (``equivariant=True``) is exact by construction: the
conditioner is evaluated on :math:`\pm\phi_P` and the two parameter sets are combined so that
the element-wise map is odd (:meth:`CouplingLayer.symmetrize`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from hpcflow.lattice.sublattice import SplitField
from hpcflow.models.flows.conditioner import SublatticeConditioner

__all__ = ["AffineCoupling", "CouplingLayer", "GlobalRescaling"]


class CouplingLayer(nn.Module):
    """Base class: conditioner calls, equivariance and log-det bookkeeping.

    Subclasses set :attr:`params_per_site` and implement :meth:`transform` and :meth:`symmetrize`.

    Arguments:
        parity: which checkerboard parity (0 or 1) is transformed.
        hidden: hidden channels of the conditioner.
        kernel: kernel size of the conditioner.
        equivariant: make the layer exactly odd under :math:`\\phi \\to -\\phi`.
        activation: conditioner activation.
    """

    params_per_site: ClassVar[int]

    def __init__(self, parity: int, hidden: list[int], kernel: int, equivariant: bool, activation: str = "leaky_relu") -> None:
        super().__init__()
        if parity not in (0, 1):
            raise ValueError(f"parity = {parity}: must be 0 or 1")
        self.parity = parity
        self.equivariant = equivariant
        self.net = SublatticeConditioner(self.params_per_site, hidden, kernel, parity, activation)

    def params(self, field: SplitField) -> Tensor:
        """Transformation parameters ``(B, params_per_site, N)`` from the frozen sublattice."""
        frozen = field.parts[1 - self.parity]
        if not self.equivariant:
            return self.net(frozen, field.frame)
        plus, minus = self.net(torch.cat([frozen, -frozen]), field.frame).chunk(2)
        return self.symmetrize(plus, minus)

    def symmetrize(self, plus: Tensor, minus: Tensor) -> Tensor:
        """Parameters of an odd element-wise map from those at :math:`+\\phi_P` and :math:`-\\phi_P`."""
        raise NotImplementedError

    def transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        """Element-wise map and its log-derivative per site (shapes of ``x``)."""
        raise NotImplementedError

    def _couple(self, field: SplitField, inverse: bool) -> tuple[SplitField, Tensor]:
        y, logdet = self.transform(field.parts[self.parity], self.params(field), inverse)
        return field.replace(self.parity, y), logdet.sum(1)

    def forward(self, field: SplitField) -> tuple[SplitField, Tensor]:
        """``(y, log|det dy/dx|)`` with the log-det per configuration ``(B,)``."""
        return self._couple(field, inverse=False)

    def inverse(self, field: SplitField) -> tuple[SplitField, Tensor]:
        """``(x, log|det dx/dy|)``; the frozen sites are unchanged, so the parameters are too."""
        return self._couple(field, inverse=True)


class AffineCoupling(CouplingLayer):
    r"""Affine coupling (Real NVP): :math:`y_A = x_A e^{s(x_P)} + t(x_P)`, :math:`s = \tanh(\cdot)`.

    :math:`\log|\det J| = \sum_A s`. Equivariant form: :math:`s` even, :math:`t` odd.

    References:
        | Dinh, Sohl-Dickstein, Bengio, arXiv:1605.08803
        | Albergo, Kanwar, Shanahan, arXiv:1904.12072
    """

    params_per_site: ClassVar[int] = 2

    def symmetrize(self, plus: Tensor, minus: Tensor) -> Tensor:
        return torch.stack([0.5 * (plus[:, 0] + minus[:, 0]), 0.5 * (plus[:, 1] - minus[:, 1])], 1)

    def transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        s, t = torch.tanh(params[:, 0]), params[:, 1]
        if inverse:
            return (x - t) * torch.exp(-s), -s
        return x * torch.exp(s) + t, s


class GlobalRescaling(nn.Module):
    r""":math:`y = e^{a} x` on every site with one learned scalar ``a``; :math:`\log|\det J| = aV`. Odd."""

    def __init__(self) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, field: SplitField) -> tuple[SplitField, Tensor]:
        a = self.log_scale.to(field.parts[0].dtype)
        return field.scale(torch.exp(a)), (a * field.volume).expand(field.parts[0].shape[0])

    def inverse(self, field: SplitField) -> tuple[SplitField, Tensor]:
        a = self.log_scale.to(field.parts[0].dtype)
        return field.scale(torch.exp(-a)), (-a * field.volume).expand(field.parts[0].shape[0])
