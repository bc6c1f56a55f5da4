"""Flow HMC: the pulled-back action and its force (log-det term and sign), reversibility,
dH ~ eps^2, <exp(-dH)> = 1, FHMC with the identity flow is HMC, with the exact free-theory flow
the dynamics is that of free unit fields, and the chain is exact with an imperfect flow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import generator
from hpcflow.analysis.gamma import gamma_method
from hpcflow.lattice.rng import ChainRNG
from hpcflow.models.flows import Flow, FlowSpec, build_flow
from hpcflow.models.flows.fourier import MomentumScaling
from hpcflow.samplers.fhmc import PulledBackAction
from hpcflow.samplers.hmc import HMC
from hpcflow.samplers.integrators import INTEGRATORS, Leapfrog
from hpcflow.theories.phi4 import Phi4Action, free_propagator

INTERACTING = Phi4Action(beta=0.55, lam=0.5)
FREE = Phi4Action(beta=0.2, lam=0.0)


def _random_flow(seed: int = 5, scale: float = 0.2, coupling: str | list[str] = "affine") -> Flow:
    """A flow with random weights (momentum-space layer, two couplings, rescaling), far from the
    identity, in float64. Affine couplings by default: a rational-quadratic spline is only C^1, so
    the log-det term of the force jumps at the knots and dH no longer falls as eps^2 (the chain
    stays exact: the integrator is still reversible and area preserving), and the conditioners'
    activation is smooth (tanh) for the same reason: ReLU kinks make the force jump."""
    torch.manual_seed(seed)
    flow = build_flow(FlowSpec(coupling=coupling, layers=2, hidden=(4,), kernel=3, rescaling=True,
                               fourier=True, equivariant=False, bins=4, activation="tanh")).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.normal_(0.0, scale)
    return flow


def _fhmc(flow: torch.nn.Module, action: Phi4Action, chains: int, n_steps: int, tau: float = 1.0,
          integrator: str = "leapfrog", seed: int = 3) -> HMC:
    return HMC(PulledBackAction(flow, action), INTEGRATORS[integrator](), tau=tau, n_steps=n_steps,
               rng=ChainRNG(seed, range(chains)))


def test_the_force_is_the_gradient_of_the_pulled_back_action_with_its_log_det() -> None:
    """Central differences of S_F(z) = S(f(z)) - log|det J| at several sites, against the force;
    the log-det term matters here (the gradient of S(f(z)) alone is far off) and enters with -."""
    flow = _random_flow(coupling=["affine", "spline"])
    pulled = PulledBackAction(flow, INTERACTING)
    z = torch.randn(2, 6, 6, dtype=torch.float64, generator=generator(1))
    force = pulled.force(z)
    h = 1e-6
    for site in [(0, 0, 0), (1, 2, 5), (0, 4, 1), (1, 5, 3)]:
        e = torch.zeros_like(z)
        e[site] = h
        numeric = ((pulled(z + e) - pulled(z - e)) / (2 * h))[site[0]].item()
        assert force[site].item() == pytest.approx(numeric, rel=1e-6, abs=1e-8), site
    leaf = z.clone().requires_grad_(True)
    phi, logdet = flow(leaf)
    (without_logdet,) = torch.autograd.grad(INTERACTING(phi).sum(), leaf, retain_graph=True)
    (wrong_sign,) = torch.autograd.grad((INTERACTING(phi) + logdet).sum(), leaf)
    assert (force - without_logdet).abs().max() > 1e-2 and (force - wrong_sign).abs().max() > 1e-2
    phi_push, s_push = pulled.push(z)
    torch.testing.assert_close(s_push, INTERACTING(phi_push), rtol=0, atol=1e-12)


@pytest.mark.parametrize("integrator", sorted(INTEGRATORS))
def test_latent_molecular_dynamics_is_reversible_and_dH_scales_as_eps_squared(integrator: str) -> None:
    hmc = _fhmc(_random_flow(scale=0.1), INTERACTING, 4, 10, integrator=integrator)
    z = torch.randn(4, 6, 6, dtype=torch.float64, generator=generator(2))
    pi = torch.randn(4, 6, 6, dtype=torch.float64, generator=generator(3))
    z1, pi1 = hmc.trajectory(z, pi)
    z2, pi2 = hmc.trajectory(z1, -pi1)
    assert (z1 - z).abs().max() > 0.1
    torch.testing.assert_close(z2, z, rtol=0, atol=1e-10)
    torch.testing.assert_close(-pi2, pi, rtol=0, atol=1e-10)
    h0 = hmc.hamiltonian(z, pi)
    steps, rms = (40, 80, 160), []
    for n in steps:
        hmc.n_steps = n
        ze, pe = hmc.trajectory(z, pi)
        rms.append((hmc.hamiltonian(ze, pe) - h0).pow(2).mean().sqrt().item())
    slope = np.polyfit(np.log(1.0 / np.array(steps)), np.log(rms), 1)[0]
    assert slope == pytest.approx(2.0, abs=0.15)


def test_with_the_identity_flow_fhmc_is_hmc() -> None:
    """A fresh flow is the identity (S_F = S): the same streams give the same chain as HMC, the
    force by autograd against the analytic one to rounding."""
    identity = build_flow(FlowSpec(coupling="affine", layers=2, hidden=(4,), kernel=3, rescaling=True, fourier=True)).double()
    fhmc = _fhmc(identity, INTERACTING, 6, 8)
    hmc = HMC(INTERACTING, Leapfrog(), tau=1.0, n_steps=8, rng=ChainRNG(3, range(6)))
    start = torch.randn(6, 6, 6, dtype=torch.float64, generator=generator(4))
    a, b = fhmc.init(start), hmc.init(start)
    for _ in range(25):
        a, info_a = fhmc.step(a)
        b, info_b = hmc.step(b)
        assert torch.equal(info_a.accepted, info_b.accepted)
    torch.testing.assert_close(a.phi, b.phi, rtol=0, atol=1e-10)
    assert 0 < info_a.accepted.double().mean() <= 1


def _free_theory_flow(beta: float, shape: tuple[int, int]) -> Flow:
    """The momentum-space layer at the exact map of the free theory (tests/test_flows.py)."""
    layer = MomentumScaling().double()
    m2 = (2 - 4 * beta) / beta
    with torch.no_grad():
        layer.poly.copy_(torch.tensor([-0.5 * math.log(beta * (8 + m2)), 0.0, 0.0, 0.0], dtype=torch.float64))
        layer.power.fill_(1.0)
        layer.log_mass2.fill_(math.log(m2))
    return Flow([layer], FlowSpec(coupling="affine", layers=0, hidden=(), kernel=3, fourier=True))


def test_with_the_exact_free_theory_flow_the_latent_fields_are_free_unit_gaussians() -> None:
    """lam = 0 and the trivializing map: S_F(z) = |z|^2 / 2 + const, the force is z, so every
    trajectory's dH is that of unit harmonic oscillators under the same leapfrog (rounding), the
    acceptance is that of free fields, and f(z) has the exact propagator."""
    beta, shape = 0.2, (8, 8)
    flow = _free_theory_flow(beta, shape)
    pulled = PulledBackAction(flow, FREE)
    z = torch.randn(16, *shape, dtype=torch.float64, generator=generator(5))
    s_f = pulled(z) - 0.5 * (z * z).flatten(1).sum(1)
    assert (s_f - s_f[0]).abs().max() < 1e-10
    torch.testing.assert_close(pulled.force(z), z, rtol=0, atol=1e-10)
    hmc = _fhmc(flow, FREE, 32, 10, seed=6)
    oscillator = HMC(_UnitGaussian(), Leapfrog(), tau=1.0, n_steps=10, rng=ChainRNG(6, range(32)))
    state, twin = hmc.init(z[:1].expand(32, *shape).clone()), None
    twin = oscillator.init(state.phi.clone())
    fields = []
    for t in range(250):
        state, info = hmc.step(state)
        twin, info_twin = oscillator.step(twin)
        torch.testing.assert_close(info.dH, info_twin.dH, rtol=0, atol=1e-9)
        if t >= 20:
            fields.append(hmc.action.push(state.phi)[0])
    phi = torch.stack(fields, 1)
    exact = free_propagator(shape, beta)
    for x in [(0, 0), (1, 0), (2, 3)]:
        r = gamma_method((torch.roll(phi, (-x[0], -x[1]), (2, 3)) * phi).mean((2, 3)).numpy())
        assert abs(r.value - exact[x].item()) < 4 * r.error, x


class _UnitGaussian:
    """S = |z|^2 / 2: free unit fields, the latent action of a trivializing map up to a constant."""

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return 0.5 * (z * z).flatten(1).sum(1)

    def force(self, z: torch.Tensor) -> torch.Tensor:
        return z.clone()


@pytest.mark.slow
def test_flow_hmc_is_exact_with_an_imperfect_flow() -> None:
    """A random flow: the chain of f(z) still has the exact free propagator and <exp(-dH)> = 1."""
    flow = _random_flow(seed=7, scale=0.15)
    hmc = _fhmc(flow, FREE, 32, 8, integrator="omelyan", seed=8)
    state = hmc.init(torch.randn(32, 6, 6, dtype=torch.float64, generator=generator(9)))
    fields, boltzmann = [], []
    for t in range(300):
        state, info = hmc.step(state)
        if t >= 30:
            fields.append(hmc.action.push(state.phi)[0])
            boltzmann.append(torch.exp(-info.dH).numpy())
    b = gamma_method(np.stack(boltzmann, 1))
    assert abs(b.value - 1.0) < 4 * b.error
    phi = torch.stack(fields, 1)
    exact = free_propagator((6, 6), FREE.beta)
    for x in [(0, 0), (1, 0), (1, 1)]:
        r = gamma_method((torch.roll(phi, (-x[0], -x[1]), (2, 3)) * phi).mean((2, 3)).numpy())
        assert abs(r.value - exact[x].item()) < 4 * r.error, x
