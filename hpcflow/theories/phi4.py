r"""Scalar :math:`\phi^4` theory on a periodic ``d``-dimensional lattice (``d = 2`` by default).

Conventions (shared/PHYSICS.md): the (beta, lam) form of Del Debbio et al. (2021),

.. math::
    S[\phi] = \sum_x \Big[ -\beta \sum_{\mu} \phi_{x+\hat\mu} \phi_x + \phi_x^2
              + \lambda (\phi_x^2 - 1)^2 \Big],

fields ``phi`` of shape ``(B, L0, ..., L_{d-1})``, batch of chains first. The form of Albergo et
al. (2019), :math:`S_A = \sum_x [-2 \sum_\mu \phi_x \phi_{x+\mu} + (4 + m^2)\phi_x^2 + \lambda_A
\phi_x^4]`, maps onto it by :math:`\phi_A = \sqrt{\beta/2}\,\phi`, :math:`m^2 = 2(1-2\lambda)/\beta
- 4`, :math:`\lambda_A = 4\lambda/\beta^2`; the two actions then differ by the constant
:math:`\lambda V`.

Observables use lattice axis 0 as Euclidean time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from hpcflow.lattice.geometry import lattice_momenta, shift

__all__ = [
    "Phi4Action",
    "energy_density",
    "free_propagator",
    "magnetization",
    "timeslice_correlator",
]


@dataclass(frozen=True)
class Phi4Action:
    r"""Lattice :math:`\phi^4` action in the (beta, lam) form of Del Debbio et al.

    .. math::
        S[\phi] = \sum_x \Big[ -\beta \sum_{\mu} \phi_{x+\hat\mu} \phi_x
                  + \phi_x^2 + \lambda (\phi_x^2 - 1)^2 \Big]

    Conventions: lattice units, periodic boundaries; ``lam >= 0`` keeps S bounded below; with
    ``lam = 0`` the theory is Gaussian and stable only for ``|beta| < 1/d``.
    ``from_m2_lam`` converts from the form of Albergo et al. (2019).

    Arguments:
        beta: nearest-neighbour coupling.
        lam: quartic coupling.

    References:
        | Del Debbio, Marsh Rossney, Wilson, arXiv:2105.12481
        | Albergo, Kanwar, Shanahan, arXiv:1904.12072

    Example:
        >>> Phi4Action(beta=0.576, lam=0.5)(torch.zeros(2, 4, 4, dtype=torch.float64))
        tensor([8., 8.], dtype=torch.float64)
    """

    beta: float
    lam: float

    def __call__(self, phi: Tensor) -> Tensor:
        """Action per configuration, shape ``(B,)``."""
        d = phi.dim() - 1
        hop = sum(shift(phi, mu, +1) for mu in range(d)) * phi
        phi2 = phi * phi
        density = -self.beta * hop + phi2 + self.lam * (phi2 - 1.0) ** 2
        return density.flatten(1).sum(1)

    def force(self, phi: Tensor) -> Tensor:
        r""":math:`\partial S/\partial\phi_x = -\beta \sum_\mu (\phi_{x+\mu} + \phi_{x-\mu})
        + 2\phi_x + 4\lambda\phi_x(\phi_x^2 - 1)`."""
        neighbours = shift(phi, 0, +1)
        neighbours += shift(phi, 0, -1)
        for mu in range(1, phi.dim() - 1):
            neighbours += shift(phi, mu, +1)
            neighbours += shift(phi, mu, -1)
        # in place, to keep temporaries (and memory traffic) few on large batches
        local = phi * phi
        local.sub_(1.0).mul_(4.0 * self.lam).add_(2.0).mul_(phi)
        return local.add_(neighbours, alpha=-self.beta)

    def compiled_dynamics(self, reference):
        """The compiled runner of HMC schedules for this action (:class:`hpcflow.kernels.phi4.Phi4Moves`,
        which hands to ``reference``, the torch runner of this force, what it cannot take); a
        subclass with a force of its own gets ``reference`` itself."""
        from hpcflow.kernels.phi4 import Phi4Moves

        if type(self).force is not Phi4Action.force:
            return reference
        return Phi4Moves(self.beta, self.lam, reference)

    @classmethod
    def from_m2_lam(cls, m2: float, lam_a: float) -> Phi4Action:
        r"""Couplings of :math:`S_A` (Albergo et al.) in this form.

        Inverts :math:`m^2 + 4 = 2(1 - 2\lambda)/\beta`, :math:`\lambda_A = 4\lambda/\beta^2`:
        :math:`\lambda_A\beta^2 + b\beta - 2 = 0` with :math:`b = m^2 + 4`, positive root

        .. math::
            \beta = \frac{4}{b + \sqrt{b^2 + 8\lambda_A}} \;(b \ge 0), \qquad
            \beta = \frac{-b + \sqrt{b^2 + 8\lambda_A}}{2\lambda_A} \;(b < 0),

        the two algebraically equal forms written so that nothing cancels (the textbook form
        loses digits as :math:`\lambda_A \to 0` at :math:`b > 0`; the other as
        :math:`\lambda_A \to 0` at :math:`b < 0`, where no stable free theory exists).

        Example:
            >>> Phi4Action.from_m2_lam(-4.0, 8.0)
            Phi4Action(beta=0.5, lam=0.5)
        """
        if lam_a < 0:
            raise ValueError(f"lamA = {lam_a}: must be >= 0")
        b = m2 + 4.0
        if b <= 0 and lam_a == 0:
            raise ValueError(f"m2 = {m2}: the free theory needs m2 > -4")
        root = math.sqrt(b * b + 8.0 * lam_a)
        beta = 4.0 / (b + root) if b >= 0 else (root - b) / (2.0 * lam_a)
        return cls(beta=beta, lam=lam_a * beta * beta / 4.0)

    def to_m2_lam(self) -> tuple[float, float]:
        """The couplings ``(m2, lamA)`` of the Albergo et al. form (needs ``beta > 0``)."""
        if self.beta <= 0:
            raise ValueError(f"beta = {self.beta}: the (m2, lamA) form needs beta > 0")
        return 2.0 * (1.0 - 2.0 * self.lam) / self.beta - 4.0, 4.0 * self.lam / self.beta**2

    def field_to_albergo(self, phi: Tensor) -> Tensor:
        r""":math:`\phi_A = \sqrt{\beta/2}\,\phi`."""
        return math.sqrt(self.beta / 2.0) * phi


def magnetization(phi: Tensor) -> Tensor:
    r""":math:`M = \sum_x \phi_x` per configuration, shape ``(B,)``."""
    return phi.flatten(1).sum(1)


def energy_density(phi: Tensor) -> Tensor:
    r"""Per-configuration estimator of the Ising energy before subtracting :math:`\langle\phi\rangle^2`:

    :math:`e = \frac{1}{dV} \sum_\mu \sum_y \phi_{y+\hat\mu}\phi_y`, so that
    :math:`E = \frac{1}{d}\sum_\mu G(\hat\mu) = \langle e\rangle - (\langle M\rangle / V)^2`.
    """
    d = phi.dim() - 1
    hop = sum(shift(phi, mu, +1) for mu in range(d)) * phi
    return hop.flatten(1).mean(1) / d


def timeslice_correlator(phi: Tensor) -> Tensor:
    r"""Per-configuration zero-momentum correlator estimator, shape ``(B, L0)``.

    With the time-slice sums :math:`\Sigma(t) = \sum_{\vec x} \phi_{t,\vec x}`,
    :math:`c(t) = \frac{1}{V}\sum_{t_0} \Sigma(t_0 + t)\Sigma(t_0)`, so that the connected
    :math:`G(t) = \sum_{\vec x} G(t, \vec x) = \langle c(t)\rangle - (V/L_0)(\langle M\rangle/V)^2`.
    Summed directly (:math:`L_0^2` terms per configuration, each row on its own), so a
    configuration's value does not depend on the batch it is in (sharded chains agree bitwise).
    """
    sigma = phi.flatten(2).sum(2)
    volume = phi[0].numel()
    n = sigma.shape[1]
    t = torch.arange(n, device=phi.device)
    shifted = sigma[:, (t[:, None] + t[None, :]) % n]  # [b, t, t0] = Sigma(t0 + t)
    return (shifted * sigma[:, None, :]).sum(-1) / volume


def free_propagator(shape: tuple[int, ...], beta: float) -> Tensor:
    r"""Exact two-point function of the free theory (``lam = 0``), shape ``shape``.

    :math:`\langle\phi_x\phi_0\rangle = \frac{1}{V}\sum_p e^{ipx}/K(p)`,
    :math:`K(p) = 2 - 2\beta\sum_\mu\cos p_\mu`; needs :math:`|\beta| < 1/d`.
    """
    d = len(shape)
    if not abs(beta) < 1.0 / d:
        raise ValueError(f"beta = {beta}: the free theory in d = {d} needs |beta| < {1.0 / d}")
    kernel = 2.0 - 2.0 * beta * sum(torch.cos(p) for p in lattice_momenta(shape))
    return torch.fft.ifftn(1.0 / kernel).real
