r"""HMC for SU(N) gauge fields with a Lie-group leapfrog.

Momenta :math:`P_\mu(x)` are traceless hermitian, :math:`P = \sum_a p_a T_a` with
:math:`\mathrm{tr}\,T_aT_b = \delta_{ab}/2`, drawn with :math:`p_a \sim N(0, 1)`; the kinetic term is
:math:`\frac12\sum p_a^2 = \sum_{x,\mu}\mathrm{tr}\,P_\mu(x)^2`. The link update is
:math:`U \to e^{i\epsilon P}U` and the force is the derivative along :math:`U \to e^{i\omega^aT_a}U`:
for the Wilson action, with :math:`M = U_\mu(x)A_\mu(x)` (``A`` the sum of staples),

.. math::
    F_\mu(x) = \sum_a \frac{\partial S}{\partial\omega^a}T_a
             = \frac{\beta}{2N}\,\Big[\frac{M - M^\dagger}{2i}\Big]_{\rm traceless}

(the projection onto su(N) is :math:`2\sum_a \mathrm{tr}(T_aX)T_a`, hence the 1/2).

Both the exponential map and the kicks are exact group operations, so the leapfrog is
reversible and area preserving; links stay in SU(N) to rounding (re-projected after each
trajectory by :func:`~hpcflow.theories.gauge.reunitarize`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hpcflow.kernels import gauge as gauge_kernels
from hpcflow.lattice.geometry import shift
from hpcflow.lattice.rng import ChainRNG
from hpcflow.samplers.hmc import HMCState, StepInfo, metropolis
from hpcflow.theories.gauge import WilsonGaugeAction, dagger, reunitarize

__all__ = ["GaugeHMC", "WilsonMoves", "staples", "traceless_hermitian", "wilson_force"]


def traceless_hermitian(x: Tensor) -> Tensor:
    r""":math:`\frac{X - X^\dagger}{2i}` made traceless: the su(N) part of ``X`` (``(..., N, N)``)."""
    h = (x - dagger(x)) / 2j
    n = x.shape[-1]
    tr = h.diagonal(dim1=-2, dim2=-1).sum(-1) / n
    return h - tr[..., None, None] * torch.eye(n, dtype=x.dtype, device=x.device)


def staples(u: Tensor, mu: int) -> Tensor:
    r""":math:`A_\mu(x) = \sum_{\nu\ne\mu}[U_\nu(x+\hat\mu)U_\mu(x+\hat\nu)^\dagger U_\nu(x)^\dagger
    + U_\nu(x+\hat\mu-\hat\nu)^\dagger U_\mu(x-\hat\nu)^\dagger U_\nu(x-\hat\nu)]`, so that the
    plaquettes holding :math:`U_\mu(x)` sum to :math:`\mathrm{Re\,tr}\,U_\mu(x)A_\mu(x)`."""
    total = torch.zeros_like(u[:, mu])
    for nu in range(u.shape[1]):
        if nu == mu:
            continue
        u_nu_xpmu = shift(u[:, nu], mu, +1)
        up = u_nu_xpmu @ dagger(shift(u[:, mu], nu, +1)) @ dagger(u[:, nu])
        down = dagger(shift(u_nu_xpmu, nu, -1)) @ dagger(shift(u[:, mu], nu, -1)) @ shift(u[:, nu], nu, -1)
        total = total + up + down
    return total


def wilson_force(action: WilsonGaugeAction, u: Tensor) -> Tensor:
    """Force ``(B, d, *L, N, N)`` (traceless hermitian) of the Wilson action along left multiplication."""
    n = u.shape[-1]
    return torch.stack(
        [action.beta / (2 * n) * traceless_hermitian(u[:, mu] @ staples(u, mu)) for mu in range(u.shape[1])], 1
    )


class WilsonMoves:
    """The force and the drift of the leapfrog for the Wilson action: the compiled kernels
    (:mod:`hpcflow.kernels.gauge`) where they accept the links, else :func:`wilson_force` and
    ``matrix_exp`` (the specification; ``compiled=False`` selects it everywhere)."""

    def __init__(self, action: WilsonGaugeAction, compiled: bool = True) -> None:
        self.action, self.compiled = action, compiled

    def accepts(self, u: Tensor) -> bool:
        """Whether the compiled kernels run links ``u``."""
        return self.compiled and gauge_kernels.accepts(u)

    def force(self, u: Tensor) -> Tensor:
        if self.accepts(u):
            return gauge_kernels.wilson_force(u, self.action.beta / (2 * u.shape[-1]))
        return wilson_force(self.action, u)

    def drift(self, p: Tensor, u: Tensor, eps: float) -> Tensor:
        r""":math:`U \to e^{i\epsilon P}U`."""
        if self.accepts(u) and not p.requires_grad:
            return gauge_kernels.drift(p, u, eps)
        return torch.linalg.matrix_exp(1j * eps * p) @ u


def _generators(n: int, dtype: torch.dtype, device: torch.device | str = "cpu") -> Tensor:
    """Generalized Gell-Mann matrices / 2: ``(N^2 - 1, N, N)`` with tr T_a T_b = delta_ab / 2."""
    gens = []
    for i in range(n):
        for j in range(i + 1, n):
            s = torch.zeros(n, n, dtype=dtype)
            s[i, j] = s[j, i] = 0.5
            a = torch.zeros(n, n, dtype=dtype)
            a[i, j], a[j, i] = -0.5j, 0.5j
            gens += [s, a]
    for k in range(1, n):
        d = torch.zeros(n, n, dtype=dtype)
        d[range(k), range(k)] = 1.0
        d[k, k] = -float(k)
        gens.append(d / (2.0 * (k * (k + 1) / 2) ** 0.5))
    return torch.stack(gens).to(device)


class GaugeHMC:
    """HMC for the SU(N) Wilson action over a batch of chains (leapfrog in the group).

    Arguments:
        action: the Wilson gauge action.
        tau: trajectory length; n_steps: leapfrog steps.
        rng: per-chain random streams (momentum components and accept/reject draws).
    """

    def __init__(self, action: WilsonGaugeAction, *, tau: float, n_steps: int, rng: ChainRNG) -> None:
        self.action, self.tau, self.n_steps, self.rng = action, tau, n_steps, rng
        self.moves = WilsonMoves(action)

    @property
    def eps(self) -> float:
        return self.tau / self.n_steps

    def init(self, u: Tensor) -> HMCState:
        """Chains at links ``u`` ``(B, d, *L, N, N)`` (the state's ``phi`` holds the links)."""
        return HMCState(phi=u, action=self.action(u))

    def momenta(self, u: Tensor) -> Tensor:
        """Gaussian traceless hermitian momenta, one set per link."""
        n = u.shape[-1]
        gens = _generators(n, u.dtype, u.device)
        p = self.rng.normal((*u.shape[1:-2], n * n - 1))
        return torch.einsum("...a,aij->...ij", p.to(u.dtype), gens)

    @staticmethod
    def kinetic(p: Tensor) -> Tensor:
        r""":math:`\sum\mathrm{tr}\,P^2` per chain."""
        return (p @ p).diagonal(dim1=-2, dim2=-1).sum(-1).real.flatten(1).sum(1)

    def trajectory(self, u: Tensor, p: Tensor) -> tuple[Tensor, Tensor]:
        """Leapfrog: half kick, (drift, kick) x n with merged kicks, half kick."""
        eps = self.eps
        p = p - 0.5 * eps * self.moves.force(u)
        for step in range(self.n_steps):
            u = self.moves.drift(p, u, eps)
            kick = eps if step < self.n_steps - 1 else 0.5 * eps
            p = p - kick * self.moves.force(u)
        return u, p

    def step(self, state: HMCState) -> tuple[HMCState, StepInfo]:
        """One trajectory per chain, end points re-projected onto SU(N), then the Metropolis test."""
        p = self.momenta(state.phi)
        h0 = self.kinetic(p) + state.action
        u_new, p_new = self.trajectory(state.phi, p)
        u_new = reunitarize(u_new)
        s_new = self.action(u_new)
        return metropolis(state, u_new, s_new, self.kinetic(p_new) + s_new - h0, self.rng)
