r"""The map of 2D U(1) that makes every plaquette but one an independent von Mises angle: the
exact trivializing map of the theory up to its one global constraint on the torus.

On the :math:`L_0\times L_1` torus the plaquettes obey :math:`\sum_x P_x = 0` (each link enters
two of them with opposite signs), and the ``V - 1`` plaquettes other than
:math:`x_* = (L_0 - 1, 0)` are coordinates, together with the ``V + 1`` links off the tree
:math:`T` below. The tree: the horizontal links :math:`\theta_0(x_0, x_1)` with :math:`x_1 \ge 1`
and the vertical :math:`\theta_1(x_0, 0)` with :math:`x_0 \ge 1` (``V - 1`` links). Changes
:math:`\Delta_x` of the free plaquettes come from the tree links

.. math::
    \delta\theta_0(x_0, x_1) = \sum_{k = x_1}^{L_1 - 1}\Delta(x_0, k)\ (x_1\ge 1), \qquad
    \delta\theta_1(x_0, 0) = \sum_{j < x_0}\sum_k\Delta(j, k)\ (x_0 \ge 1),

with :math:`\Delta_{x_*} = -\sum_{x\ne x_*}\Delta_x`. The change of variables from the tree links to
the free plaquettes is linear with an integer inverse (these sums), so unimodular: under the Haar
measure the free plaquettes are independent and uniform, and independent of the other links.

The map sends each free plaquette through :math:`h = F_\beta^{-1}\circ F_0` (:mod:`.von_mises`),
:math:`F_0(P) = (P + \pi)/2\pi`, leaving the links off the tree alone, so

.. math::
    \log\det J = \sum_{x\ne x_*}\log h'(P_x) = -\sum_{x\ne x_*}[\log 2\pi + \log p_\beta(h(P_x))],

and the pushed-forward Haar measure is :math:`\prod_{x\ne x_*}p_\beta(P_x)`. The target differs by
:math:`e^{\beta\cos P_{x_*}}` alone: the NMCMC log-weights are :math:`\beta\cos P_{x_*}` plus a
constant, whose ESS is :math:`I_0(\beta)^2/I_0(2\beta)\approx 1/\sqrt{\pi\beta}` once
:math:`P_{x_*}` is spread over the circle (large volumes), independent of the volume. Gauge
covariant (it moves links by functions of plaquettes) and without parameters; :math:`\beta` is a
buffer, so a stored flow keeps the coupling it was built for. Computed in float64.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import Tensor, nn

from hpcflow.models.gauge_coupling.circular import wrap_angle
from hpcflow.models.gauge_coupling.von_mises import VonMises
from hpcflow.theories.gauge import u1_plaquette_angle

__all__ = ["VonMisesPlaquetteMap", "tree_link_changes"]


def tree_link_changes(delta: Tensor) -> Tensor:
    r"""The link changes :math:`\delta\theta` ``(B, 2, L0, L1)`` on the tree that change the
    plaquettes :math:`x \ne x_*` by ``delta`` ``(B, L0, L1)`` (whose entry at :math:`x_*` is ignored)."""
    delta = delta.clone()
    delta[:, -1, 0] = 0.0
    delta[:, -1, 0] = -delta.flatten(1).sum(1)
    horizontal = torch.flip(torch.cumsum(torch.flip(delta, [2]), 2), [2])  # sum over k >= x1
    horizontal[:, :, 0] = 0.0
    columns = delta.sum(2)
    vertical = torch.zeros_like(delta)
    vertical[:, 1:, 0] = torch.cumsum(columns, 1)[:, :-1]
    return torch.stack([horizontal, vertical], 1)


@lru_cache(maxsize=16)
def _von_mises(beta: float) -> VonMises:
    return VonMises(beta)


class VonMisesPlaquetteMap(nn.Module):
    """See the module text; ``forward(theta, inverse)`` -> ``(theta', log det)`` as a coupling layer.

    Arguments:
        beta: the coupling of the target's von Mises plaquettes.
    """

    def __init__(self, beta: float) -> None:
        super().__init__()
        _von_mises(float(beta))  # a bad beta fails here, not at sampling; the table is then cached
        self.register_buffer("beta", torch.tensor(float(beta), dtype=torch.float64))

    def forward(self, theta: Tensor, inverse: bool = False) -> tuple[Tensor, Tensor]:
        """``(theta', log det)`` of the map or its inverse (the inverse, in closed form, is
        differentiable; the forward map solves for quantiles and carries no gradient)."""
        von_mises = _von_mises(float(self.beta))
        angles = theta.double()
        p = wrap_angle(u1_plaquette_angle(angles))
        if inverse:
            moved = 2 * math.pi * von_mises.cdf(p) - math.pi
            log_deriv = math.log(2 * math.pi) + von_mises.log_density(p)
        else:
            with torch.no_grad():
                moved = von_mises.icdf((p + math.pi) / (2 * math.pi))
                log_deriv = -math.log(2 * math.pi) - von_mises.log_density(moved)
        log_det = log_deriv.flatten(1).sum(1) - log_deriv[:, -1, 0]  # x_* is not mapped
        out = wrap_angle(angles + tree_link_changes(moved - p))
        return out.to(theta.dtype), log_det.to(theta.dtype)
