"""Gauge fields: loops, gauge invariance, SU(N) projection, U(1) force, charge, exact plaquette."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import iv

from conftest import generator
from hpcflow.analysis.gamma import gamma_method
from hpcflow.lattice.rng import ChainRNG
from hpcflow.samplers.hmc import HMC
from hpcflow.samplers.integrators import Leapfrog
from hpcflow.theories.gauge import (
    U1Action,
    WilsonGaugeAction,
    dagger,
    gauge_transform,
    identity_links,
    plaquette_field,
    random_gauge,
    random_su_n,
    reunitarize,
    topological_charge,
    u1_links,
    u1_plaquette_angle,
    wilson_loop,
)
from hpcflow.theories.gauge_exact import u1_plaquette_exact



def _trace(m: torch.Tensor) -> torch.Tensor:
    return m.diagonal(dim1=-2, dim2=-1).sum(-1)


@pytest.mark.parametrize("n", [2, 3])
def test_random_su_n_is_special_unitary(n: int) -> None:
    u = random_su_n((5, 3), n, generator())
    eye = torch.eye(n, dtype=u.dtype)
    torch.testing.assert_close(u @ dagger(u), eye.expand_as(u), rtol=0, atol=1e-13)
    torch.testing.assert_close(torch.linalg.det(u), torch.ones(5, 3, dtype=u.dtype), rtol=0, atol=1e-13)


def test_reunitarize_projects_a_perturbed_matrix_back() -> None:
    u = random_su_n((4,), 3, generator())
    noisy = u + 1e-3 * torch.randn(4, 3, 3, dtype=torch.complex128, generator=generator(1))
    v = reunitarize(noisy)
    torch.testing.assert_close(v @ dagger(v), torch.eye(3, dtype=v.dtype).expand_as(v), rtol=0, atol=1e-13)
    torch.testing.assert_close(torch.linalg.det(v), torch.ones(4, dtype=v.dtype), rtol=0, atol=1e-13)
    assert (v - u).abs().max() < 1e-2  # close to where it came from
    torch.testing.assert_close(reunitarize(u), u, rtol=0, atol=1e-12)  # SU(N) is left alone


def test_u1_plaquette_loop_matches_the_angle() -> None:
    theta = torch.empty(2, 2, 4, 6, dtype=torch.float64).uniform_(-math.pi, math.pi, generator=generator())
    loop = plaquette_field(u1_links(theta), 0, 1)[..., 0, 0]
    torch.testing.assert_close(loop, torch.polar(torch.ones_like(theta[:, 0]), u1_plaquette_angle(theta)))


@pytest.mark.parametrize("shape", [(4, 4), (2, 3, 2, 4)])
def test_wilson_loops_are_gauge_invariant(shape: tuple[int, ...]) -> None:
    d = len(shape)
    u = random_su_n((2, d, *shape), 3, generator(2))
    omega = random_gauge(2, shape, 3, generator(3))
    v = gauge_transform(u, omega)
    assert (v - u).abs().max() > 0.1
    for path in ([1, 2, -1, -2], [1, 1, 2, -1, -1, -2], [2, 2, -1, -2, -2, 1], [1, 2, -1, -1, -2, 1]):
        torch.testing.assert_close(_trace(wilson_loop(v, path)), _trace(wilson_loop(u, path)), rtol=0, atol=1e-12)
    action = WilsonGaugeAction(beta=5.5)
    torch.testing.assert_close(action(v), action(u), rtol=1e-12, atol=1e-10)


def test_open_path_is_refused() -> None:
    u = identity_links(1, (4, 4), 2)
    with pytest.raises(ValueError, match="does not close"):
        wilson_loop(u, [1, 2, -1])


def test_free_field_action_and_plaquette() -> None:
    u = identity_links(2, (2, 2, 2, 2), 3)
    torch.testing.assert_close(WilsonGaugeAction.mean_plaquette(u), torch.ones(2, dtype=torch.float64))
    torch.testing.assert_close(WilsonGaugeAction(6.0)(u), torch.full((2,), -6.0 * 16 * 6, dtype=torch.float64))


def test_u1_force_is_the_gradient() -> None:
    action = U1Action(beta=1.7)
    theta = torch.randn(3, 2, 4, 6, dtype=torch.float64, generator=generator(), requires_grad=True)
    (grad,) = torch.autograd.grad(action(theta).sum(), theta)
    torch.testing.assert_close(action.force(theta.detach()), grad, rtol=1e-12, atol=1e-12)


def test_topological_charge_is_an_integer() -> None:
    theta = torch.empty(16, 2, 6, 6, dtype=torch.float64).uniform_(-math.pi, math.pi, generator=generator(4))
    q = topological_charge(theta)
    torch.testing.assert_close(q, torch.round(q), rtol=0, atol=1e-10)
    assert q.abs().max() >= 1  # random fields carry charge: the test is not trivially zero
    # a smooth instanton-like field: constant field strength 2 pi / V in every plaquette
    l0 = l1 = 6
    x0 = torch.arange(l0, dtype=torch.float64)[:, None].expand(l0, l1)
    x1 = torch.arange(l1, dtype=torch.float64)[None, :].expand(l0, l1)
    f = 2 * math.pi / (l0 * l1)
    theta1 = f * x0  # theta_1(x) = f x0, plus the twist on the last time slice for theta_0
    theta0 = torch.where(x0 == l0 - 1, -f * l0 * x1, torch.zeros_like(x1))
    q1 = topological_charge(torch.stack([theta0, theta1])[None])
    torch.testing.assert_close(q1.abs(), torch.ones(1, dtype=torch.float64), rtol=0, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(8, 8), (2, 2)])
def test_u1_hmc_plaquette_matches_the_bessel_result(shape: tuple[int, int]) -> None:
    """<cos theta_P> on a periodic torus at beta = 2: Z = sum_n I_n(beta)^V (V plaquettes)."""
    beta, volume = 2.0, shape[0] * shape[1]
    rng = ChainRNG(1, range(32))
    hmc = HMC(U1Action(beta), Leapfrog(), tau=1.0, n_steps=8, rng=rng)
    state = hmc.init(torch.zeros(32, 2, *shape, dtype=torch.float64))
    for _ in range(100):
        state, _ = hmc.step(state)
    plaq = []
    for _ in range(400):
        state, _ = hmc.step(state)
        plaq.append(torch.cos(u1_plaquette_angle(state.phi)).mean((1, 2)).numpy())
    r = gamma_method(np.stack(plaq, 1))
    exact = u1_plaquette_exact(beta, volume)
    assert abs(r.value - exact) < 4 * r.error, (r.value, r.error, exact)
    if volume == 4:  # on 2x2 the torus differs from infinite volume by many error bars
        assert abs(exact - iv(1, beta) / iv(0, beta)) > 10 * r.error
