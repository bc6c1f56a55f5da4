"""phi^4 action, force, parametrizations and the exact free propagator."""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import pytest
import torch

from hpcflow.lattice.geometry import shift
from hpcflow.theories.phi4 import (
    Phi4Action,
    energy_density,
    free_propagator,
    magnetization,
    timeslice_correlator,
)


def _albergo_action(phi_a: torch.Tensor, m2: float, lam_a: float) -> torch.Tensor:
    """S_A = sum_x [-2 sum_mu phi_x phi_{x+mu} + (4 + m2) phi_x^2 + lamA phi_x^4], written out."""
    hop = sum(shift(phi_a, mu, +1) for mu in range(phi_a.dim() - 1)) * phi_a
    return (-2.0 * hop + (4.0 + m2) * phi_a**2 + lam_a * phi_a**4).flatten(1).sum(1)


def test_action_by_hand_on_a_2x2_lattice() -> None:
    phi = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]], dtype=torch.float64)
    beta, lam = 0.3, 0.7
    # on 2x2 each site has its forward neighbour in each direction once: pairs (x, x+mu)
    hop = (1 * 3 + 2 * 4 + 3 * 1 + 4 * 2) + (1 * 2 + 2 * 1 + 3 * 4 + 4 * 3)
    local = sum(p * p + lam * (p * p - 1) ** 2 for p in (1.0, 2.0, 3.0, 4.0))
    torch.testing.assert_close(Phi4Action(beta, lam)(phi), torch.tensor([-beta * hop + local], dtype=torch.float64))


@pytest.mark.parametrize("shape", [(6, 6), (4, 8), (4, 4, 4)])
def test_force_is_the_gradient_of_the_action(shape: tuple[int, ...]) -> None:
    action = Phi4Action(beta=0.61, lam=0.43)
    phi = torch.randn(3, *shape, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(action(phi).sum(), phi)
    torch.testing.assert_close(action.force(phi.detach()), grad, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("beta, lam", [(0.576, 0.5), (0.7, 0.0), (0.3, 1.3), (0.5, 0.5)])
def test_parametrizations_convert_exactly(beta: float, lam: float) -> None:
    action = Phi4Action(beta, lam)
    m2, lam_a = action.to_m2_lam()
    back = Phi4Action.from_m2_lam(m2, lam_a)
    assert back.beta == pytest.approx(beta, rel=1e-14) and back.lam == pytest.approx(lam, rel=1e-14, abs=1e-15)
    phi = torch.randn(5, 8, 8, dtype=torch.float64)
    s_a = _albergo_action(action.field_to_albergo(phi), m2, lam_a)
    torch.testing.assert_close(action(phi), s_a + lam * phi[0].numel(), rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("m2", [-5.0, -4.0, -3.999, -1.0, 0.0, 4.0, 1e3])
def test_m2_lam_conversion_is_accurate_over_many_orders_of_magnitude(m2: float) -> None:
    """beta from (m2, lamA) against the positive root of lamA beta^2 + (m2 + 4) beta - 2 = 0 in
    60-digit decimal arithmetic, for lamA from 1e-14 to 1e8 (the cancelling textbook form was off
    by 9e-5 at lamA = 1e-12, m2 = 0); then the round trip back to (m2, lamA)."""
    getcontext().prec = 60
    for k in range(-14, 9):
        lam_a = 10.0**k
        b, lam_d = Decimal(m2) + 4, Decimal(lam_a)
        exact = (-b + (b * b + 8 * lam_d).sqrt()) / (2 * lam_d)
        action = Phi4Action.from_m2_lam(m2, lam_a)
        assert abs(Decimal(action.beta) / exact - 1) < Decimal("4e-16"), (m2, lam_a, action.beta, exact)
        assert abs(Decimal(action.lam) / (lam_d * exact * exact / 4) - 1) < Decimal("1e-15"), (m2, lam_a)
        m2_back, lam_a_back = action.to_m2_lam()
        assert lam_a_back == pytest.approx(lam_a, rel=1e-14)
        assert m2_back + 4.0 == pytest.approx(m2 + 4.0, rel=1e-9, abs=1e-13 * action.beta**-1)


def test_mit_tutorial_couplings() -> None:
    """m2 = -4, lamA = 8 is beta = 0.5, lam = 0.5 (shared/PHYSICS.md)."""
    action = Phi4Action.from_m2_lam(-4.0, 8.0)
    assert (action.beta, action.lam) == pytest.approx((0.5, 0.5), rel=1e-15)


def test_free_propagator_inverts_the_kinetic_operator() -> None:
    """sum_y K(x, y) G(y) = delta_{x,0} with K from the quadratic action S = 1/2 phi K phi."""
    shape, beta = (6, 8), 0.37
    g = free_propagator(shape, beta)
    action = Phi4Action(beta, 0.0)
    # the force of a quadratic action is linear: force(G) = K G
    kg = action.force(g[None])[0]
    delta = torch.zeros(shape, dtype=torch.float64)
    delta[0, 0] = 1.0
    torch.testing.assert_close(kg, delta, rtol=0, atol=1e-13)


def test_free_propagator_refuses_unstable_beta() -> None:
    with pytest.raises(ValueError, match="beta"):
        free_propagator((4, 4), 0.5)


def test_observable_estimators() -> None:
    phi = torch.randn(3, 6, 4, dtype=torch.float64)
    torch.testing.assert_close(magnetization(phi), phi.sum((1, 2)))
    e = (phi * torch.roll(phi, -1, 1) + phi * torch.roll(phi, -1, 2)).mean((1, 2)) / 2
    torch.testing.assert_close(energy_density(phi), e)
    c = timeslice_correlator(phi)
    sigma = phi.sum(2)
    direct = torch.stack([(sigma * torch.roll(sigma, -t, 1)).sum(1) for t in range(6)], 1) / 24
    torch.testing.assert_close(c, direct, rtol=1e-12, atol=1e-12)
    assert math.isclose(float(c[0, 0] * 24), float((sigma[0] ** 2).sum()), rel_tol=1e-12)
