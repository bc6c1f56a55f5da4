"""The gauge-equivariant coupling flow of 2D U(1) against exact results: the circular spline is a
C^1 bijection of the circle with the right log-derivative, the flow's log-det is the log of its
autograd Jacobian's determinant, it inverts, it commutes with gauge transformations, a layer
moves only its active links and maps each active plaquette by its spline, and a fresh flow is
the identity; the von Mises plaquette map is exact but for the one constrained plaquette."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import generator
from hpcflow.models.gauge_coupling import (
    GaugeCouplingFlow,
    GaugeCouplingSpec,
    PlaquetteCoupling,
    VonMises,
    VonMisesPlaquetteMap,
    circular_spline,
    tree_link_changes,
    wrap_angle,
)
from hpcflow.theories.gauge import U1Action, u1_plaquette_angle

SPEC = GaugeCouplingSpec(layers=8, hidden=(4,), kernel=3, bins=5)


def _angles(shape: tuple[int, int], batch: int = 1, seed: int = 0) -> torch.Tensor:
    return (torch.rand((batch, 2, *shape), generator=generator(seed), dtype=torch.float64) * 2 - 1) * math.pi


def _randomize(module: torch.nn.Module, scale: float = 0.15, seed: int = 1) -> torch.nn.Module:
    """Random weights (a fresh flow is the identity, which tests nothing)."""
    g = generator(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


def _flow(spec: GaugeCouplingSpec = SPEC, beta: float | None = None) -> GaugeCouplingFlow:
    return _randomize(GaugeCouplingFlow(spec, beta).double())


def _same_angles(a: torch.Tensor, b: torch.Tensor, atol: float) -> None:
    """Equal modulo 2 pi."""
    assert float(wrap_angle(a - b).abs().max()) < atol


def test_circular_spline_is_a_c1_bijection_of_the_circle_with_exact_log_derivative() -> None:
    logits = torch.randn((3, 15), generator=generator(2), dtype=torch.float64)
    ends = torch.tensor([-math.pi, math.pi], dtype=torch.float64)
    for row in logits:
        y, log_d = circular_spline(ends, row.expand(2, 15))
        torch.testing.assert_close(y, ends, rtol=0, atol=1e-12)  # the end knots stay put
        assert abs(float(log_d[0] - log_d[1])) < 1e-12 and abs(float(log_d[0])) > 1e-3  # one derivative at both ends
    x = torch.linspace(-math.pi, math.pi, 201, dtype=torch.float64)[1:-1].requires_grad_()
    y, log_d = circular_spline(x, logits[0].expand(len(x), 15))
    (dy,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(log_d, dy.log(), rtol=0, atol=1e-10)
    assert (y.diff() > 0).all() and float((y - x).detach().abs().max()) > 0.1
    back, log_back = circular_spline(y.detach(), logits[0].expand(len(x), 15), inverse=True)
    torch.testing.assert_close(back, x.detach(), rtol=0, atol=1e-10)
    torch.testing.assert_close(log_back, -log_d.detach(), rtol=0, atol=1e-10)
    zero, log_zero = circular_spline(x.detach(), torch.zeros(len(x), 15, dtype=torch.float64))
    torch.testing.assert_close(zero, x.detach(), rtol=0, atol=1e-12)  # zero logits: the identity
    torch.testing.assert_close(log_zero, torch.zeros_like(log_zero), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", [(4, 4), (4, 8)])
def test_log_det_is_the_autograd_jacobian(shape: tuple[int, int]) -> None:
    flow = _flow()
    theta = _angles(shape)
    jac = torch.autograd.functional.jacobian(lambda v: flow(v.reshape(1, 2, *shape))[0].flatten(), theta.flatten())
    sign, logabsdet = torch.linalg.slogdet(jac)
    with torch.no_grad():
        _, logdet = flow(theta)
    assert float(sign) == 1.0 and abs(float(logabsdet)) > 1.0
    assert abs(float(logabsdet - logdet[0])) < 1e-8


@pytest.mark.parametrize("plaquette_map", [False, True])
def test_the_inverse_returns_the_start_and_log_prob_is_the_sampling_density(plaquette_map: bool) -> None:
    flow = _flow(GaugeCouplingSpec(layers=16, hidden=(4, 4), bins=6, plaquette_map=plaquette_map), 2.0)
    with torch.no_grad():
        theta, log_q = flow.sample(3, (8, 4), generator(3))
        start = flow.prior.sample(3, (8, 4), generator(3), torch.float64)
        back, logdet = flow.inverse(theta)
        torch.testing.assert_close(flow.log_prob(theta), log_q, rtol=0, atol=1e-9)
    assert float(wrap_angle(theta - start).abs().max()) > 0.1  # the map moved the field
    _same_angles(back, start, 1e-8)
    torch.testing.assert_close(log_q, flow.prior.log_prob(start) - logdet, rtol=0, atol=1e-9)


def test_the_flow_commutes_with_gauge_transformations() -> None:
    """theta_mu(x) -> theta_mu(x) + alpha(x) - alpha(x + mu): f(theta^alpha) = f(theta)^alpha."""
    flow = _flow()
    theta = _angles((8, 8), batch=2)
    alpha = 3 * torch.randn((2, 8, 8), generator=generator(5), dtype=torch.float64)

    def gauge(t: torch.Tensor) -> torch.Tensor:
        return torch.stack([t[:, mu] + alpha - torch.roll(alpha, -1, mu + 1) for mu in range(2)], 1)

    with torch.no_grad():
        a, la = flow(gauge(theta))
        b, lb = flow(theta)
    _same_angles(a, gauge(b), 1e-10)
    torch.testing.assert_close(la, lb, rtol=0, atol=1e-10)


@pytest.mark.parametrize("mu, offset", [(0, 0), (0, 3), (1, 1)])
def test_a_layer_moves_its_active_links_and_maps_active_plaquettes_by_its_spline(mu: int, offset: int) -> None:
    layer = _randomize(PlaquetteCoupling(mu, offset, [4], 3, 5).double())
    theta = _angles((8, 8), batch=2)
    with torch.no_grad():
        out, logdet = layer(theta)
    nu = 1 - mu
    row = torch.remainder(torch.arange(8) - offset, 4)
    rows = row[:, None].expand(8, 8) if nu == 0 else row[None, :].expand(8, 8)
    moved = wrap_angle(out - theta).abs() > 1e-12
    assert moved[:, nu].sum() == 0 and (moved[:, mu] <= (rows == 0)).all() and moved[:, mu].sum() > 0
    p, p_out = wrap_angle(u1_plaquette_angle(theta)), wrap_angle(u1_plaquette_angle(out))
    frozen = (rows == 1) | (rows == 2)
    _same_angles(p_out[:, frozen], p[:, frozen], 1e-12)
    logits = layer.net(torch.stack([p.cos(), p.sin()], 1) * frozen.double()).movedim(1, -1)
    expected, log_d = circular_spline(p, logits)
    active = rows == 0
    _same_angles(p_out[:, active], expected.detach()[:, active], 1e-12)
    torch.testing.assert_close(logdet, log_d.detach()[:, active].sum(1), rtol=0, atol=1e-12)


def test_a_fresh_flow_is_the_identity_and_the_period_is_checked() -> None:
    flow = GaugeCouplingFlow(SPEC).double()
    theta = _angles((4, 4), batch=2)
    out, logdet = flow(theta)
    _same_angles(out, theta, 1e-12)
    torch.testing.assert_close(logdet, torch.zeros(2, dtype=torch.float64), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="extent 6 of axis 1 is not a multiple of 4"):
        flow(_angles((4, 6)))


@pytest.mark.parametrize("beta", [0.0, 1.0, 6.0, 20.0])
def test_von_mises_cdf_integrates_the_density_and_its_inverse_inverts(beta: float) -> None:
    von_mises = VonMises(beta)
    grid = torch.linspace(-math.pi, math.pi, 20001, dtype=torch.float64)
    density = von_mises.log_density(grid).exp()
    trapezoid = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(0.5 * (density[1:] + density[:-1]), 0)])
    trapezoid = trapezoid * (grid[1] - grid[0])
    torch.testing.assert_close(von_mises.cdf(grid), trapezoid, rtol=0, atol=1e-7 * (1 + beta))
    u = torch.rand(5000, generator=generator(4), dtype=torch.float64)
    u[:2] = torch.tensor([0.0, 1.0])
    assert float((von_mises.cdf(von_mises.icdf(u)) - u).abs().max()) < 1e-13


def test_tree_link_changes_move_the_free_plaquettes_and_only_tree_links() -> None:
    theta = _angles((4, 6), batch=2)
    delta = torch.randn((2, 4, 6), generator=generator(6), dtype=torch.float64)
    change = tree_link_changes(delta)
    moved = u1_plaquette_angle(theta + change) - u1_plaquette_angle(theta)
    expected = delta.clone()
    expected[:, -1, 0] = delta[:, -1, 0] - delta.flatten(1).sum(1)  # x_* = (L0 - 1, 0) absorbs the total
    torch.testing.assert_close(moved, expected, rtol=0, atol=1e-12)
    tree = torch.zeros((2, 4, 6), dtype=torch.bool)
    tree[0, :, 1:], tree[1, 1:, 0] = True, True
    assert (change[:, ~tree] == 0).all() and int(tree.sum()) == 4 * 6 - 1


def test_plaquette_map_log_det_inverse_and_weights_are_exact() -> None:
    """The log-det is that of the autograd Jacobian (of the closed-form inverse), the map inverts,
    commutes with gauge transformations, and the NMCMC log-weight of every proposal is
    beta cos P_{x*} plus one constant (the map is exact but for the constrained plaquette)."""
    beta, shape = 3.0, (4, 6)
    layer = VonMisesPlaquetteMap(beta)
    theta = _angles(shape, batch=64)
    with torch.no_grad():
        out, logdet = layer(theta)
    jac = torch.autograd.functional.jacobian(lambda v: layer(v.reshape(1, 2, *shape), inverse=True)[0].flatten(),
                                             out[:1].flatten())
    assert abs(float(torch.linalg.slogdet(jac)[1] + logdet[0])) < 1e-8 and abs(float(logdet[0])) > 1.0
    back, log_back = layer(out, inverse=True)
    _same_angles(back, theta, 1e-10)
    torch.testing.assert_close(log_back, -logdet, rtol=0, atol=1e-9)
    alpha = 3 * torch.randn((64, *shape), generator=generator(5), dtype=torch.float64)
    gauged = torch.stack([theta[:, mu] + alpha - torch.roll(alpha, -1, mu + 1) for mu in range(2)], 1)
    moved_gauged, logdet_gauged = layer(gauged)
    _same_angles(moved_gauged, torch.stack([out[:, mu] + alpha - torch.roll(alpha, -1, mu + 1) for mu in range(2)], 1),
                 1e-10)
    torch.testing.assert_close(logdet_gauged, logdet, rtol=0, atol=1e-9)
    flow = GaugeCouplingFlow(GaugeCouplingSpec(layers=0, plaquette_map=True), beta)
    fields, log_q = flow.push(theta)
    log_w = -U1Action(beta)(fields) - log_q
    residual = log_w - beta * torch.cos(u1_plaquette_angle(fields)[:, -1, 0])
    assert float(residual.std()) < 1e-9 and float(log_w.std()) > 0.5
