"""Two-level multigrid: R P = 1, the coarse stencil equals R D P, gamma5 structure kept, the
exact two-level method converges in one iteration, the classical preconditioner cuts FGMRES
iterations and every solve reaches the same solution."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import generator
from hpcflow.dirac import WilsonDirac, fgmres
from hpcflow.lattice.rng import seeded_generator
from hpcflow.models.precond.multigrid import BlockProjector, CoarseOperator, TwoLevel, near_null_vectors
from hpcflow.theories.gauge import random_su_n, u1_links

CASES = {"u1-8x8-b4": ((8, 8), 1, (4, 4)), "u1-6x4-b3x2": ((6, 4), 1, (3, 2)), "su3-4d": ((4, 4, 2, 4), 3, (2, 2, 1, 2))}


def _op(shape: tuple[int, ...], colours: int, mass: float = -0.2) -> WilsonDirac:
    if colours == 1:
        theta = 0.6 * torch.randn(2, *shape, generator=generator(2), dtype=torch.float64)
        return WilsonDirac(u1_links(theta[None])[0], mass=mass, antiperiodic_time=True)
    return WilsonDirac(random_su_n((len(shape), *shape), 3, generator(2)), mass=mass, csw=1.0, antiperiodic_time=True)


def _setup(case: str, n: int = 3) -> tuple[WilsonDirac, BlockProjector, CoarseOperator]:
    shape, colours, blocks = CASES[case]
    op = _op(shape, colours)
    projector = BlockProjector(near_null_vectors(op, n, 6, seeded_generator(3)), blocks, op.gamma5)
    return op, projector, CoarseOperator(op, projector)


def _coarse_field(projector: BlockProjector, batch: int = 2) -> torch.Tensor:
    real = torch.randn(batch, *projector.coarse, projector.k, 2, generator=generator(5), dtype=torch.float64)
    return torch.view_as_complex(real)


@pytest.mark.parametrize("case", sorted(CASES))
def test_restriction_after_prolongation_is_the_identity_and_the_stencil_is_r_d_p(case: str) -> None:
    op, projector, coarse = _setup(case)
    spin, colours = op.gammas.shape[-1], op.links.shape[-1]
    c = _coarse_field(projector)
    torch.testing.assert_close(projector.restrict(projector.prolong(c, spin, colours)), c, rtol=0, atol=1e-12)
    triple = projector.restrict(op(projector.prolong(c, spin, colours)))
    torch.testing.assert_close(coarse(c), triple, rtol=0, atol=1e-12)
    assert coarse(c).abs().max() > 0.1


def test_the_chiral_split_keeps_gamma5_hermiticity_on_the_coarse_grid() -> None:
    """gamma5 D gamma5 = D^dagger and the basis split by chirality: the coarse operator is
    hermitian with the coarse gamma5 = diag(+1 on the first n, -1 on the last n)."""
    op, projector, coarse = _setup("u1-8x8-b4")
    k = projector.k
    g5 = torch.cat([torch.ones(k // 2), -torch.ones(k // 2)]).to(torch.complex128)
    a, b = _coarse_field(projector, 1), torch.roll(_coarse_field(projector, 1), 1, 1)
    lhs = (a.conj() * (g5 * coarse(b))).sum()
    rhs = ((g5 * coarse(a)).conj() * b).sum()
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)


def test_blocks_that_do_not_divide_the_lattice_are_refused() -> None:
    op = _op((8, 8), 1)
    with pytest.raises(ValueError, match=r"blocks \[3, 4\] do not divide the lattice \[8, 8\]"):
        BlockProjector(near_null_vectors(op, 2, 2, seeded_generator(1)), (3, 4), op.gamma5)


def _dense(op: WilsonDirac) -> torch.Tensor:
    shape = (*op.links.shape[1:-2], op.gammas.shape[-1], op.links.shape[-1])
    size = math.prod(shape)
    return op(torch.eye(size, dtype=torch.complex128).reshape(size, *shape)).reshape(size, size).T


def test_an_exact_smoother_and_coarse_solve_converge_in_one_iteration() -> None:
    op, projector, coarse = _setup("u1-6x4-b3x2")
    inverse = torch.linalg.inv(_dense(op))
    exact = lambda v: ((inverse @ v.reshape(-1)).reshape(v.shape), 1.0)  # noqa: E731
    size = projector.k * math.prod(projector.coarse)
    units = torch.eye(size, dtype=torch.complex128).reshape(size, *projector.coarse, projector.k)
    coarse_dense = torch.linalg.inv(coarse(units).reshape(size, size).T)
    coarse_exact = lambda c: ((coarse_dense @ c.reshape(-1)).reshape(c.shape), 1)  # noqa: E731
    two = TwoLevel(op, projector, coarse, exact, coarse_exact, fine_flops_per_site=1.0)
    b = torch.view_as_complex(torch.randn(1, 6, 4, 2, 1, 2, generator=generator(8), dtype=torch.float64))
    info = fgmres(op, b, 1e-10, 50, precond=two)
    assert info.converged and info.iterations == 1


def test_the_classical_two_level_preconditioner_cuts_the_iterations() -> None:
    """2D U(1) 8x8 near its critical mass: FGMRES(30) with the two-level preconditioner needs
    several times fewer iterations than without, reaches the same solution, and counts its work."""
    op = _op((8, 8), 1, mass=-0.35)
    projector = BlockProjector(near_null_vectors(op, 4, 10, seeded_generator(3)), (4, 4), op.gamma5)
    coarse = CoarseOperator(op, projector)
    from hpcflow.models.precond.multigrid import fgmres_smoother

    def coarse_solve(c: torch.Tensor) -> tuple[torch.Tensor, int]:
        info = fgmres(coarse, c, tol=0.05, maxiter=100)
        return info.x, info.work

    two = TwoLevel(op, projector, coarse, fgmres_smoother(op, 4), coarse_solve, fine_flops_per_site=1.0)
    b = torch.view_as_complex(torch.randn(1, 8, 8, 2, 1, 2, generator=generator(8), dtype=torch.float64))
    plain = fgmres(op, b, 1e-8, 2000)
    pre = fgmres(op, b, 1e-8, 2000, precond=two)
    assert plain.converged and pre.converged
    assert pre.iterations * 3 <= plain.iterations, (pre.iterations, plain.iterations)
    torch.testing.assert_close(pre.x, plain.x, rtol=0, atol=1e-6 * plain.x.abs().max().item())
    assert pre.work > pre.iterations  # the smoother and the coarse solves are counted


def test_fgmres_with_any_model_reaches_the_solution_of_a_dense_solve() -> None:
    """An untrained PTC model (1/(d + m) plus random weights) still leads FGMRES to the exact
    solution: the preconditioner changes the iterations, not the answer; its work is counted per call."""
    from hpcflow.models.precond import NeuralPreconditioner, PrecondSpec, build_model

    op = _op((6, 4), 1)
    torch.manual_seed(3)
    model = build_model(PrecondSpec("ptc", (1, 1), 1, 2, 2, 1))
    with torch.no_grad():
        model.layers[0].weight.mul_(0.2)
        model.layers[0].weight[0, 0, 0] += torch.eye(2, dtype=torch.complex128) / (2 + op.mass)
    m = NeuralPreconditioner(model, op.links, clover=False)
    b = torch.view_as_complex(torch.randn(1, 6, 4, 2, 1, 2, generator=generator(8), dtype=torch.float64))
    exact = torch.linalg.solve(_dense(op), b.reshape(-1)).reshape(b.shape)
    info = fgmres(op, b, 1e-10, 500, precond=m)
    assert info.converged
    torch.testing.assert_close(info.x, exact, rtol=0, atol=1e-8 * exact.abs().max().item())
    d_applications = info.work - info.iterations * m.work  # one preconditioner call per iteration
    assert d_applications == pytest.approx(round(d_applications)) and d_applications >= info.iterations
