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


@pytest.mark.parametrize(
    "n, shape, links",
    [
        (3, (3, 4, 3, 5), [(0, (2, 1, 0, 3)), (1, (1, 3, 2, 4)), (2, (0, 2, 1, 1)), (3, (2, 0, 2, 2))]),
        (2, (3, 4, 3, 5), [(0, (0, 0, 0, 0)), (3, (1, 2, 1, 4))]),
        (3, (4, 3), [(0, (3, 2)), (1, (1, 0))]),
    ],
    ids=["su3-4d", "su2-4d", "su3-2d"],
)
def test_force_is_the_derivative_along_left_multiplication(n: int, shape: tuple, links: list) -> None:
    """dS/domega^a for U_mu(x) -> exp(i omega^a T_a) U_mu(x), by central differences, equals
    2 tr(T_a F) for every generator. Every extent is at least 3, so x + nu and x - nu are different
    sites (on extent 2 they coincide and a wrong staple can cancel)."""
    action = WilsonGaugeAction(beta=5.7)
    u = random_su_n((1, len(shape), *shape), n, generator(2))
    force = wilson_force(action, u)
    gens = _generators(n, u.dtype)
    h = 1e-5
    for mu, site in links:
        for a in range(n * n - 1):
            def s_at(w: float) -> float:
                v = u.clone()
                v[(0, mu, *site)] = torch.linalg.matrix_exp(1j * w * gens[a]) @ v[(0, mu, *site)]
                return action(v).item()

            numeric = (s_at(h) - s_at(-h)) / (2 * h)
            analytic = 2 * torch.trace(gens[a] @ force[(0, mu, *site)]).real.item()
            assert numeric == pytest.approx(analytic, rel=1e-6, abs=1e-7), (mu, site, a)


def _plaquette_run(hmc: GaugeHMC, start: torch.Tensor, thermalization: int, trajectories: int) -> tuple:
    """Gamma-method plaquette of an HMC run and its last links; checks <exp(-dH)> = 1 within 4 sigma."""
    state = hmc.init(start)
    for _ in range(thermalization):
        state, _ = hmc.step(state)
    plaq, boltz = [], []
    for _ in range(trajectories):
        state, info = hmc.step(state)
        plaq.append(WilsonGaugeAction.mean_plaquette(state.phi).numpy())
        boltz.append(torch.exp(-info.dH).numpy())
    b = gamma_method(np.stack(boltz, 1))
    assert abs(b.value - 1.0) < 4 * b.error
    return gamma_method(np.stack(plaq, 1)), state.phi


def _su3_single_plaquette(beta: float, grid: int = 96) -> float:
    r"""<(1/3) Re tr U> with weight exp((beta/3) Re tr U) over Haar-distributed SU(3) U: the Weyl
    integral over eigenphases (t1, t2, -t1-t2) with density prod_{i<j} |e^{i t_i} - e^{i t_j}|^2,
    by the periodic trapezoid rule (exponentially accurate for this smooth integrand)."""
    t = 2 * np.pi * np.arange(grid) / grid
    t1, t2 = np.meshgrid(t, t, indexing="ij")
    z = np.exp(1j * np.stack([t1, t2, -t1 - t2]))
    vandermonde = np.abs(z[0] - z[1]) ** 2 * np.abs(z[0] - z[2]) ** 2 * np.abs(z[1] - z[2]) ** 2
    re_tr = z.real.sum(0)
    weight = vandermonde * np.exp(beta / 3 * re_tr)
    return float((weight * re_tr / 3).sum() / weight.sum())


def test_single_plaquette_integral_has_the_strong_coupling_series() -> None:
    """u(beta) = beta/18 + beta^2/216 + O(beta^3) for SU(3); the Haar measure alone gives 0."""
    for beta in (0.01, 0.05):
        assert _su3_single_plaquette(beta) == pytest.approx(beta / 18 + beta**2 / 216, rel=10 * beta**2)
    assert abs(_su3_single_plaquette(0.0)) < 1e-14


@pytest.mark.slow
def test_4d_su3_plaquette_at_strong_coupling() -> None:
    """4D SU(3) at beta = 1: in the character expansion <(1/3) Re tr U_P> = u(beta) + O(u^5),
    u the single-plaquette value (the first closed surface is a cube of six plaquettes; u^5 ~ 7e-7
    here), u = 0.0601 against the first term beta/18 = 0.0556. HMC on 3^4 from a hot start."""
    beta = 1.0
    action = WilsonGaugeAction(beta=beta)
    chains = 8
    hmc = GaugeHMC(action, tau=1.0, n_steps=4, rng=ChainRNG(5, range(chains)))
    r, _ = _plaquette_run(hmc, random_su_n((chains, 4, 3, 3, 3, 3), 3, generator(6)), 20, 120)
    exact = _su3_single_plaquette(beta)
    assert abs(r.value - exact) < 4 * r.error, (r.value, r.error, exact)
    assert abs(r.value - beta / 18) > 4 * r.error  # the test resolves the beta^2 term


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
    r, u = _plaquette_run(hmc, identity_links(16, (8, 8), 2), 40, 150)
    # on a torus Z = sum_j (2 I_{2j+1}/beta)^V; at V = 64 the j > 0 terms are below 1e-40: I_2/I_1 is exact
    assert abs(r.value - iv(2, beta) / iv(1, beta)) < 4 * r.error
    torch.testing.assert_close(u @ dagger(u), torch.eye(2, dtype=u.dtype).expand_as(u), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(u), torch.ones(u.shape[:-2], dtype=u.dtype), rtol=0, atol=1e-12)
