r"""The gradient-flow map shared by U(1) and SU(N) (Bacchio, Kessel, Schaefer, Vaitl,
arXiv:2212.08469; Luscher, arXiv:0907.5491):

.. math::
    \frac{dU_t}{dt} = Z_t(U_t)\,U_t, \qquad Z^a = -\partial^a\tilde S(U_t, t), \qquad
    \tilde S(U, t) = \sum_i c_i(t)\sum_x W_i(U; x),

from :math:`t = 0` (Haar-distributed links) to :math:`t = 1`, with :math:`W_i` the real part of
the trace of the Wilson loop :math:`C_i` (U(1): :math:`\cos\theta_C`). The log-density follows
:math:`\frac{d}{dt}\log\det J = \nabla\cdot Z = -\Delta\tilde S`, integrated along the path, and
:math:`\log q(U_1) = \log q_0(U_0) - \log\det J`.

Integrator: Luscher's third-order Lie-group Runge-Kutta scheme (his integrator of the Wilson
flow, a Crouch-Grossmann-type method; for U(1) it is the Williamson three-stage scheme):

.. math::
    W_1 = e^{\frac14 X_0} W_0, \quad W_2 = e^{\frac89 X_1 - \frac{17}{36} X_0} W_1, \quad
    W_3 = e^{\frac34 X_2 - \frac89 X_1 + \frac{17}{36} X_0} W_2, \qquad X_j = \epsilon Z(W_j, t + \nu_j\epsilon),

:math:`\nu = (0, 1/4, 2/3)`, and :math:`\log\det J` integrated with the same stage weights. The
map and its log-density carry an :math:`O(\epsilon^3)` integration error per unit flow time: an
NMCMC chain is exact up to that error of :math:`\log q`, which ``steps`` controls and
:meth:`GradientFlow.log_q_error` measures.

The inverse undoes the discrete map step by step: a step back of the same scheme gives a first
guess :math:`U^{(0)}_n`, then the fixed-point iteration :math:`U_n \leftarrow R(U_n)^{-1}U_{n+1}`,
:math:`R(U) = \Phi(U)U^{-1}` the rotation of one step :math:`\Phi`, converges at a rate
:math:`O(\epsilon)` per sweep to the exact preimage (to rounding); its log-det is that of the
forward step at the preimage. So ``log_prob`` of a sample is the ``log q`` it was drawn with.

Training backpropagates through the integrator with one checkpoint per step: the memory held
for the backward pass is one field per step plus the internals of a single step.
"""

from __future__ import annotations

import abc
import math

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from hpcflow.models.gradflow.haar import HaarSUN, HaarU1
from hpcflow.models.gradflow.loops import Loop
from hpcflow.models.pushforward import Pushforward

__all__ = ["GradientFlow"]

# Luscher's RK3: stage k moves by eps * sum_j A[k][j] Z_j; Z_j is evaluated at t + NODES[j] eps
_A = ((1 / 4,), (-17 / 36, 8 / 9), (17 / 36, -8 / 9, 3 / 4))
_NODES = (0.0, 1 / 4, 2 / 3)


