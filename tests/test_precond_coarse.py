"""The lo-mode model and the neural two-level preconditioner: the coarse operator is one
coarse-grid layer exactly, the coarse operator is gauge invariant (and P covariant) when the
near-null vectors are transformed, the neural two-level model is gauge equivariant, and its work
counts both models."""

from __future__ import annotations

import pytest
import torch

from conftest import generator
from hpcflow.lattice.rng import seeded_generator
from hpcflow.models.precond import NeuralPreconditioner, PrecondSpec, Sequence, build_model
from hpcflow.models.precond import coarse as coarse_module
from hpcflow.models.precond.coarse import (CoarseFieldOperator, coarse_layer_of, coarse_preconditioner, coarse_solver,
                                          coarse_spec, neural_two_level)
from hpcflow.models.precond.multigrid import BlockProjector, CoarseOperator, near_null_vectors
from hpcflow.theories.gauge import gauge_transform
from test_multigrid import CASES, _coarse_field, _op
from test_precond_layers import _gauge


# coarse lattices of extent 3 (on extent 2, a shift forward is the shift backward)
COARSE_CASES = {**CASES, "u1-12x12-b4": ((12, 12), 1, (4, 4)), "su3-4d-b1": ((3, 3, 3, 3), 3, (1, 1, 1, 1))}


def _rotate(omega: torch.Tensor):
    return lambda v: v @ omega[0].transpose(-1, -2)  # Omega(x) on the colour index


def _transformed(case: str):
    """(op, vectors) and (op^Omega, Omega vectors), with Omega a random gauge transformation."""
    shape, colours, blocks = COARSE_CASES[case]
    op = _op(shape, colours)
    vectors = near_null_vectors(op, 3, 6, seeded_generator(3))
    omega = _gauge(shape, colours)
    op_g = type(op)(gauge_transform(op.links[None], omega)[0], mass=op.mass, csw=op.csw, antiperiodic_time=False)
    return op, vectors, op_g, _rotate(omega)(vectors), blocks, _rotate(omega)


@pytest.mark.parametrize("case", ["u1-12x12-b4", "su3-4d-b1"])
def test_the_coarse_operator_is_one_coarse_grid_layer(case: str) -> None:
    shape, colours, blocks = COARSE_CASES[case]
    op = _op(shape, colours)
    projector = BlockProjector(near_null_vectors(op, 3, 6, seeded_generator(3)), blocks, op.gamma5)
    coarse = CoarseOperator(op, projector)
    layer = coarse_preconditioner(Sequence([coarse_layer_of(coarse)]), projector)
    c = _coarse_field(projector)
    torch.testing.assert_close(layer(c[..., None])[..., 0], coarse(c), rtol=0, atol=1e-12)
    # its cost in the layers' counting: the stencil's flops plus the 2d shifts of K components
    assert layer.model.flops_per_site(1) == pytest.approx(
        coarse.flops_per_coarse_site() + 2 * len(shape) * projector.k * 6)


@pytest.mark.parametrize("case", ["u1-12x12-b4", "su3-4d"])
def test_the_coarse_operator_is_gauge_invariant_and_prolongation_covariant(case: str) -> None:
    """U -> U^Omega with the near-null vectors x -> Omega x: P -> Omega P, R psi and D~ unchanged."""
    op, vectors, op_g, vectors_g, blocks, rotate = _transformed(case)
    p, p_g = BlockProjector(vectors, blocks, op.gamma5), BlockProjector(vectors_g, blocks, op.gamma5)
    spin, colours = op.gammas.shape[-1], op.links.shape[-1]
    c = _coarse_field(p)
    torch.testing.assert_close(p_g.prolong(c, spin, colours), rotate(p.prolong(c, spin, colours)), rtol=0, atol=1e-12)
    coarse, coarse_g = CoarseOperator(op, p), CoarseOperator(op_g, p_g)
    torch.testing.assert_close(coarse_g(c), coarse(c), rtol=0, atol=1e-11)
    assert coarse(c).abs().max() > 0.1


@pytest.mark.parametrize("case", ["u1-8x8-b4", "su3-4d"])
def test_the_neural_two_level_preconditioner_is_gauge_equivariant(case: str) -> None:
    """M(U^Omega)(Omega psi) = Omega M(U) psi for random hi- and lo-mode models; its work is the
    classical count with both models in place of the FGMRES smoother and coarse solve."""
    op, vectors, op_g, vectors_g, blocks, rotate = _transformed(case)
    spin, colours = op.gammas.shape[-1], op.links.shape[-1]
    p, p_g = BlockProjector(vectors, blocks, op.gamma5), BlockProjector(vectors_g, blocks, op.gamma5)
    torch.manual_seed(5)
    hi = build_model(PrecondSpec("ptc", (1, 2, 1), 1, op.dim, spin, colours))
    lo = build_model(coarse_spec(p, (1, 2, 1), 1))
    m = neural_two_level(op, p, NeuralPreconditioner(hi, op.links, op.csw != 0), coarse_preconditioner(lo, p))
    m_g = neural_two_level(op_g, p_g, NeuralPreconditioner(hi, op_g.links, op.csw != 0), coarse_preconditioner(lo, p_g))
    real = torch.randn(2, *op.links.shape[1:-2], spin, colours, 2, generator=generator(8), dtype=torch.float64)
    psi = torch.view_as_complex(real)
    out = m(psi)
    torch.testing.assert_close(m_g(rotate(psi)), rotate(out), rtol=0, atol=1e-11)
    assert out.abs().max() > 0.1
    smoother = NeuralPreconditioner(hi, op.links, op.csw != 0).work
    lo_cost = lo.flops_per_site(1) / CoarseOperator(op, p).flops_per_coarse_site()
    expected = 2 * smoother + 2 + lo_cost * m.coarse_cost + m.transfer_cost * spin * colours
    assert m.work_done == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dense", [True, False])
def test_the_coarse_solver_inverts_the_coarse_operator(dense: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """u -> D~^-1 u, by the dense LU on small grids and by FGMRES to 1e-6 above the limit."""
    shape, colours, blocks = COARSE_CASES["u1-12x12-b4"]
    op = _op(shape, colours)
    projector = BlockProjector(near_null_vectors(op, 3, 6, seeded_generator(3)), blocks, op.gamma5)
    coarse = CoarseFieldOperator(CoarseOperator(op, projector))
    if not dense:
        monkeypatch.setattr(coarse_module, "DENSE_UNKNOWNS", 0)
    u = _coarse_field(projector, batch=3)[..., None]
    x = coarse_solver(coarse, tuple(u.shape[1:]))(u)
    residual = (coarse(x) - u).flatten(1).norm(dim=1) / u.flatten(1).norm(dim=1)
    assert residual.max() < (1e-12 if dense else 1e-6), residual
