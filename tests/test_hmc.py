"""HMC: reversibility, dH ~ eps^2, <exp(-dH)> = 1, the exact free propagator, chain streams."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hpcflow.analysis.correlators import analyze_correlator
from hpcflow.analysis.gamma import gamma_method
from hpcflow.analysis.observables import phi4_observables
from hpcflow.lattice.rng import ChainRNG
from hpcflow.samplers.hmc import HMC, StepSizeTuner
from hpcflow.samplers.integrators import INTEGRATORS
from hpcflow.theories.phi4 import (
    Phi4Action,
    energy_density,
    free_propagator,
    magnetization,
    timeslice_correlator,
)

INTERACTING = Phi4Action(beta=0.576, lam=0.5)


def _thermalized(action: Phi4Action, integrator: str, chains: int, shape: tuple[int, ...], n: int, seed: int = 3):
    hmc = HMC(action, INTEGRATORS[integrator](), tau=1.0, n_steps=n, rng=ChainRNG(seed, range(chains)))
    state = hmc.init(hmc.rng.normal(shape))
    for _ in range(50):
        state, _ = hmc.step(state)
    return hmc, state


@pytest.mark.parametrize("integrator", sorted(INTEGRATORS))
def test_molecular_dynamics_is_reversible(integrator: str) -> None:
    hmc, state = _thermalized(INTERACTING, integrator, 8, (8, 8), 10)
    pi = torch.randn_like(state.phi)
    phi1, pi1 = hmc.trajectory(state.phi, pi)
    phi2, pi2 = hmc.trajectory(phi1, -pi1)
    assert (phi1 - state.phi).abs().max() > 0.1  # the trajectory went somewhere
    torch.testing.assert_close(phi2, state.phi, rtol=0, atol=1e-10)
    torch.testing.assert_close(-pi2, pi, rtol=0, atol=1e-10)


@pytest.mark.parametrize("integrator", sorted(INTEGRATORS))
def test_energy_violation_scales_as_eps_squared(integrator: str) -> None:
    hmc, state = _thermalized(INTERACTING, integrator, 64, (8, 8), 10)
    pi = torch.randn_like(state.phi)
    h0 = hmc.hamiltonian(state.phi, pi)
    rms = []
    steps = (16, 32, 64)
    for n in steps:
        hmc.n_steps = n
        dh = hmc.hamiltonian(*hmc.trajectory(state.phi, pi)) - h0
        rms.append(dh.pow(2).mean().sqrt().item())
    slope = np.polyfit(np.log(1.0 / np.array(steps)), np.log(rms), 1)[0]
    assert slope == pytest.approx(2.0, abs=0.1)


def test_omelyan_has_smaller_energy_violation_than_leapfrog_at_equal_cost() -> None:
    """At equal force evaluations the minimum-norm integrator beats leapfrog (Takaishi-de Forcrand)."""
    hmc_l, state = _thermalized(INTERACTING, "leapfrog", 32, (8, 8), 16)
    hmc_o = HMC(INTERACTING, INTEGRATORS["omelyan"](), tau=1.0, n_steps=8, rng=hmc_l.rng)
    pi = torch.randn_like(state.phi)
    h0 = hmc_l.hamiltonian(state.phi, pi)
    rms_l = (hmc_l.hamiltonian(*hmc_l.trajectory(state.phi, pi)) - h0).pow(2).mean().sqrt()
    rms_o = (hmc_o.hamiltonian(*hmc_o.trajectory(state.phi, pi)) - h0).pow(2).mean().sqrt()
    assert rms_o < rms_l


def test_exp_minus_dH_averages_to_one() -> None:
    """Creutz's equality <exp(-dH)> = 1 holds in equilibrium for an area-preserving, reversible map."""
    hmc, state = _thermalized(INTERACTING, "leapfrog", 32, (8, 8), 5)
    rows = []
    for _ in range(300):
        state, info = hmc.step(state)
        rows.append(torch.exp(-info.dH).numpy())
    data = np.stack(rows, 1)
    r = gamma_method(data)
    acceptance = float(np.minimum(data, 1.0).mean())
    assert 0.3 < acceptance < 0.95  # dH is visibly non-zero, so the test has teeth
    assert abs(r.value - 1.0) < 4 * r.error


