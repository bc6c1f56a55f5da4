r"""Symplectic, time-reversible integrators for :math:`H = \frac12 \sum \pi^2 + S(\phi)`.

Each integrator maps ``(phi, pi)`` through ``n`` steps of size ``eps = tau / n``; ``force(phi)``
returns :math:`\partial S/\partial\phi`. Both are second order: the energy violation of a
trajectory of fixed length scales as :math:`\delta H = O(\epsilon^2)`.

An integrator is its *schedule*: a first kick :math:`\pi \mathrel{-}= b_0F(\phi)`, then moves
"drift, kick" :math:`\phi \mathrel{+}= a_k\pi`, :math:`\pi \mathrel{-}= b_kF(\phi)`.
:class:`ForceMoves` runs a schedule with any force in torch (the reference); an action may offer
a faster runner of the same schedule (:func:`molecular_dynamics`; phi^4's compiled one in
:mod:`hpcflow.kernels.phi4`), which falls back on :class:`ForceMoves`.
"""

from __future__ import annotations

from typing import Callable, ClassVar, Protocol

from torch import Tensor

__all__ = ["INTEGRATORS", "ForceMoves", "Integrator", "Leapfrog", "MolecularDynamics", "Omelyan", "Schedule",
           "molecular_dynamics"]

Force = Callable[[Tensor], Tensor]
Schedule = tuple[float, list[tuple[float, float]]]
"""``(b0, [(a_1, b_1), ...])``: the first kick, then the drift-kick moves."""


class MolecularDynamics(Protocol):
    """Runs a schedule: ``run(phi, pi, b0, moves) -> (phi, pi)``, the inputs left intact."""

    def run(self, phi: Tensor, pi: Tensor, first_kick: float, moves: list[tuple[float, float]]) -> tuple[Tensor, Tensor]: ...


class ForceMoves:
    """The torch runner of a schedule for any ``force``: the reference for every compiled one."""

    def __init__(self, force: Force) -> None:
        self.force = force

    def run(self, phi: Tensor, pi: Tensor, first_kick: float, moves: list[tuple[float, float]]) -> tuple[Tensor, Tensor]:
        """``(phi, pi)`` at the end of the schedule."""
        phi, pi = phi.clone(), pi.clone()  # updated in place below; the inputs stay intact
        pi.add_(self.force(phi), alpha=-first_kick)
        for drift, kick in moves:
            phi.add_(pi, alpha=drift)
            pi.add_(self.force(phi), alpha=-kick)
        return phi, pi


def molecular_dynamics(action: object) -> MolecularDynamics:
    """:class:`ForceMoves` of the action's force, or the action's compiled runner built around it
    where the action has one (``action.compiled_dynamics(reference)``)."""
    reference = ForceMoves(action.force)
    compiled = getattr(action, "compiled_dynamics", None)
    return compiled(reference) if compiled is not None else reference


class Integrator(Protocol):
    """``integrator(phi, pi, force, eps, n) -> (phi, pi)`` after ``n`` steps of size ``eps``;
    ``schedule(eps, n)`` its moves."""

    force_evaluations_per_step: ClassVar[int]

    def schedule(self, eps: float, n: int) -> Schedule: ...

    def __call__(self, phi: Tensor, pi: Tensor, force: Force, eps: float, n: int) -> tuple[Tensor, Tensor]: ...


class _Scheduled:
    """An integrator given by its schedule, run by the torch :class:`ForceMoves` when called."""

    def schedule(self, eps: float, n: int) -> Schedule:  # noqa: D102
        raise NotImplementedError

    def __call__(self, phi: Tensor, pi: Tensor, force: Force, eps: float, n: int) -> tuple[Tensor, Tensor]:
        return ForceMoves(force).run(phi, pi, *self.schedule(eps, n))


class Leapfrog(_Scheduled):
    r"""Leapfrog (velocity Verlet, PQP): :math:`\pi \mathrel{-}= \frac{\epsilon}{2}F`,
    :math:`\phi \mathrel{+}= \epsilon\pi`, :math:`\pi \mathrel{-}= \frac{\epsilon}{2}F`; the inner
    half kicks are merged, so ``n`` steps cost ``n`` force evaluations."""

    force_evaluations_per_step: ClassVar[int] = 1

    def schedule(self, eps: float, n: int) -> Schedule:  # noqa: D102
        return 0.5 * eps, [(eps, eps if step < n - 1 else 0.5 * eps) for step in range(n)]


class Omelyan(_Scheduled):
    r"""Second-order minimum-norm integrator (Omelyan, Mryglod, Folk 2003; PQPQP):

    :math:`\pi \mathrel{-}= \lambda\epsilon F`, :math:`\phi \mathrel{+}= \frac{\epsilon}{2}\pi`,
    :math:`\pi \mathrel{-}= (1 - 2\lambda)\epsilon F`, :math:`\phi \mathrel{+}= \frac{\epsilon}{2}\pi`,
    :math:`\pi \mathrel{-}= \lambda\epsilon F`, with :math:`\lambda = 0.1931833275037836`;
    outer kicks of neighbouring steps are merged (``2n`` force evaluations for ``n`` steps).

    References:
        | Omelyan, Mryglod, Folk, Comput. Phys. Commun. 151 (2003) 272
        | Takaishi, de Forcrand, Phys. Rev. E 73 (2006) 036706
    """

    force_evaluations_per_step: ClassVar[int] = 2
    lam: ClassVar[float] = 0.1931833275037836

    def schedule(self, eps: float, n: int) -> Schedule:  # noqa: D102
        lam = self.lam
        moves = []
        for step in range(n):
            moves.append((0.5 * eps, (1.0 - 2.0 * lam) * eps))
            moves.append((0.5 * eps, 2.0 * lam * eps if step < n - 1 else lam * eps))
        return lam * eps, moves


INTEGRATORS: dict[str, type[Leapfrog] | type[Omelyan]] = {"leapfrog": Leapfrog, "omelyan": Omelyan}
