r"""Hybrid Monte Carlo for a batch of independent chains in one tensor.

One trajectory: draw :math:`\pi \sim N(0, 1)`, integrate Hamilton's equations for
:math:`H = \frac12\sum_x \pi_x^2 + S(\phi)` over a time ``tau`` in ``n_steps`` steps, accept the
end point per chain with probability :math:`\min(1, e^{-\delta H})`. Every chain draws from its
own stream (:class:`~hpcflow.lattice.rng.ChainRNG`), so a chain's history does not depend on the
batch it runs in. Fields are float64 by default.

References:
    | Duane, Kennedy, Pendleton, Roweth, Phys. Lett. B 195 (1987) 216
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from hpcflow.lattice.rng import ChainRNG
from hpcflow.samplers.integrators import Integrator, molecular_dynamics
from hpcflow.theories.action import Action

__all__ = ["HMC", "HMCState", "StepInfo", "StepSizeTuner", "metropolis"]


@dataclass(frozen=True)
class HMCState:
    """Chain state: fields ``phi`` ``(B, *L)`` and the cached action ``S[phi]`` ``(B,)``."""

    phi: Tensor
    action: Tensor


@dataclass(frozen=True)
class StepInfo:
    """Per-chain outcome of one trajectory: ``dH = H_end - H_start`` and acceptance, ``(B,)``."""

    dH: Tensor
    accepted: Tensor


def metropolis(state: HMCState, phi_new: Tensor, action_new: Tensor, dH: Tensor, rng: ChainRNG) -> tuple[HMCState, StepInfo]:
    r"""Accept each chain's end point with probability :math:`\min(1, e^{-\delta H})`.

    ``u < exp(-dH)`` is tested as ``log u < -dH``; a NaN ``dH`` is rejected, never accepted.
    """
    accepted = torch.log(rng.uniform(dtype=dH.dtype)) < -dH
    mask = accepted.view(-1, *([1] * (state.phi.dim() - 1)))
    new = HMCState(phi=torch.where(mask, phi_new, state.phi), action=torch.where(accepted, action_new, state.action))
    return new, StepInfo(dH=dH, accepted=accepted)


class HMC:
    """HMC sampler over a batch of chains.

    Arguments:
        action: the target action (``S`` and its force).
        integrator: a molecular-dynamics integrator (:mod:`hpcflow.samplers.integrators`).
        tau: trajectory length.
        n_steps: integration steps per trajectory (``eps = tau / n_steps``); may be retuned.
        rng: per-chain random streams (momenta and accept/reject draws).
    """

    def __init__(self, action: Action, integrator: Integrator, *, tau: float, n_steps: int, rng: ChainRNG) -> None:
        if tau <= 0 or n_steps < 1:
            raise ValueError(f"tau = {tau}, n_steps = {n_steps}: need tau > 0 and n_steps >= 1")
        self.action = action
        self.integrator = integrator
        self.dynamics = molecular_dynamics(action)
        self.tau = tau
        self.n_steps = n_steps
        self.rng = rng

    @property
    def eps(self) -> float:
        """Step size ``tau / n_steps``."""
        return self.tau / self.n_steps

    def init(self, phi: Tensor) -> HMCState:
        """Initial state of the chains at ``phi``."""
        return HMCState(phi=phi, action=self.action(phi))

    def hamiltonian(self, phi: Tensor, pi: Tensor, action: Tensor | None = None) -> Tensor:
        r""":math:`H = \frac12\sum_x\pi_x^2 + S(\phi)` per chain."""
        s = self.action(phi) if action is None else action
        return 0.5 * (pi * pi).flatten(1).sum(1) + s

    def trajectory(self, phi: Tensor, pi: Tensor) -> tuple[Tensor, Tensor]:
        """The deterministic molecular-dynamics map over time ``tau`` (the action's own runner of
        the integrator's schedule where it has one: :func:`~hpcflow.samplers.integrators.molecular_dynamics`)."""
        return self.dynamics.run(phi, pi, *self.integrator.schedule(self.eps, self.n_steps))

    def step(self, state: HMCState) -> tuple[HMCState, StepInfo]:
        """One HMC trajectory with a Metropolis test per chain."""
        pi = self.rng.normal(tuple(state.phi.shape[1:]), dtype=state.phi.dtype)
        h_start = self.hamiltonian(state.phi, pi, state.action)
        phi_new, pi_new = self.trajectory(state.phi, pi)
        action_new = self.action(phi_new)
        dH = self.hamiltonian(phi_new, pi_new, action_new) - h_start
        return metropolis(state, phi_new, action_new, dH, self.rng)


@dataclass
class StepSizeTuner:
    r"""Tunes ``n_steps`` at fixed ``tau`` towards a target acceptance (thermalization only).

    In equilibrium the energy violation of a reversible integrator is close to Gaussian with
    variance :math:`2\mu`, :math:`\mu = \langle\delta H\rangle`, so the acceptance is
    :math:`A = \mathrm{erfc}(\sqrt\mu/2)`, and for a second-order integrator at fixed ``tau``
    :math:`\mu \propto \epsilon^4 \propto n^{-4}`. After each trajectory the chains' mean
    acceptance probability :math:`\min(1, e^{-\delta H})` (bounded, so an unstable integrator's
    huge violations cannot swamp it; NaN counts as 0), smoothed over the last few trajectories,
    gives :math:`\mu = (2\,\mathrm{erfc}^{-1}A)^2`, and :math:`\log n` moves by
    :math:`\frac{g_k}{4}\log(\mu/\mu^*)` towards the steps of the target,
    :math:`\mathrm{erfc}(\sqrt{\mu^*}/2) = a^*`, at most a factor 2 per trajectory, with gain
    :math:`g_k = \min(1, \sqrt{10/(k+1)})`: towards the target from too many steps as from too few.
    Keeping ``tau`` fixed keeps the autocorrelation in units of trajectories comparable while the
    cost per trajectory adapts.

    References:
        | Gupta, Kilcup, Sharpe, Phys. Rev. D 38 (1988) 1278 (the erfc law of the acceptance)
    """

    target: float
    log_n: float
    updates: int = 0
    acceptance: float = 0.0
    """The smoothed acceptance probability of the last trajectories."""

    @staticmethod
    def mu(acceptance: float) -> float:
        r""":math:`\mu = (2\,\mathrm{erfc}^{-1}A)^2`, the mean energy violation of acceptance ``A``."""
        from scipy.special import erfcinv

        return float((2.0 * erfcinv(min(max(acceptance, 1e-3), 1.0 - 1e-3))) ** 2)

    def update(self, dH: Tensor) -> int:
        """Feed one trajectory's energy violations ``(B,)``; returns the new ``n_steps``."""
        prob = torch.where(dH.isnan(), torch.zeros_like(dH), torch.clamp(torch.exp(-dH), max=1.0)).mean().item()
        weight = max(1.0 / (self.updates + 1), 0.3)
        self.acceptance = (1.0 - weight) * self.acceptance + weight * prob
        gain = min(1.0, math.sqrt(10.0 / (self.updates + 1)))
        step = 0.25 * gain * math.log(self.mu(self.acceptance) / self.mu(self.target))
        self.log_n += min(max(step, -math.log(2.0)), math.log(2.0))
        self.log_n = min(max(self.log_n, 0.0), math.log(10_000))
        self.updates += 1
        return self.n_steps

    @property
    def n_steps(self) -> int:
        """Current number of steps, ``round(exp(log_n))``, at least 1."""
        return max(1, round(math.exp(self.log_n)))
