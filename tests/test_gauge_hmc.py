"""SU(N) gauge HMC: force, reversibility, dH ~ eps^2, group structure kept, 2D SU(2) plaquette."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import iv

from conftest import generator
from hpcflow.analysis.gamma import gamma_method
from hpcflow.lattice.rng import ChainRNG
from hpcflow.samplers.gauge_hmc import GaugeHMC, _generators, wilson_force
from hpcflow.theories.gauge import WilsonGaugeAction, dagger, identity_links, random_su_n



@pytest.mark.parametrize("n", [2, 3])
def test_generators_are_orthonormal(n: int) -> None:
    t = _generators(n, torch.complex128)
    assert t.shape[0] == n * n - 1
    gram = torch.einsum("aij,bji->ab", t, t)
    torch.testing.assert_close(gram, 0.5 * torch.eye(n * n - 1, dtype=gram.dtype))
    torch.testing.assert_close(t, dagger(t))


def test_force_is_the_derivative_along_left_multiplication() -> None:
    """dS/domega^a for U_mu(x) -> exp(i omega^a T_a) U_mu(x), by central differences, equals 2 tr(T_a F)."""
    action = WilsonGaugeAction(beta=2.3)
    u = random_su_n((1, 3, 2, 3, 2), 3, generator(1))
    force = wilson_force(action, u)
    gens = _generators(3, u.dtype)
    h = 1e-5
    for mu, site, a in [(0, (0, 0, 0), 0), (1, (1, 2, 1), 4), (2, (0, 1, 1), 7)]:
        def s_at(w: float) -> float:
            v = u.clone()
            v[(0, mu, *site)] = torch.linalg.matrix_exp(1j * w * gens[a]) @ v[(0, mu, *site)]
            return action(v).item()

        numeric = (s_at(h) - s_at(-h)) / (2 * h)
        analytic = 2 * torch.trace(gens[a] @ force[(0, mu, *site)]).real.item()
        assert numeric == pytest.approx(analytic, rel=1e-6, abs=1e-8)


def test_trajectory_is_reversible_and_dH_scales_as_eps_squared() -> None:
    action = WilsonGaugeAction(beta=4.0)
    rng = ChainRNG(2, range(4))
    hmc = GaugeHMC(action, tau=0.5, n_steps=10, rng=rng)
    u = random_su_n((4, 2, 4, 4), 2, generator(3))
    p = hmc.momenta(u)
    u1, p1 = hmc.trajectory(u, p)
    u2, p2 = hmc.trajectory(u1, -p1)
    assert (u1 - u).abs().max() > 0.05
    torch.testing.assert_close(u2, u, rtol=0, atol=1e-10)
    torch.testing.assert_close(-p2, p, rtol=0, atol=1e-10)
    rms = []
    steps = (10, 20, 40)
    h0 = hmc.kinetic(p) + action(u)
    for n in steps:
        hmc.n_steps = n
        ue, pe = hmc.trajectory(u, p)
        rms.append((hmc.kinetic(pe) + action(ue) - h0).pow(2).mean().sqrt().item())
    slope = np.polyfit(np.log(1.0 / np.array(steps)), np.log(rms), 1)[0]
    assert slope == pytest.approx(2.0, abs=0.1)


@pytest.mark.slow
def test_2d_su2_plaquette_and_group_structure() -> None:
    """2D SU(2), beta = 2: <(1/2) tr U_P> = I_2(beta)/I_1(beta);
    <exp(-dH)> = 1; links stay unitary with unit determinant."""
    beta = 2.0
    action = WilsonGaugeAction(beta=beta)
    hmc = GaugeHMC(action, tau=1.0, n_steps=6, rng=ChainRNG(4, range(16)))
    state = hmc.init(identity_links(16, (8, 8), 2))
    for _ in range(40):
        state, _ = hmc.step(state)
    plaq, boltz = [], []
    for _ in range(150):
        state, info = hmc.step(state)
        plaq.append(WilsonGaugeAction.mean_plaquette(state.phi).numpy())
        boltz.append(torch.exp(-info.dH).numpy())
    r = gamma_method(np.stack(plaq, 1))
    # on a torus Z = sum_j (2 I_{2j+1}/beta)^V; at V = 64 the j > 0 terms are below 1e-40: I_2/I_1 is exact
    assert abs(r.value - iv(2, beta) / iv(1, beta)) < 4 * r.error
    b = gamma_method(np.stack(boltz, 1))
    assert abs(b.value - 1.0) < 4 * b.error
    u = state.phi
    torch.testing.assert_close(u @ dagger(u), torch.eye(2, dtype=u.dtype).expand_as(u), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(u), torch.ones(u.shape[:-2], dtype=u.dtype), rtol=0, atol=1e-12)
