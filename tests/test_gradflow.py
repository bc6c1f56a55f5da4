"""The U(1) gradient-flow map against exact results: its divergence is the trace of the
velocity's Jacobian, its integrated log-det converges to the map's autograd Jacobian at third
order (below 1e-8), it inverts, it commutes with gauge transformations, zero coefficients are
the identity; the loop families are what they say."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import generator
from hpcflow.models.gradflow import FAMILIES, LOOPS, AffineCoefficients, SplineCoefficients, U1GradientFlow, loops_named
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
    """The map's Jacobian (autograd through the integrator) against the integrated divergence on
    2x2: the gap is the integration error, 8x smaller per halved step, below 1e-8 at 320 steps."""
    theta = _angles((2, 2))
    gaps = []
    for steps in (160, 320):
        flow = _flow(steps, weights=0.25 * WEIGHTS)
        jac = torch.autograd.functional.jacobian(lambda x: flow(x.view(theta.shape))[0].flatten(), theta.flatten(),
                                                 vectorize=True)
        with torch.no_grad():
            logdet = float(flow(theta)[1])
        gaps.append(logdet - float(torch.linalg.slogdet(jac)[1]))
        assert abs(logdet) > 0.1
    assert abs(gaps[1]) < 1e-8 and 6 < gaps[0] / gaps[1] < 10


def test_the_inverse_returns_the_start() -> None:
    """The inverse undoes the discrete map (fixed-point sweeps per step), log-det included."""
    theta = _angles((4, 4), batch=3)
    flow = _flow(20)
    with torch.no_grad():
        out, logdet = flow(theta)
        back, logdet_back = flow.inverse(out)
    assert (out - theta).abs().max() > 0.1  # the map moved the field
    torch.testing.assert_close(back, theta, rtol=0, atol=1e-10)
    torch.testing.assert_close(logdet_back, logdet, rtol=1e-11, atol=1e-10)


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
        torch.testing.assert_close(flow.log_prob(theta), log_q, rtol=0, atol=1e-10)
    assert (log_q != flow.prior.log_prob(theta)).all()


def test_unknown_or_repeated_loops_are_refused() -> None:
    with pytest.raises(ValueError, match=r"loops \['4x4'\]: unknown; allowed: \['1x1'"):
        loops_named(["1x1", "4x4"])
    with pytest.raises(ValueError, match="each loop once"):
        loops_named(["1x1", "1x1"])
    with pytest.raises(ValueError, match=r"loops \['1x1@adj'\]: U\(1\) has no representations"):
        U1GradientFlow(loops_named(["1x1", "1x1@adj"]), AffineCoefficients(2), 1)
    assert [(lp.name, lp.rep, lp.path) for lp in loops_named(["1x2@sym"])] == [("1x2@sym", "sym", LOOPS["1x2"].path)]


def test_loop_families_are_the_polyomino_boundaries() -> None:
    """10 loops of at most 8 links, 38 of at most 10 (fixed polyominoes with 1-6 cells); each
    loop's angle is the sum of the plaquette angles of its cells, and it visits each link once."""
    assert len(FAMILIES["perimeter8"]) == 10 and len(FAMILIES["perimeter10"]) == 38
    theta = _angles((7, 7), batch=2, seed=3)
    plaquette = u1_loop_angle(theta, [1, 2, -1, -2])
    for name in FAMILIES["perimeter10"]:
        loop = LOOPS[name]
        if name.startswith("cells:"):
            cells = [(int(c[0]), int(c[1])) for c in name.removeprefix("cells:").split(".")]
        else:
            a, b = map(int, name.split("x"))
            cells = [(i, j) for i in range(a) for j in range(b)]
        total = sum(torch.roll(plaquette, (-i, -j), (1, 2)) for i, j in cells)
        corner = min(j for i, j in cells if i == 0)  # the path starts at the lowest corner of column 0
        torch.testing.assert_close(torch.roll(u1_loop_angle(theta, list(loop.path)), (0, -corner), (1, 2)), total)
        assert loop.max_visits((7, 7)) == 1 and loop.laplacian_factor((7, 7)) == loop.length


def test_figure_eights_and_the_double_plaquette() -> None:
    theta = _angles((5, 6), batch=2, seed=4)
    plaquette = u1_loop_angle(theta, [1, 2, -1, -2])
    for mu in (0, 1):
        torch.testing.assert_close(u1_loop_angle(theta, list(LOOPS[f"fig8_{mu}"].path)),
                                   plaquette - torch.roll(plaquette, -1, mu + 1))
        assert LOOPS[f"fig8_{mu}"].laplacian_factor((5, 6)) == 10
    torch.testing.assert_close(u1_loop_angle(theta, list(LOOPS["1x1_twice"].path)), 2 * plaquette)
    assert LOOPS["1x1_twice"].laplacian_factor((5, 6)) == 16 and LOOPS["1x1_twice"].max_visits((5, 6)) == 2


def test_spline_coefficients_interpolate_their_knots_and_reproduce_lines() -> None:
    spline = SplineCoefficients(2, knots=5)
    with torch.no_grad():
        spline.values.copy_(torch.tensor([[0.0, 1.0, -2.0, 0.5, 3.0], [1.0, 1.0, 1.0, 1.0, 1.0]], dtype=torch.float64))
    for k, t in enumerate(torch.linspace(0, 1, 5).tolist()):
        torch.testing.assert_close(spline(t), spline.values[:, k])
    a, b = torch.tensor([0.3, -1.0], dtype=torch.float64), torch.tensor([2.0, 0.5], dtype=torch.float64)
    spline.set_affine(a, b)
    for t in (0.0, 0.13, 0.5, 0.77, 1.0):
        torch.testing.assert_close(spline(t), a + b * t, rtol=0, atol=1e-14)
