r"""The gradient-flow map of 2D U(1) gauge fields (Bacchio, Kessel, Schaefer, Vaitl,
arXiv:2212.08469; Luscher, arXiv:0907.5491), on link angles ``theta`` ``(B, 2, L0, L1)``.

.. math::
    \frac{d\theta_t}{dt} = Z_t(\theta_t) = -\frac{\partial\tilde S}{\partial\theta}(\theta_t, t), \qquad
    \tilde S(\theta, t) = \sum_i c_i(t)\sum_x\cos\theta_{C_i}(x),

from :math:`t = 0` (Haar-distributed angles) to :math:`t = 1`. The density follows
:math:`\frac{d}{dt}\log\det J = \nabla\cdot Z = -\Delta\tilde S =
\sum_i c_i(t)\,k_{C_i}\sum_x\cos\theta_{C_i}(x)` exactly, :math:`k_C = \sum_l n_l^2`
(:mod:`.loops`), so :math:`\log q(\theta_1) = \log q_0(\theta_0) - \log\det J`,
:math:`\log q_0 = -n_{links}\log 2\pi`. The force is
:math:`\partial\tilde S/\partial\theta_l = -\sum_i c_i\sum_{x:\,l\in C_i(x)} n_l\sin\theta_{C_i}(x)`.
Both are gauge invariant, so the map commutes with gauge transformations.

Integrator: Luscher's third-order Runge-Kutta scheme (his Lie-group RK3 of the Wilson flow; for
an abelian group it is the Williamson three-stage scheme, stages at :math:`t`, :math:`t + \epsilon/4`,
:math:`t + 2\epsilon/3`), with :math:`\log\det J` integrated in the same stages. The map and its
log-density carry the same :math:`O(\epsilon^3)` integration error per unit flow time; the inverse
integrates back from 1 to 0.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from hpcflow.models.gradflow.loops import Loop
from hpcflow.theories.gauge import u1_loop_angle

__all__ = ["AffineCoefficients", "U1GradientFlow"]

# Luscher's RK3: stage k adds eps * sum_j A[k][j] Z_j; Z_j is evaluated at t + NODES[j] eps
_A = ((1 / 4,), (-17 / 36, 8 / 9), (17 / 36, -8 / 9, 3 / 4))
_NODES = (0.0, 1 / 4, 2 / 3)


class AffineCoefficients(nn.Module):
    """:math:`c_i(t) = a_i + b_i t` (model A of Bacchio et al.: two parameters per loop), zero at
    the start: the identity map."""

    def __init__(self, n_loops: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_loops, 2, dtype=torch.float64))

    def forward(self, t: float) -> Tensor:
        """``(n_loops,)`` coefficients at flow time ``t``."""
        return self.weight[:, 0] + t * self.weight[:, 1]


class U1GradientFlow(nn.Module):
    """The map and its density for 2D U(1) angles.

    Arguments:
        loops: the loops :math:`C_i` (:func:`~hpcflow.models.gradflow.loops.loops_named`).
        coefficients: a module ``t -> (len(loops),)`` (:class:`AffineCoefficients`).
        steps: integration steps from 0 to 1.
    """

    def __init__(self, loops: list[Loop], coefficients: nn.Module, steps: int = 20) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps = {steps}: need at least 1")
        self.loops, self.coefficients, self.steps = loops, coefficients, steps

    def velocity(self, theta: Tensor, t: float) -> tuple[Tensor, Tensor]:
        r"""``(Z, div Z)``: :math:`-\partial\tilde S/\partial\theta` ``(B, 2, *L)`` and
        :math:`-\Delta\tilde S` ``(B,)`` at flow time ``t``."""
        c = self.coefficients(t)
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

    def _integrate(self, theta: Tensor, start: float, end: float) -> tuple[Tensor, Tensor]:
        """Integrate from flow time ``start`` to ``end``: ``(theta, int div Z dt)``."""
        eps = (end - start) / self.steps
        logdet = torch.zeros(theta.shape[0], dtype=theta.dtype, device=theta.device)
        for n in range(self.steps):
            t = start + n * eps
            stages: list[tuple[Tensor, Tensor]] = []
            for k, weights in enumerate(_A):
                stages.append(self.velocity(theta, t + _NODES[k] * eps))
                theta = theta + eps * sum(w * s[0] for w, s in zip(weights, stages))
                logdet = logdet + eps * sum(w * s[1] for w, s in zip(weights, stages))
        return theta, logdet

    def forward(self, theta0: Tensor) -> tuple[Tensor, Tensor]:
        """``(theta_1, log det J)``: the map of ``theta0`` from flow time 0 to 1."""
        return self._integrate(theta0, 0.0, 1.0)

    def inverse(self, theta1: Tensor) -> tuple[Tensor, Tensor]:
        """``(theta_0, log det J)`` of the configuration that the map takes to ``theta1``."""
        theta0, back = self._integrate(theta1, 1.0, 0.0)
        return theta0, -back

    @staticmethod
    def log_base(theta: Tensor) -> Tensor:
        r"""Haar measure of U(1) per link: :math:`\log q_0 = -n_{links}\log 2\pi`, ``(B,)``."""
        return torch.full((theta.shape[0],), -theta[0].numel() * math.log(2 * math.pi), dtype=theta.dtype, device=theta.device)

    def sample(self, batch: int, shape: tuple[int, int], generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(theta, log q)``: ``batch`` Haar-random configurations pushed through the map."""
        theta0 = (torch.rand((batch, 2, *shape), generator=generator, dtype=torch.float64) * 2 - 1) * math.pi
        theta, logdet = self(theta0)
        return theta, self.log_base(theta0) - logdet

    def log_prob(self, theta: Tensor) -> Tensor:
        """:math:`\\log q(\\theta)` of given configurations (through the inverse)."""
        theta0, logdet = self.inverse(theta)
        return self.log_base(theta0) - logdet