def test_free_theory_matches_the_exact_propagator() -> None:
    """HMC at lam = 0 reproduces <phi_x phi_0>, chi = 1/K(0), E and the pole mass within 4 sigma."""
    shape, beta = (8, 8), 0.4
    volume = 64
    hmc, state = _thermalized(Phi4Action(beta, 0.0), "leapfrog", 32, shape, 3, seed=11)  # coarse eps: acceptance ~ 0.8, so the Metropolis test matters
    phis = []
    for _ in range(400):
        state, _ = hmc.step(state)
        phis.append(state.phi)
    phi = torch.stack(phis, 1)  # (chain, step, L0, L1)
    flat = phi.flatten(0, 1)
    exact = free_propagator(shape, beta)
    for x in [(0, 0), (1, 0), (0, 1), (1, 1), (2, 1), (4, 4)]:
        g_x = (torch.roll(flat, (-x[0], -x[1]), (1, 2)) * flat).mean((1, 2)).reshape(32, -1).numpy()
        r = gamma_method(g_x)
        assert abs(r.value - exact[x].item()) < 4 * r.error, (x, r.value, exact[x].item(), r.error)
    m = magnetization(flat).reshape(32, -1).numpy()
    e = energy_density(flat).reshape(32, -1).numpy()
    s = Phi4Action(beta, 0.0)(flat).reshape(32, -1).numpy()
    obs = phi4_observables(m, e, s, volume)
    chi_exact = 1.0 / (2.0 - 2.0 * beta * 2)
    assert abs(obs["susceptibility"].value - chi_exact) < 4 * obs["susceptibility"].error
    e_exact = 0.5 * (exact[1, 0] + exact[0, 1]).item()
    assert abs(obs["energy"].value - e_exact) < 4 * obs["energy"].error
    # <S>/V = 1/2 per degree of freedom (equipartition of the Gaussian action)
    assert abs(obs["action_density"].value - 0.5) < 4 * obs["action_density"].error
    c = timeslice_correlator(flat).reshape(32, -1, 8).numpy()
    corr = analyze_correlator(c, m, volume, t_min=1)
    m_pole = math.acosh(1.0 / beta - 1.0)  # cosh m = 1/beta - (d - 1) at zero spatial momentum
    assert abs(corr.mass.value - m_pole) < 4 * corr.mass.error
    assert abs(corr.xi.value - 1.0 / m_pole) < 4 * corr.xi.error


def test_a_chain_does_not_depend_on_its_batch() -> None:
    """Chain 2 alone and chain 2 inside a batch of 4 follow the same history bit for bit."""
    batch = HMC(INTERACTING, INTEGRATORS["leapfrog"](), tau=1.0, n_steps=6, rng=ChainRNG(5, range(4)))
    alone = HMC(INTERACTING, INTEGRATORS["leapfrog"](), tau=1.0, n_steps=6, rng=ChainRNG(5, [2]))
    sb = batch.init(batch.rng.normal((6, 6)))
    sa = alone.init(alone.rng.normal((6, 6)))
    for _ in range(5):
        sb, ib = batch.step(sb)
        sa, ia = alone.step(sa)
        assert torch.equal(sb.phi[2], sa.phi[0]) and bool(ib.accepted[2]) == bool(ia.accepted[0])


def test_nan_trajectory_is_rejected() -> None:
    class Exploding(Phi4Action):
        def force(self, phi: torch.Tensor) -> torch.Tensor:
            return torch.full_like(phi, math.nan)

    hmc = HMC(Exploding(0.5, 0.5), INTEGRATORS["leapfrog"](), tau=1.0, n_steps=3, rng=ChainRNG(0, range(2)))
    state = hmc.init(torch.zeros(2, 4, 4, dtype=torch.float64))
    new, info = hmc.step(state)
    assert not info.accepted.any() and torch.equal(new.phi, state.phi)


@pytest.mark.parametrize("start, target", [(3, 0.85), (200, 0.85), (3, 0.7), (200, 0.7), (3, 0.95), (200, 0.95)])
def test_step_size_tuning_reaches_the_target_acceptance_from_both_sides(start: int, target: float) -> None:
    """From too few steps (an unstable integrator, acceptance 0) and from too many (acceptance 1):
    after 100 tuned trajectories the acceptance of the next 100 is the target within 0.06
    (tau = 2 on 8x8 wants about 10 steps, so one step more or less moves it by less)."""
    hmc = HMC(INTERACTING, INTEGRATORS["leapfrog"](), tau=2.0, n_steps=start, rng=ChainRNG(3, range(16)))
    state = hmc.init(hmc.rng.normal((8, 8)))
    tuner = StepSizeTuner(target=target, log_n=math.log(start))
    for _ in range(100):
        state, info = hmc.step(state)
        hmc.n_steps = tuner.update(info.dH)
    accepted = []
    for _ in range(100):
        state, info = hmc.step(state)
        accepted.append(info.accepted.double().mean().item())
    assert (hmc.n_steps > start) if start < 10 else (hmc.n_steps < start)
    assert abs(np.mean(accepted) - target) < 0.06, (hmc.n_steps, np.mean(accepted))
