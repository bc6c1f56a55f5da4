"""The SU(N) gradient-flow map against exact results, in exponential coordinates
:math:`U(\\omega) = e^{\\omega^a T^a}U` (:math:`\\mathrm{tr}\\,T^aT^b = -\\delta^{ab}/2`): its velocity is
minus the Lie derivative of the loop action, its divergence the trace of the velocity's
Jacobian, its log-det the log-determinant of the map's autograd Jacobian (to the integration
error, falling at third order), it inverts, commutes with gauge transformations and is the
identity at zero coefficients."""

from __future__ import annotations

import pytest
import torch

from conftest import generator
from hpcflow.models.gradflow import AffineCoefficients, HaarSUN, SUNGradientFlow, loops_named
from hpcflow.models.gradflow.sun import casimir, character
from hpcflow.theories.gauge import dagger, gauge_transform, random_gauge
from su_n_coordinates import coords, generators, loop_value, moved


def _flow(n: int, names: list[str], steps: int, scale: float = 1.0) -> SUNGradientFlow:
    coefficients = AffineCoefficients(len(names))
    with torch.no_grad():
        coefficients.weight.copy_(scale * torch.linspace(-0.6, 0.5, 2 * len(names), dtype=torch.float64).reshape(-1, 2))
    return SUNGradientFlow(n, loops_named(names), coefficients, steps)


def _links(n: int, shape: tuple[int, int], batch: int = 1, seed: int = 0) -> torch.Tensor:
    return HaarSUN(n).sample(batch, shape, generator(seed), torch.float64)


NAMES = ["1x1", "1x2", "2x1", "cells:00.01.10"]
TWICE = ["1x1_twice", "fig8_0", "fig8_1"]
"""Loops that run over links twice the same way (every link of the plaquette; the shared link)."""
REPS = ["1x1@sym", "1x1@anti", "1x1@adj", "2x1@adj", "cells:00.01.10@sym"]
"""Loops whose trace is taken in the two-index and adjoint representations."""
PRODUCTS = ["1x1*1x1_0", "1x1*1x1_1", "1x1*1x1bar_0", "1x1*1x1bar_1"]
"""Products of the traces of neighbouring plaquettes (their shared link: the Fierz cross term)."""
CASES = [(2, NAMES, (3, 4)), (3, NAMES, (3, 4)), (2, TWICE, (3, 4)), (3, TWICE, (3, 4)), (3, ["1x2", "3x1"], (2, 2)),
         (2, REPS, (3, 4)), (3, REPS, (3, 4)), (2, PRODUCTS, (3, 4)), (3, PRODUCTS + ["1x1"], (3, 4)),
         (3, PRODUCTS, (2, 3))]
"""(N, loops, lattice); on the 2x2 lattice the 1x2 rectangle comes back over its first link the
other way and the 3x1 rectangle runs over a link twice forward (a wrapped loop); on 2x3 the
plaquettes neighbouring along axis 0 share two links."""


