"""The U(1) gradient-flow map against exact results: its divergence is the trace of the
velocity's Jacobian, its integrated log-det converges to the map's autograd Jacobian at third
order, it inverts, it commutes with gauge transformations, zero coefficients are the identity."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import generator
from hpcflow.models.gradflow import LOOPS, AffineCoefficients, U1GradientFlow, loops_named
from hpcflow.theories.gauge import u1_loop_angle

NAMES = ["1x1", "1x2", "2x1"]
WEIGHTS = torch.tensor([[0.4, -0.3], [0.2, 0.25], [-0.15, 0.1]], dtype=torch.float64)


def _flow(steps: int, names: list[str] = NAMES, weights: torch.Tensor = WEIGHTS) -> U1GradientFlow:
    coefficients = AffineCoefficients(len(names))
    with torch.no_grad():
        coefficients.weight.copy_(weights)
    return U1GradientFlow(loops_named(names), coefficients, steps)


def _angles(shape: tuple[int, int], batch: int = 1, seed: int = 0) -> torch.Tensor:
    return (torch.rand((batch, 2, *shape), generator=generator(seed), dtype=torch.float64) * 2 - 1) * math.pi


def test_laplacian_factor_counts_the_links_a_loop_runs_over() -> None:
    """On 2x2 the 1x2 rectangle runs over its long edges forward and back: they cancel."""
    assert LOOPS["1x1"].laplacian_factor((2, 2)) == 4 and LOOPS["1x2"].laplacian_factor((8, 8)) == 6
    assert LOOPS["1x2"].laplacian_factor((2, 2)) == 4 and LOOPS["2x2"].laplacian_factor((2, 2)) == 0


@pytest.mark.parametrize("shape, names", [((2, 2), NAMES), ((4, 3), ["1x1", "1x2", "2x1", "2x2", "1x3", "3x2"])])
def test_divergence_is_the_trace_of_the_velocity_jacobian(shape, names) -> None:
    weights = torch.linspace(-0.5, 0.6, 2 * len(names), dtype=torch.float64).reshape(-1, 2)
    flow = _flow(1, names, weights)
    theta = _angles(shape)
    jac = torch.autograd.functional.jacobian(lambda x: flow.velocity(x.view(theta.shape), 0.3)[0].flatten(), theta.flatten())
    div = flow.velocity(theta, 0.3)[1]
    torch.testing.assert_close(div, jac.diagonal().sum()[None], rtol=1e-11, atol=1e-11)


def test_velocity_is_minus_the_gradient_of_the_loop_action() -> None:
    flow = _flow(1)
    theta = _angles((4, 4)).requires_grad_()
    c = flow.coefficients(0.7)
    action = sum(c[i] * torch.cos(u1_loop_angle(theta, list(loop.path))).sum() for i, loop in enumerate(flow.loops))
    (grad,) = torch.autograd.grad(action, theta)
    torch.testing.assert_close(flow.velocity(theta.detach(), 0.7)[0], -grad, rtol=1e-12, atol=1e-12)


def test_log_det_converges_to_the_autograd_jacobian_at_third_order() -> None:
    """The map's Jacobian (autograd through the integrator) against the integrated divergence:
    the gap is the integration error, 8x smaller per halved step (measured: 3.1e-8 at 800 steps)."""
    theta = _angles((2, 2))
    gaps = []
    for steps in (25, 50):
        flow = _flow(steps)
        jac = torch.autograd.functional.jacobian(lambda x: flow(x.view(theta.shape))[0].flatten(), theta.flatten())
        with torch.no_grad():
            gaps.append(float(flow(theta)[1] - torch.linalg.slogdet(jac)[1]))
    assert abs(gaps[1]) < 2e-4 and 6 < gaps[0] / gaps[1] < 10


def test_the_inverse_returns_the_start_at_third_order() -> None:
    theta = _angles((4, 4), batch=3)
    errors, logdet_errors = [], []
    for steps in (20, 40):
        flow = _flow(steps)
        with torch.no_grad():
            out, logdet = flow(theta)
            back, logdet_back = flow.inverse(out)
        assert (out - theta).abs().max() > 0.1  # the map moved the field
        errors.append(float((back - theta).abs().max()))
        logdet_errors.append(float((logdet_back - logdet).abs().max()))
    assert errors[1] < 1e-4 and errors[0] / errors[1] > 6  # measured 6.0e-5 at 40 steps
    assert logdet_errors[1] < 1e-3 and logdet_errors[0] / logdet_errors[1] > 6


def test_the_map_commutes_with_gauge_transformations() -> None:
    """theta_mu(x) -> theta_mu(x) + alpha(x) - alpha(x + mu): f(theta^alpha) = f(theta)^alpha."""
    flow = _flow(10, ["1x1", "1x2", "2x1", "2x2"], torch.full((4, 2), 0.2, dtype=torch.float64))
    theta = _angles((4, 6), batch=2)
    alpha = torch.randn((2, 4, 6), generator=generator(5), dtype=torch.float64)

    def gauge(t: torch.Tensor) -> torch.Tensor:
        return torch.stack([t[:, mu] + alpha - torch.roll(alpha, -1, mu + 1) for mu in range(2)], 1)

    with torch.no_grad():
        a, la = flow(gauge(theta))
        b, lb = flow(theta)
    torch.testing.assert_close(a, gauge(b), rtol=0, atol=1e-12)
    torch.testing.assert_close(la, lb, rtol=0, atol=1e-12)


def test_zero_coefficients_are_the_identity() -> None:
    flow = U1GradientFlow(loops_named(NAMES), AffineCoefficients(3), 5)
    theta = _angles((4, 4), batch=2)
    out, logdet = flow(theta)
    assert torch.equal(out, theta) and torch.equal(logdet, torch.zeros(2, dtype=torch.float64))
    assert sum(p.numel() for p in flow.parameters()) == 6  # model A: two per loop


def test_log_prob_of_a_sample_is_its_sampling_density() -> None:
    flow = _flow(40)
    with torch.no_grad():
        theta, log_q = flow.sample(3, (4, 4), generator(2))
        torch.testing.assert_close(flow.log_prob(theta), log_q, rtol=0, atol=1e-3)
    assert (log_q != flow.log_base(theta)).all()


def test_unknown_or_repeated_loops_are_refused() -> None:
    with pytest.raises(ValueError, match=r"loops \['4x4'\]: unknown; allowed: \['1x1'"):
        loops_named(["1x1", "4x4"])
    with pytest.raises(ValueError, match="each loop once"):
        loops_named(["1x1", "1x1"])
