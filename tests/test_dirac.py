"""Wilson(-clover) operators and Krylov solvers against exact results and dense solves."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import DIRAC_BACKENDS, generator
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
from hpcflow.theories.gauge import (
    dagger,
    gauge_transform,
    identity_links,
    random_gauge,
    random_su_n,
    u1_links,
    u1_plaquette_angle,
)



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


@pytest.mark.parametrize("backend", DIRAC_BACKENDS)
@pytest.mark.parametrize("csw", [0.0, 1.0])
@pytest.mark.parametrize("dtype, tol", [(torch.complex128, 1e-12), (torch.complex64, 1e-4)])
def test_gamma5_hermiticity_4d(csw: float, dtype: torch.dtype, tol: float, backend: str) -> None:
    shape = (4, 2, 2, 4)
    op = WilsonDirac(_su3_links(shape, dtype=dtype), mass=-0.3, csw=csw, backend=backend)
    a, b = _spinor(shape, 4, 3, seed=3, dtype=dtype), _spinor(shape, 4, 3, seed=4, dtype=dtype)
    lhs, rhs = _dot(a, op(b)), _dot(op.dagger(a), b)
    assert abs(lhs - rhs) < tol * abs(lhs)


@pytest.mark.parametrize("backend", DIRAC_BACKENDS)
def test_gamma5_hermiticity_schwinger(backend: str) -> None:
    op = WilsonDirac(_u1_links((6, 4)), mass=0.1, backend=backend)
    a, b = _spinor((6, 4), 2, 1, seed=3), _spinor((6, 4), 2, 1, seed=4)
    assert abs(_dot(a, op(b)) - _dot(op.dagger(a), b)) < 1e-12


@pytest.mark.parametrize("backend", DIRAC_BACKENDS)
@pytest.mark.parametrize("dim, antiperiodic", [(4, False), (4, True), (2, False)])
def test_free_field_momentum_space(dim: int, antiperiodic: bool, backend: str) -> None:
    """U = 1: D(p) = m + sum_mu (1 - cos p_mu) + i sum_mu gamma_mu sin p_mu on plane waves
    (p_0 shifted by pi/L_0 with the antiperiodic time boundary)."""
    shape = (4, 2, 2, 6) if dim == 4 else (6, 4)
    spin = 4 if dim == 4 else 2
    gammas = GAMMA_4D if dim == 4 else GAMMA_2D
    mass = 0.25
    op = WilsonDirac(identity_links(1, shape, 1)[0], mass=mass, antiperiodic_time=antiperiodic, backend=backend)
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


def _constant_abelian_angles(shape: tuple[int, int], flux: int) -> tuple[torch.Tensor, float]:
    """U(1) angles ``(2, L0, L1)`` whose every plaquette is ``theta = 2 pi flux / (L0 L1)`` (mod 2 pi):
    theta_1(x) = theta x_0, and on the last time slice theta_0 = -theta L0 x_1 closes the torus."""
    l0, l1 = shape
    theta = 2 * math.pi * flux / (l0 * l1)
    x0, x1 = torch.meshgrid(torch.arange(l0, dtype=torch.float64), torch.arange(l1, dtype=torch.float64), indexing="ij")
    angles = torch.stack([torch.where(x0 == l0 - 1, -theta * l0 * x1, 0.0), theta * x0])
    return angles, theta


@pytest.mark.parametrize("flux", [1, 5])
def test_clover_term_of_a_constant_abelian_field_2d(flux: int) -> None:
    """Every plaquette e^{i theta}: F_01 = i sin(theta), sigma_01 = -sigma_z, so the clover term is
    c_sw (i/4) 2 sigma_01 F_01 = (c_sw/2) sin(theta) sigma_z at every site."""
    angles, theta = _constant_abelian_angles((4, 6), flux)
    assert torch.allclose(torch.cos(u1_plaquette_angle(angles[None])), torch.full((1, 4, 6), math.cos(theta), dtype=torch.float64))
    csw = 1.7
    links = u1_links(angles[None])[0]
    expected = 0.5 * csw * math.sin(theta) * torch.tensor([[1, 0], [0, -1]], dtype=torch.complex128)
    op = WilsonDirac(links, mass=0.1, csw=csw)
    torch.testing.assert_close(op.clover, expected.expand(4, 6, 2, 2), rtol=0, atol=1e-14)
    psi = _spinor((4, 6), 2, 1, seed=3)
    term = op(psi) - WilsonDirac(links, mass=0.1)(psi)
    torch.testing.assert_close(term, (expected @ psi), rtol=0, atol=1e-13)


def test_clover_term_of_a_constant_abelian_field_4d() -> None:
    """The 2D field of the test above embedded as diag(e^{i a}, e^{-i a}, 1) in the (0, 1) plane of
    SU(3) (U_2 = U_3 = 1): the clover term is -(c_sw/2) sigma_01 (x) diag(sin theta, -sin theta, 0)."""
    shape = (4, 6, 3, 3)
    angles, theta = _constant_abelian_angles(shape[:2], 1)
    links = identity_links(1, shape, 3)[0]
    for mu in (0, 1):
        a = angles[mu][:, :, None, None].expand(shape)
        links[mu] = torch.diag_embed(torch.stack([torch.exp(1j * a), torch.exp(-1j * a), torch.ones_like(a, dtype=links.dtype)], -1))
    csw = 1.3
    colour = torch.diag(torch.tensor([math.sin(theta), -math.sin(theta), 0.0], dtype=torch.complex128))
    expected = -0.5 * csw * torch.kron(sigma_munu(GAMMA_4D, 0, 1), colour)
    op = WilsonDirac(links, mass=-0.2, csw=csw)
    torch.testing.assert_close(op.clover, expected.expand(*shape, 12, 12), rtol=0, atol=1e-14)
    psi = _spinor(shape, 4, 3, batch=1, seed=4)
    term = op(psi) - WilsonDirac(links, mass=-0.2)(psi)
    torch.testing.assert_close(term, (expected @ psi.flatten(-2)[..., None])[..., 0].view_as(psi), rtol=0, atol=1e-13)


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
        assert not info.converged and info.final_residual > 1e-12 and info.reason == "maxiter"


def test_bicgstab_breakdown_is_reported_not_raised() -> None:
    """A = [[0, 1], [-1, 0]], b real: (r^, A r^) = b^T A b = 0, so BiCGStab's first alpha is 0/0;
    the solve ends unconverged with the reason, and FGMRES solves the same system in two steps."""
    a = torch.tensor([[0.0, 1.0], [-1.0, 0.0]], dtype=torch.complex128)
    b = torch.tensor([1.0, 2.0], dtype=torch.complex128)
    apply = lambda v: a @ v  # noqa: E731
    info = bicgstab(apply, b, 1e-10, 50)
    assert not info.converged and info.reason.startswith("breakdown: (r^, D p)")
    assert math.isfinite(info.final_residual)
    good = fgmres(apply, b, 1e-10, 50)
    assert good.converged and good.iterations == 2 and good.reason == "converged"
    torch.testing.assert_close(good.x, torch.linalg.solve(a, b), rtol=0, atol=1e-12)


def test_a_zero_right_hand_side_is_solved_by_zero() -> None:
    op = WilsonDirac(_u1_links((4, 4)), mass=0.1)
    b = torch.zeros(1, 4, 4, 2, 1, dtype=torch.complex128)
    for info in (cg_normal(op, op.dagger, b, 1e-10, 10), bicgstab(op, b, 1e-10, 10), fgmres(op, b, 1e-10, 10)):
        assert info.converged and info.iterations == 0 and info.x.abs().max() == 0
