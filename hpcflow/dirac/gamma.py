r"""Euclidean gamma matrices, indexed by lattice axis.

4D: the DeGrand-Rossi (chiral) basis of Chroma/QDP++ and MILC, written out below:
in 2x2 blocks :math:`\gamma_1 = ((0, i\sigma_1), (-i\sigma_1, 0))`,
:math:`\gamma_2 = ((0, -i\sigma_2), (i\sigma_2, 0))`, :math:`\gamma_3 = ((0, i\sigma_3), (-i\sigma_3, 0))`,
:math:`\gamma_4 = ((0, 1), (1, 0))`, and :math:`\gamma_5 = \gamma_1\gamma_2\gamma_3\gamma_4
= \mathrm{diag}(1, 1, -1, -1)`. Lattice axis 0 is Euclidean time, so ``GAMMA_4D[0]`` is
:math:`\gamma_4` and ``GAMMA_4D[1:]`` are :math:`\gamma_1, \gamma_2, \gamma_3`.

2D (Schwinger model, shared/PHYSICS.md): :math:`\sigma_0 = \sigma_x`, :math:`\sigma_1 = \sigma_y`,
:math:`\gamma_5 = \sigma_z`.

All are hermitian with :math:`\{\gamma_\mu, \gamma_\nu\} = 2\delta_{\mu\nu}`;
:math:`\sigma_{\mu\nu} = \frac{i}{2}[\gamma_\mu, \gamma_\nu]`.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["GAMMA5_2D", "GAMMA5_4D", "GAMMA_2D", "GAMMA_4D", "gamma_basis", "sigma_munu"]

_PAULI = (
    torch.tensor([[0, 1], [1, 0]], dtype=torch.complex128),
    torch.tensor([[0, -1j], [1j, 0]], dtype=torch.complex128),
    torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128),
)
_G1 = [[0, 0, 0, 1j], [0, 0, 1j, 0], [0, -1j, 0, 0], [-1j, 0, 0, 0]]
_G2 = [[0, 0, 0, -1], [0, 0, 1, 0], [0, 1, 0, 0], [-1, 0, 0, 0]]
_G3 = [[0, 0, 1j, 0], [0, 0, 0, -1j], [-1j, 0, 0, 0], [0, 1j, 0, 0]]
_G4 = [[0, 0, 1, 0], [0, 0, 0, 1], [1, 0, 0, 0], [0, 1, 0, 0]]
GAMMA_4D = torch.tensor([_G4, _G1, _G2, _G3], dtype=torch.complex128)
r"""``(4, 4, 4)``: :math:`\gamma_4, \gamma_1, \gamma_2, \gamma_3` for lattice axes 0 (time), 1, 2, 3."""
GAMMA5_4D = GAMMA_4D[1] @ GAMMA_4D[2] @ GAMMA_4D[3] @ GAMMA_4D[0]
GAMMA_2D = torch.stack([_PAULI[0], _PAULI[1]])
"""``(2, 2, 2)``: :math:`\\sigma_x, \\sigma_y` for lattice axes 0, 1."""
GAMMA5_2D = _PAULI[2].clone()


def gamma_basis(dim: int) -> tuple[Tensor, Tensor]:
    """``(gammas, gamma5)`` for ``dim`` = 2 or 4."""
    if dim == 2:
        return GAMMA_2D, GAMMA5_2D
    if dim == 4:
        return GAMMA_4D, GAMMA5_4D
    raise ValueError(f"dimension {dim}: gamma matrices are defined for 2 and 4")


def sigma_munu(gammas: Tensor, mu: int, nu: int) -> Tensor:
    r""":math:`\sigma_{\mu\nu} = \frac{i}{2}[\gamma_\mu, \gamma_\nu]` (hermitian)."""
    g_mu, g_nu = gammas[mu], gammas[nu]
    return 0.5j * (g_mu @ g_nu - g_nu @ g_mu)
