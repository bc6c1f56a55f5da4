r"""The gradient-flow map of 2D U(1) gauge fields on link angles ``theta`` ``(B, 2, L0, L1)``
(:mod:`.map`): :math:`\tilde S = \sum_i c_i(t)\sum_x\cos\theta_{C_i}(x)`,

.. math::
    Z_l = -\frac{\partial\tilde S}{\partial\theta_l} = \sum_i c_i\sum_{x:\,l\in C_i(x)} n_l\sin\theta_{C_i}(x),
    \qquad \nabla\cdot Z = -\Delta\tilde S = \sum_i c_i\,k_{C_i}\sum_x\cos\theta_{C_i}(x),

exact for any loop, with :math:`k_C = \sum_l n_l^2` (:mod:`.loops`). Both are gauge invariant, so
the map commutes with gauge transformations. The group step is :math:`\theta \to \theta + X`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hpcflow.models.gradflow.haar import HaarU1
from hpcflow.models.gradflow.loops import Loop, TraceProduct
from hpcflow.models.gradflow.map import GradientFlow
from hpcflow.theories.gauge import u1_loop_angle

__all__ = ["U1GradientFlow"]


class U1GradientFlow(GradientFlow):
    """The map and its density for 2D U(1) angles (arguments: :class:`~.map.GradientFlow`)."""

    prior = HaarU1()

    def __init__(self, loops: list[Loop], coefficients: torch.nn.Module, steps: int = 20) -> None:
        products = [lp.name for lp in loops if isinstance(lp, TraceProduct)]
        if products:
            raise ValueError(f"loops {products}: in U(1) a product of traces is the loop of the summed angles "
                             "('2x1', 'fig8_0', ...)")
        reps = [lp.name for lp in loops if lp.rep != "fund"]
        if reps:
            raise ValueError(f"loops {reps}: U(1) has no representations beyond the charge; use a winding "
                             "loop such as '1x1_twice'")
        super().__init__(loops, coefficients, steps)

    def velocity(self, theta: Tensor, t: float) -> tuple[Tensor, Tensor]:
        c = self.coefficients(t).to(theta.dtype)
        shape = tuple(theta.shape[2:])
        z = [torch.zeros_like(theta[:, 0]) for _ in range(2)]
        div = torch.zeros(theta.shape[0], dtype=theta.dtype, device=theta.device)
        for i, loop in enumerate(self.loops):
            angle = u1_loop_angle(theta, list(loop.path))
            sin = c[i] * torch.sin(angle)
            div = div + c[i] * loop.laplacian_factor(shape) * torch.cos(angle).flatten(1).sum(1)
            for mu, offset, forward in loop.links:
                # theta_mu(y) enters C(x) at x = y - offset with sign +-1: Z = -dS~/dtheta = +-c sin theta_C
                moved = torch.roll(sin, shifts=offset, dims=(1, 2))
                z[mu] = z[mu] + moved if forward else z[mu] - moved
        return torch.stack(z, 1), div

    def advance(self, theta: Tensor, x: Tensor) -> Tensor:
        return theta + x


    def rotation(self, moved: Tensor, theta: Tensor) -> Tensor:
        return moved - theta

    def unrotate(self, rotation: Tensor, moved: Tensor) -> Tensor:
        return moved - rotation
