"""The gauge-equivariant coupling flow of 2D U(1) against exact results: the circular spline is a
C^1 bijection of the circle with the right log-derivative, the flow's log-det is the log of its
autograd Jacobian's determinant, it inverts, it commutes with gauge transformations, a layer
moves only its active links and maps each active plaquette by its spline, and a fresh flow is
the identity."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import generator
from hpcflow.models.gauge_coupling import GaugeCouplingFlow, GaugeCouplingSpec, PlaquetteCoupling, circular_spline, wrap_angle
from hpcflow.theories.gauge import u1_plaquette_angle

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


def _flow(spec: GaugeCouplingSpec = SPEC) -> GaugeCouplingFlow:
    return _randomize(GaugeCouplingFlow(spec).double())


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
    _, logdet = flow(theta)
    assert float(sign) == 1.0 and abs(float(logabsdet)) > 1.0
    assert abs(float(logabsdet - logdet[0])) < 1e-8


def test_the_inverse_returns_the_start_and_log_prob_is_the_sampling_density() -> None:
    flow = _flow(GaugeCouplingSpec(layers=16, hidden=(4, 4), bins=6))
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