class GradientFlow(Pushforward, nn.Module, abc.ABC):
    """A gradient-flow map over Wilson loops; subclasses supply the group.

    Arguments:
        loops: the loops :math:`C_i` (:func:`~hpcflow.models.gradflow.loops.loops_named`).
        coefficients: a module ``t -> (len(loops),)`` (:mod:`.coefficients`).
        steps: integration steps from 0 to 1.

    The attribute ``prior`` is the group's Haar measure (``sample``, ``draw``, ``log_prob``;
    ``push``, ``log_prob`` and ``sample`` of the map: :class:`~hpcflow.models.pushforward.Pushforward`), and
    ``spec`` (set by :func:`~hpcflow.models.gradflow.spec.build_gradflow`) its architecture.
    """

    prior: HaarU1 | HaarSUN

    def __init__(self, loops: list[Loop], coefficients: nn.Module, steps: int = 20) -> None:
        super().__init__()
        if steps < 1:
            raise ValueError(f"steps = {steps}: need at least 1")
        self.loops, self.coefficients, self.steps = loops, coefficients, steps

    @abc.abstractmethod
    def velocity(self, field: Tensor, t: float) -> tuple[Tensor, Tensor]:
        r"""``(Z, div Z)`` at flow time ``t``: the algebra field with the layout of ``field`` and
        :math:`-\Delta\tilde S` per configuration ``(B,)``."""

    @abc.abstractmethod
    def advance(self, field: Tensor, x: Tensor) -> Tensor:
        r""":math:`e^{X} U`: the field moved by the algebra element ``x`` (same layout as :meth:`velocity`'s ``Z``)."""

    @abc.abstractmethod
    def rotation(self, moved: Tensor, field: Tensor) -> Tensor:
        """:math:`R = U' U^{-1}` per link, the group element that took ``field`` to ``moved``."""

    @abc.abstractmethod
    def unrotate(self, rotation: Tensor, moved: Tensor) -> Tensor:
        """:math:`R^{-1} U'`."""

    def _step(self, field: Tensor, t: float, eps: float) -> tuple[Tensor, Tensor]:
        """One RK3 step from flow time ``t``: ``(field, increment of log det J)``."""
        stages: list[tuple[Tensor, Tensor]] = []
        logdet = torch.zeros(field.shape[0], dtype=field.real.dtype, device=field.device)
        for k, weights in enumerate(_A):
            stages.append(self.velocity(field, t + _NODES[k] * eps))
            field = self.advance(field, eps * sum(w * s[0] for w, s in zip(weights, stages)))
            logdet = logdet + eps * sum(w * s[1] for w, s in zip(weights, stages))
        return field, logdet

    def forward(self, field0: Tensor) -> tuple[Tensor, Tensor]:
        """``(U_1, log det J)``: the map of ``field0`` from flow time 0 to 1."""
        return self._integrate(field0, self.steps)

    def _integrate(self, field0: Tensor, steps: int) -> tuple[Tensor, Tensor]:
        eps = 1.0 / steps
        field, logdet = field0, torch.zeros(field0.shape[0], dtype=field0.real.dtype, device=field0.device)
        for n in range(steps):
            if torch.is_grad_enabled():
                field, increment = checkpoint(self._step, field, n * eps, eps, use_reentrant=False)
            else:
                field, increment = self._step(field, n * eps, eps)
            logdet = logdet + increment
        return field, logdet

    def _unstep(self, field: Tensor, t: float, eps: float, tol: float, sweeps: int) -> tuple[Tensor, Tensor]:
        """The preimage of ``field`` under the step from ``t`` and that step's log-det increment."""
        guess, _ = self._step(field, t + eps, -eps)
        for _ in range(sweeps):
            image, _ = self._step(guess, t, eps)
            new = self.unrotate(self.rotation(image, guess), field)
            change = float((new - guess).abs().max())
            guess = new
            if change < tol:
                return guess, self._step(guess, t, eps)[1]
            if not math.isfinite(change):
                break
        raise RuntimeError(f"the inverse of the flow step at t = {t:.4g} did not converge in {sweeps} sweeps (last "
                           f"change {change:.3g}): the step is too large for these coefficients; raise [model].steps")

    def inverse(self, field1: Tensor, sweeps: int = 60) -> tuple[Tensor, Tensor]:
        """``(U_0, log det J)`` of the configuration that the map takes to ``field1`` (its
        preimage under the discrete map, to rounding)."""
        eps = 1.0 / self.steps
        tol = 1000 * torch.finfo(field1.real.dtype).eps
        field, logdet = field1, torch.zeros(field1.shape[0], dtype=field1.real.dtype, device=field1.device)
        for n in reversed(range(self.steps)):
            field, increment = self._unstep(field, n * eps, eps, tol, sweeps)
            logdet = logdet + increment
        return field, logdet

    @torch.no_grad()
    def log_q_error(self, field0: Tensor) -> Tensor:
        r"""Per configuration, :math:`\log q` of ``field0``'s image at ``steps`` minus that at
        ``2 * steps`` (the same start): about 8/7 of the integration error of :math:`\log q`
        (third order). Reverse-KL training can exploit that error, driving the loss below
        :math:`-\log Z` with coefficients the integrator does not resolve; the NMCMC weights of
        such a map are biased, so sampling checks this first."""
        return self._integrate(field0, 2 * self.steps)[1] - self._integrate(field0, self.steps)[1]
