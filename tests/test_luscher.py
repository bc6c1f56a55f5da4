"""Luscher's perturbative map solves its defining equation order by order: with the Laplacian and
gradients taken by autograd (independent of the loop formulas of the map; the SU(N) NLO takes the
Laplacian from the map's divergence, which test_gradflow_sun checks against autograd),
LO: :math:`\\Delta\\tilde S^{(0)} + S` is a constant, NLO (U(1) and SU(N)):
:math:`\\Delta\\tilde S^{(1)} - t\\,\\partial S\\cdot\\partial\\tilde S^{(0)}` is a constant, on every
configuration; a wrong coefficient leaves a residual that varies."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import generator
from hpcflow.models.gradflow import AffineCoefficients, HaarSUN, SUNGradientFlow, TraceProduct, loops_named, luscher_coefficients
from hpcflow.theories.gauge import U1Action, WilsonGaugeAction, u1_loop_angle, wilson_loop
from su_n_coordinates import generators, loop_value, moved

NLO = ["1x1", "1x2", "2x1", "1x1_twice", "fig8_0", "fig8_1"]


def _u1_loop_action(theta: torch.Tensor, loops, c: torch.Tensor) -> torch.Tensor:
    return sum(c[i] * torch.cos(u1_loop_angle(theta[None], list(lp.path))).sum() for i, lp in enumerate(loops))


def _laplacian_and_gradient(f, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().requires_grad_()
    (grad,) = torch.autograd.grad(f(x), x, create_graph=True)
    lap = sum(torch.autograd.grad(grad[i], x, retain_graph=True)[0][i] for i in range(len(x)))
    return lap.detach(), grad.detach()


def _gradient(f, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().requires_grad_()
    (grad,) = torch.autograd.grad(f(x), x)
    return grad


def _spread(values: list[float]) -> float:
    return max(values) - min(values)


def _u1_residuals(beta: float, a: torch.Tensor, b: torch.Tensor, t: float) -> tuple[list[float], list[float]]:
    loops = loops_named(NLO)
    shape = (4, 4)
    lo, nlo = [], []
    for seed in range(6):
        theta = ((torch.rand((2, *shape), generator=generator(seed), dtype=torch.float64) * 2 - 1) * math.pi).flatten()
        view = lambda x: x.view(2, *shape)  # noqa: E731
        lap0, grad0 = _laplacian_and_gradient(lambda x: _u1_loop_action(view(x), loops, a), theta)
        lap1, _ = _laplacian_and_gradient(lambda x: _u1_loop_action(view(x), loops, t * b), theta)
        _, grad_s = _laplacian_and_gradient(lambda x: U1Action(beta)(view(x)[None]).sum(), theta)
        lo.append(float(lap0 + U1Action(beta)(view(theta)[None])))
        nlo.append(float(lap1 - t * (grad_s * grad0).sum()))
    return lo, nlo


def test_u1_luscher_map_solves_the_flow_equation_at_lo_and_nlo() -> None:
    beta, t = 1.7, 0.6
    a, b = luscher_coefficients("u1", beta, loops_named(NLO), "nlo")
    lo, nlo = _u1_residuals(beta, a, b, t)
    assert _spread(lo) < 1e-10 and _spread(nlo) < 1e-10
    wrong_lo, wrong_nlo = _u1_residuals(beta, 1.1 * a, b * torch.tensor([1, 1, 1, 1, 1.1, 1.1]), t)
    assert _spread(wrong_lo) > 1e-2 and _spread(wrong_nlo) > 1e-2


@pytest.mark.parametrize("n", [2, 3])
def test_su_n_luscher_lo_solves_the_flow_equation(n) -> None:
    """:math:`\\tilde S^{(0)} = -\\frac{\\beta}{4NC_F}\\sum\\mathrm{Re\\,tr}\\,U_P`: :math:`\\Delta\\tilde S^{(0)} + S` constant."""
    beta, t = 2.5, generators(n)
    loops = loops_named(["1x1"])
    a, _ = luscher_coefficients(f"su{n}", beta, loops, "lo")

    def residuals(coefficient: float) -> list[float]:
        out = []
        for seed in range(4):
            u = HaarSUN(n).sample(1, (3, 3), generator(seed), torch.float64)
            zero = torch.zeros(u[..., 0, 0].numel() * (n * n - 1), dtype=torch.float64)
            tilde = lambda w: coefficient * wilson_loop(moved(u, w, t), [1, 2, -1, -2]).diagonal(dim1=-2, dim2=-1).sum(-1).real.sum()  # noqa: E731
            lap, _ = _laplacian_and_gradient(tilde, zero)
            out.append(float(lap + WilsonGaugeAction(beta)(u)))
        return out

    assert _spread(residuals(float(a[0]))) < 1e-10
    assert _spread(residuals(1.1 * float(a[0]))) > 1e-2


@pytest.mark.parametrize("n", [2, 3])
def test_su_n_luscher_nlo_solves_the_flow_equation(n) -> None:
    r""":math:`\Delta\tilde S^{(1)} - t\,\partial S\cdot\partial\tilde S^{(0)}` is a constant on every
    configuration, the gradients by autograd in exponential coordinates, the Laplacian as minus the
    map's divergence (itself the autograd trace of the velocity's Jacobian, test_gradflow_sun);
    10 % off on the products of traces (or on the figure-eights) leaves a residual that varies."""
    beta, time, t = 2.5, 0.7, generators(n)
    loops = loops_named("luscher_nlo")
    a, b = luscher_coefficients(f"su{n}", beta, loops, "nlo")
    products = torch.tensor([1.1 if isinstance(lp, TraceProduct) else 1.0 for lp in loops], dtype=torch.float64)
    eights = torch.tensor([1.1 if lp.name.startswith("fig8") else 1.0 for lp in loops], dtype=torch.float64)
    residuals: dict[str, list[float]] = {"exact": [], "products": [], "eights": []}
    for seed in range(2):
        u = HaarSUN(n).sample(1, (3, 3), generator(seed), torch.float64)
        zero = torch.zeros(u[..., 0, 0].numel() * (n * n - 1), dtype=torch.float64)
        action = lambda c: lambda w: sum(c[i] * loop_value(lp, moved(u, w, t)) for i, lp in enumerate(loops))  # noqa: E731
        flow_term = float((_gradient(lambda w: WilsonGaugeAction(beta)(moved(u, w, t)).sum(), zero)
                           * _gradient(action(a), zero)).sum())
        for key, scale in (("exact", 1.0), ("products", products), ("eights", eights)):
            coefficients = AffineCoefficients(len(loops))
            coefficients.set_affine(time * b * scale, torch.zeros_like(b))
            with torch.no_grad():
                lap1 = -SUNGradientFlow(n, loops, coefficients).velocity(u, 0.0)[1]
            residuals[key].append(float(lap1) - time * flow_term)
    assert _spread(residuals["exact"]) < 1e-9 * beta**2
    assert _spread(residuals["products"]) > 1e-3 and _spread(residuals["eights"]) > 1e-3


def test_luscher_needs_its_loops_and_a_group_it_knows() -> None:
    with pytest.raises(ValueError, match=r"needs the loops \['1x1_twice', 'fig8_0'"):
        luscher_coefficients("u1", 1.0, loops_named(["1x1", "1x2", "2x1"]), "nlo")
    with pytest.raises(ValueError, match=r"needs the loops \['1x1\*1x1_0', '1x1\*1x1_1'"):
        luscher_coefficients("su3", 1.0, loops_named(["1x1"]), "nlo")
    with pytest.raises(ValueError, match="group = 'su4'"):
        luscher_coefficients("su4", 1.0, loops_named(["1x1"]), "lo")
