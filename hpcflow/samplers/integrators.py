r"""Symplectic, time-reversible integrators for :math:`H = \frac12 \sum \pi^2 + S(\phi)`.

Each integrator maps ``(phi, pi)`` through ``n`` steps of size ``eps = tau / n``; ``force(phi)``
returns :math:`\partial S/\partial\phi`. Both are second order: the energy violation of a
trajectory of fixed length scales as :math:`\delta H = O(\epsilon^2)`.
"""

from __future__ import annotations

from typing import Callable, ClassVar, Protocol

from torch import Tensor

__all__ = ["INTEGRATORS", "Integrator", "Leapfrog", "Omelyan"]

Force = Callable[[Tensor], Tensor]


class Integrator(Protocol):
    """``integrator(phi, pi, force, eps, n) -> (phi, pi)`` after ``n`` steps of size ``eps``."""

    force_evaluations_per_step: ClassVar[int]

    def __call__(self, phi: Tensor, pi: Tensor, force: Force, eps: float, n: int) -> tuple[Tensor, Tensor]: ...


class Leapfrog:
    r"""Leapfrog (velocity Verlet, PQP): :math:`\pi \mathrel{-}= \frac{\epsilon}{2}F`,
    :math:`\phi \mathrel{+}= \epsilon\pi`, :math:`\pi \mathrel{-}= \frac{\epsilon}{2}F`; the inner
    half kicks are merged, so ``n`` steps cost ``n`` force evaluations."""

    force_evaluations_per_step: ClassVar[int] = 1

    def __call__(self, phi: Tensor, pi: Tensor, force: Force, eps: float, n: int) -> tuple[Tensor, Tensor]:
        phi, pi = phi.clone(), pi.clone()  # updated in place below; the inputs stay intact
        pi.add_(force(phi), alpha=-0.5 * eps)
        for step in range(n):
            phi.add_(pi, alpha=eps)
            kick = eps if step < n - 1 else 0.5 * eps
            pi.add_(force(phi), alpha=-kick)
        return phi, pi


class Omelyan:
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

    def __call__(self, phi: Tensor, pi: Tensor, force: Force, eps: float, n: int) -> tuple[Tensor, Tensor]:
        lam = self.lam
        phi, pi = phi.clone(), pi.clone()  # updated in place below; the inputs stay intact
        pi.add_(force(phi), alpha=-lam * eps)
        for step in range(n):
            phi.add_(pi, alpha=0.5 * eps)
            pi.add_(force(phi), alpha=-(1.0 - 2.0 * lam) * eps)
            phi.add_(pi, alpha=0.5 * eps)
            kick = 2.0 * lam * eps if step < n - 1 else lam * eps
            pi.add_(force(phi), alpha=-kick)
        return phi, pi


INTEGRATORS: dict[str, type[Leapfrog] | type[Omelyan]] = {"leapfrog": Leapfrog, "omelyan": Omelyan}
