"""Wilson(-clover) operators and Krylov solvers against exact results and dense solves."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import generator
from hpcflow.dirac import (
    GAMMA5_4D,
    GAMMA_2D,
    GAMMA_4D,
    WilsonDirac,
    bicgstab,
    cg_normal,
    clover_field_strength,
    fgmres,
    sigma_munu,
)
from hpcflow.lattice.geometry import lattice_momenta
from hpcflow.theories.gauge import dagger, gauge_transform, identity_links, random_gauge, random_su_n, u1_links



def _spinor(shape: tuple[int, ...], spin: int, colour: int, batch: int = 2, seed: int = 1,
            dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    real = torch.randn((batch, *shape, spin, colour, 2), generator=generator(seed), dtype=torch.float64)
    return torch.view_as_complex(real).to(dtype)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.conj() * b).sum()


def _su3_links(shape: tuple[int, ...], seed: int = 2, dtype: torch.dtype = torch.complex128) -> torch.Tensor:
    return random_su_n((len(shape), *shape), 3, generator(seed), dtype)


def _u1_links(shape: tuple[int, int], seed: int = 2) -> torch.Tensor:
    theta = torch.empty(2, *shape, dtype=torch.float64).uniform_(-math.pi, math.pi, generator=generator(seed))
    return u1_links(theta[None])[0]


@pytest.mark.parametrize("gammas", [GAMMA_4D, GAMMA_2D], ids=["4d", "2d"])
def test_gamma_algebra(gammas: torch.Tensor) -> None:
    d, n = gammas.shape[0], gammas.shape[1]
    eye = torch.eye(n, dtype=gammas.dtype)
    for mu in range(d):
        torch.testing.assert_close(gammas[mu], dagger(gammas[mu]))
        for nu in range(d):
            anti = gammas[mu] @ gammas[nu] + gammas[nu] @ gammas[mu]
            torch.testing.assert_close(anti, 2.0 * eye * (mu == nu))
        torch.testing.assert_close(sigma_munu(gammas, mu, (mu + 1) % d), dagger(sigma_munu(gammas, mu, (mu + 1) % d)))


def test_gamma5_is_the_degrand_rossi_chirality() -> None:
    torch.testing.assert_close(GAMMA5_4D, torch.diag(torch.tensor([1, 1, -1, -1], dtype=torch.complex128)))
    for mu in range(4):
        torch.testing.assert_close(GAMMA5_4D @ GAMMA_4D[mu], -GAMMA_4D[mu] @ GAMMA5_4D)


@pytest.mark.parametrize("csw", [0.0, 1.0])
@pytest.mark.parametrize("dtype, tol", [(torch.complex128, 1e-12), (torch.complex64, 1e-4)])
def test_gamma5_hermiticity_4d(csw: float, dtype: torch.dtype, tol: float) -> None:
    shape = (4, 2, 2, 4)
    op = WilsonDirac(_su3_links(shape, dtype=dtype), mass=-0.3, csw=csw)
    a, b = _spinor(shape, 4, 3, seed=3, dtype=dtype), _spinor(shape, 4, 3, seed=4, dtype=dtype)
    lhs, rhs = _dot(a, op(b)), _dot(op.dagger(a), b)
    assert abs(lhs - rhs) < tol * abs(lhs)


def test_gamma5_hermiticity_schwinger() -> None:
    op = WilsonDirac(_u1_links((6, 4)), mass=0.1)
    a, b = _spinor((6, 4), 2, 1, seed=3), _spinor((6, 4), 2, 1, seed=4)
    assert abs(_dot(a, op(b)) - _dot(op.dagger(a), b)) < 1e-12


@pytest.mark.parametrize("dim, antiperiodic", [(4, False), (4, True), (2, False)])
def test_free_field_momentum_space(dim: int, antiperiodic: bool) -> None:
    """U = 1: D(p) = m + sum_mu (1 - cos p_mu) + i sum_mu gamma_mu sin p_mu on plane waves
    (p_0 shifted by pi/L_0 with the antiperiodic time boundary)."""
    shape = (4, 2, 2, 6) if dim == 4 else (6, 4)
    spin = 4 if dim == 4 else 2
    gammas = GAMMA_4D if dim == 4 else GAMMA_2D
    mass = 0.25
    op = WilsonDirac(identity_links(1, shape, 1)[0], mass=mass, antiperiodic_time=antiperiodic)
    n = torch.tensor([1, 0, 1, 2][:dim], dtype=torch.float64)
    p = 2 * math.pi * n / torch.tensor(shape, dtype=torch.float64)
    if antiperiodic:
        p[0] += math.pi / shape[0]
    coords = torch.stack(torch.meshgrid(*(torch.arange(s, dtype=torch.float64) for s in shape), indexing="ij"), -1)
    wave = torch.exp(1j * (coords @ p))
    u = torch.randn(spin, dtype=torch.complex128, generator=generator())
    psi = (wave[..., None] * u)[None, ..., None]
    dp = (mass + (1 - torch.cos(p)).sum()) * torch.eye(spin, dtype=torch.complex128)
    dp = dp + 1j * sum(torch.sin(p[mu]) * gammas[mu] for mu in range(dim))
    torch.testing.assert_close(op(psi), (wave[..., None] * (dp @ u))[None, ..., None], rtol=0, atol=1e-12)
    assert lattice_momenta(shape)[0].shape == shape


def test_gauge_covariance_with_clover() -> None:
    shape = (4, 2, 2, 2)
    links = _su3_links(shape)
    omega = random_gauge(1, shape, 3, generator(7))
    links_g = gauge_transform(links[None], omega)[0]
    psi = _spinor(shape, 4, 3, seed=5)
    # (Omega psi)(x) = Omega(x) psi(x) acting on colour
    rotate = lambda v: v @ omega[0].transpose(-1, -2)  # noqa: E731
    for csw in (0.0, 1.0):
        lhs = WilsonDirac(links_g, mass=0.1, csw=csw)(rotate(psi))
        rhs = rotate(WilsonDirac(links, mass=0.1, csw=csw)(psi))
        torch.testing.assert_close(lhs, rhs, rtol=0, atol=1e-12)


def test_clover_term_vanishes_for_the_free_field_and_is_hermitian() -> None:
    shape = (2, 2, 2, 2)
    free = WilsonDirac(identity_links(1, shape, 3)[0], mass=0.1, csw=1.0)
    assert free.clover.abs().max() < 1e-15
    op = WilsonDirac(_su3_links(shape), mass=0.1, csw=1.0)
    torch.testing.assert_close(op.clover, dagger(op.clover))
    assert op.clover.abs().max() > 0.1
    f = clover_field_strength(_su3_links(shape), 0, 1)
    torch.testing.assert_close(f, -dagger(f))  # anti-hermitian field strength


def test_kappa() -> None:
    assert WilsonDirac(identity_links(1, (2, 2, 2, 2), 3)[0], mass=-0.5).kappa == pytest.approx(1 / 7)


def _dense(op: WilsonDirac, shape: tuple[int, ...]) -> torch.Tensor:
    size = math.prod(shape)
    eye = torch.eye(size, dtype=torch.complex128).reshape(size, *shape)
    return op(eye).reshape(size, size).T


@pytest.mark.parametrize("case", ["schwinger", "clover4d"])
def test_solvers_agree_with_a_dense_solve(case: str) -> None:
    if case == "schwinger":
        shape, op = (4, 4, 2, 1), WilsonDirac(_u1_links((4, 4)), mass=0.05)
    else:
        shape, op = (2, 2, 2, 4, 4, 3), WilsonDirac(_su3_links((2, 2, 2, 4)), mass=0.1, csw=1.0)
    dense = _dense(op, shape)
    b = _spinor(shape[:-2], shape[-2], shape[-1], batch=1, seed=9)
    exact = torch.linalg.solve(dense, b.reshape(-1)).reshape(b.shape)
    tol = 1e-10
    results = {
        "cg": cg_normal(op, op.dagger, b, tol, 2000),
        "bicgstab": bicgstab(op, b, tol, 2000),
        "fgmres": fgmres(op, b, tol, 2000, restart=30),
    }
    for name, info in results.items():
        assert info.converged, name
        residual = ((b - op(info.x)).norm() / b.norm()).item()
        assert residual < tol and info.final_residual == pytest.approx(residual, rel=1e-6), name
        torch.testing.assert_close(info.x, exact, rtol=0, atol=1e-7 * exact.abs().max().item())
        assert info.work >= info.iterations > 0
    # an exact preconditioner: FGMRES converges in one iteration, its work counted
    inverse = torch.linalg.inv(dense)

    class Exact:
        work = 5

        def __call__(self, v: torch.Tensor) -> torch.Tensor:
            return (inverse @ v.reshape(-1)).reshape(v.shape)

    info = fgmres(op, b, tol, 100, restart=30, precond=Exact())
    assert info.converged and info.iterations == 1 and info.work == 2 + 5


def test_unconverged_solves_say_so() -> None:
    op = WilsonDirac(_su3_links((2, 2, 2, 4)), mass=0.0, csw=1.0)
    b = _spinor((2, 2, 2, 4), 4, 3, batch=1)
    for info in (cg_normal(op, op.dagger, b, 1e-12, 3), bicgstab(op, b, 1e-12, 3), fgmres(op, b, 1e-12, 3, restart=2)):
        assert not info.converged and info.final_residual > 1e-12