@pytest.mark.parametrize("n, names, shape", CASES)
def test_velocity_is_minus_the_lie_derivative_of_the_loop_action(n, names, shape) -> None:
    flow, t = _flow(n, names, 1), generators(n)
    u = _links(n, shape)
    c = flow.coefficients(0.4)

    def loop_action(omega: torch.Tensor) -> torch.Tensor:
        v = moved(u, omega, t)
        return sum(c[i] * loop_value(lp, v) for i, lp in enumerate(flow.loops))

    omega = torch.zeros(u[..., 0, 0].numel() * (n * n - 1), dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(loop_action(omega), omega)
    torch.testing.assert_close(coords(flow.velocity(u, 0.4)[0], t), -grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n, names, shape", CASES)
def test_divergence_is_the_trace_of_the_velocity_jacobian(n, names, shape) -> None:
    r"""Exact for loops that visit each link once (Casimir) and for those that run over a link
    twice (the Fierz cross term: without it the doubly wound plaquette misses
    :math:`4(\mathrm{tr}\,P)^2 - \frac4N\mathrm{tr}\,P^2` per site)."""
    flow, t = _flow(n, names, 1), generators(n)
    u = _links(n, shape, seed=1)
    size = u[..., 0, 0].numel() * (n * n - 1)
    jac = torch.autograd.functional.jacobian(lambda w: coords(flow.velocity(moved(u, w, t), 0.4)[0], t),
                                             torch.zeros(size, dtype=torch.float64))
    torch.testing.assert_close(flow.velocity(u, 0.4)[1], jac.diagonal().sum()[None], rtol=1e-11, atol=1e-11)


def _map_jacobian_logdet(flow: SUNGradientFlow, u: torch.Tensor, t: torch.Tensor) -> float:
    out = flow(u)[0].detach()
    size = u[..., 0, 0].numel() * t.shape[0]
    jac = torch.autograd.functional.jacobian(lambda w: coords(flow(moved(u, w, t))[0] @ dagger(out), t),
                                             torch.zeros(size, dtype=torch.float64), vectorize=True)
    return float(torch.linalg.slogdet(jac)[1])


def test_log_det_is_the_autograd_jacobian_of_the_map_on_2x2_su2() -> None:
    """The gap between the integrated divergence and the map's Jacobian is the integration
    error: 8x smaller per halved step, below 1e-8 at 160 steps (measured 3.7e-8 at 80, 4.6e-9 at 160)."""
    t = generators(2)
    u = _links(2, (2, 2), seed=2)
    gaps = []
    for steps in (80, 160):
        flow = _flow(2, ["1x1"], steps, scale=0.5)
        with torch.no_grad():
            logdet = float(flow(u)[1])
        gaps.append(logdet - _map_jacobian_logdet(flow, u, t))
        assert abs(logdet) > 0.1  # the map is far from volume preserving
    assert abs(gaps[1]) < 1e-8 and 6 < gaps[0] / gaps[1] < 10


def test_log_det_with_loops_that_run_twice_and_other_representations_is_the_jacobian() -> None:
    """The same with the doubly wound plaquette and the adjoint plaquette on 2x2 SU(2): the gap
    falls 8x per halved step (measured -6.1e-5 at 20 steps, -7.1e-6 at 40, -8.6e-7 at 80); a wrong cross term
    or Casimir would leave a gap of order one."""
    t = generators(2)
    u = _links(2, (2, 2), seed=2)
    gaps = []
    for steps in (20, 40):
        flow = _flow(2, ["1x1", "1x1_twice", "1x1@adj"], steps, scale=0.5)
        with torch.no_grad():
            logdet = float(flow(u)[1])
        gaps.append(logdet - _map_jacobian_logdet(flow, u, t))
        assert abs(logdet) > 0.1
    assert abs(gaps[1]) < 2e-5 and 6 < gaps[0] / gaps[1] < 10


def test_log_q_error_is_the_third_order_integration_error() -> None:
    """``log_q_error`` (log q at ``steps`` minus at ``2 steps``) falls 8x per doubling of the steps
    (measured 7.7, 9.0, 8.0 from 8 to 16 steps on three configurations)."""
    u = _links(2, (3, 4), batch=3, seed=4)
    coarse, fine = (_flow(2, NAMES + TWICE, steps, scale=0.3).log_q_error(u).abs() for steps in (8, 16))
    ratio = coarse / fine
    assert bool((fine > 1e-5).all()) and bool(((6 < ratio) & (ratio < 11)).all()), ratio


def test_the_map_converges_at_third_order_and_inverts() -> None:
    u = _links(3, (4, 4), batch=2, seed=3)
    ref = _flow(3, NAMES, 80)
    with torch.no_grad():
        exact, exact_logdet = ref(u)
        errors = []
        for steps in (10, 20):
            out, logdet = _flow(3, NAMES, steps)(u)
            errors.append(float((out - exact).abs().max() + (logdet - exact_logdet).abs().max()))
        flow = _flow(3, NAMES, 10)
        out, logdet = flow(u)
        back, logdet_back = flow.inverse(out)
    assert (exact - u).abs().max() > 0.1
    assert 6 < errors[0] / errors[1] < 10
    torch.testing.assert_close(back, u, rtol=0, atol=1e-10)
    torch.testing.assert_close(logdet_back, logdet, rtol=1e-11, atol=1e-10)


def test_the_map_stays_in_su_n() -> None:
    with torch.no_grad():
        out, _ = _flow(3, NAMES, 10)(_links(3, (4, 4), seed=4))
    eye = torch.eye(3, dtype=torch.complex128)
    torch.testing.assert_close(out @ dagger(out), eye.expand_as(out), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(out), torch.ones(out.shape[:-2], dtype=torch.complex128), rtol=0, atol=1e-12)


def test_the_map_commutes_with_gauge_transformations() -> None:
    flow = _flow(2, NAMES, 8)
    u = _links(2, (4, 3), batch=2, seed=5)
    omega = random_gauge(2, (4, 3), 2, generator(6))
    with torch.no_grad():
        a, la = flow(gauge_transform(u, omega))
        b, lb = flow(u)
    torch.testing.assert_close(a, gauge_transform(b, omega), rtol=0, atol=1e-12)
    torch.testing.assert_close(la, lb, rtol=0, atol=1e-12)


def test_zero_coefficients_are_the_identity() -> None:
    flow = SUNGradientFlow(3, loops_named(NAMES), AffineCoefficients(len(NAMES)), 4)
    u = _links(3, (4, 4))
    out, logdet = flow(u)
    torch.testing.assert_close(out, u, rtol=0, atol=1e-15)
    assert torch.equal(logdet, torch.zeros(1, dtype=torch.float64))


@pytest.mark.parametrize("n", [2, 3])
def test_the_characters_are_orthonormal_under_haar(n) -> None:
    r""":math:`\langle\chi_r\bar\chi_s\rangle = \delta_{rs}` over the Haar measure for the irreducible
    representations fund, sym, adj (and anti for SU(3), the conjugate of fund); for SU(2) sym is the
    adjoint (spin 1) and anti trivial (:math:`\chi_A = 1`). 4 sigma of 20000 draws."""
    u = HaarSUN(n).sample(10000, (2, 1), generator(8), torch.float64)[:, 0].flatten(0, 2)
    chi = {rep: character(rep, u) for rep in ("fund", "sym", "anti", "adj")}
    if n == 2:
        torch.testing.assert_close(chi["anti"], torch.ones_like(chi["anti"]))
        torch.testing.assert_close(chi["sym"], chi["adj"])
        reps = ["fund", "adj"]
    else:
        torch.testing.assert_close(chi["anti"], chi["fund"].conj())
        reps = ["fund", "sym", "adj"]
    for r in reps:
        assert abs(complex(chi[r].mean())) < 4 * chi[r].abs().std() / len(u) ** 0.5
        for s in reps:
            moment = chi[r] * chi[s].conj()
            exact = 1.0 if r == s else 0.0
            assert abs(complex(moment.mean()) - exact) < 4 * moment.abs().std() / len(u) ** 0.5, (r, s)
    assert (casimir("sym", 2), casimir("anti", 2), casimir("adj", 2)) == (2.0, 0.0, 2.0)
    assert (casimir("sym", 3), casimir("anti", 3), casimir("adj", 3)) == (10 / 3, 4 / 3, 3.0)


def test_a_loop_in_another_representation_must_visit_each_link_once() -> None:
    flow = _flow(3, ["1x1", "1x2@adj"], 1)
    with pytest.raises(ValueError, match="loop '1x2@adj' runs over a link twice on a 2x2 lattice"):
        flow.velocity(_links(3, (2, 2)), 0.0)


def test_a_loop_that_runs_over_a_link_more_than_twice_is_refused() -> None:
    """On a 2x2 lattice the 2x3 rectangle runs over links four times."""
    flow = _flow(2, ["1x1", "2x3"], 1)
    with pytest.raises(ValueError, match="loop '2x3' runs over a link more than twice on a 2x2 lattice"):
        flow.velocity(_links(2, (2, 2)), 0.0)


@pytest.mark.parametrize("n", [2, 3])
def test_haar_moments(n) -> None:
    """Haar measure on SU(N): <tr U> = 0 and <|tr U|^2> = 1; 4 sigma of 20000 draws."""
    u = HaarSUN(n).sample(5000, (2, 1), generator(7), torch.float64)
    tr = u.diagonal(dim1=-2, dim2=-1).sum(-1).flatten()
    assert tr.real.mean().abs() < 4 * tr.real.std() / len(tr) ** 0.5
    second = tr.abs() ** 2
    assert (second.mean() - 1).abs() < 4 * second.std() / len(tr) ** 0.5
