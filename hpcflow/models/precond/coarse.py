r"""The lo-mode model on the coarse grid and the neural two-level preconditioner.

Coarse fields :math:`c = R\psi` (:class:`~hpcflow.models.precond.multigrid.BlockProjector`) are
gauge invariant: under :math:`U \to U^\Omega` the near-null vectors (relaxed from random starts
that transform too, :math:`v \to \Omega v`, as the Krylov setup is covariant) and with them
:math:`P` transform as :math:`P \to \Omega P`, so :math:`R\psi \to R\psi` and :math:`\tilde D = RDP` is
unchanged. A coarse-grid layer therefore needs no gauge field: it is an LPTC layer with ``K``
"spin" components, one colour and unit links, whose one-hop paths are plain shifts,

.. math::
    c^{out}_a(B) = \sum_b \sum_{p \in \{0, \pm\hat\mu\}} W_{abp}(B)\,c^{in}_b(B + p),

with :math:`K\times K` complex matrices per coarse site: the form of :math:`\tilde D` itself
(:func:`coarse_layer_of` writes :math:`\tilde D` as such a layer exactly). The lo-mode model
:math:`\tilde M \approx \tilde D^{-1}` is trained with the cost
:math:`|\tilde M\tilde D v - v|^2/|v|^2` on random coarse vectors, or on low-mode ones
:math:`v = \tilde D^{-1}u` (:func:`coarse_solver`; ``[precond].low_modes``).

The neural two-level preconditioner (:func:`neural_two_level`) is the classical
:class:`~hpcflow.models.precond.multigrid.TwoLevel` with the hi-mode model :math:`M_h` as the
smoother and :math:`\tilde M` in place of the coarse solve:
:math:`x = M_h v`, :math:`x \mathrel{+}= P\tilde M R(v - Dx)`, :math:`x \mathrel{+}= M_h(v - Dx)`.
Its work counts both models by their flops (:mod:`hpcflow.models.precond.model`).

Shapes: coarse fields ``(B, *C, K)``; as fields of the layers ``(B, *C, K, 1)``.

References:
    | C. Lehner, T. Wettig, arXiv:2304.10438 (the multigrid model)
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor

from hpcflow.dirac.solvers import fgmres
from hpcflow.dirac.spectrum import dense_matrix
from hpcflow.dirac.transport import one_hop_paths
from hpcflow.models.precond.layers import LPTC, PrecondLayer
from hpcflow.models.precond.model import NeuralPreconditioner, PrecondSpec, dirac_flops_per_site
from hpcflow.models.precond.multigrid import BlockProjector, CoarseOperator, TwoLevel

__all__ = ["CoarseFieldOperator", "coarse_layer_of", "coarse_preconditioner", "coarse_spec", "coarse_solver",
           "neural_two_level"]
DENSE_UNKNOWNS = 8192  # coarse grids up to this many unknowns are solved by a dense LU factorization


def unit_links(coarse: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """Links ``(d, *C, 1, 1)`` equal to 1: transports that are plain shifts (periodic)."""
    return torch.ones((len(coarse), *coarse, 1, 1), dtype=dtype, device=device)


def coarse_spec(projector: BlockProjector, channels: tuple[int, ...], hops: int) -> PrecondSpec:
    """The architecture of a lo-mode model on ``projector``'s coarse grid."""
    return PrecondSpec("lptc", tuple(channels), hops, projector.dim, projector.k, 1, projector.coarse)


class CoarseFieldOperator:
    """:math:`\\tilde D` acting on coarse fields in the layers' layout ``(B, *C, K, 1)``."""

    def __init__(self, coarse: CoarseOperator) -> None:
        self.coarse = coarse

    def __call__(self, v: Tensor) -> Tensor:
        return self.coarse(v[..., 0])[..., None]


def coarse_solver(op: CoarseFieldOperator, site: tuple[int, ...], tol: float = 1e-6) -> Callable[[Tensor], Tensor]:
    r""":math:`u \mapsto \tilde D^{-1}u` for a batch of coarse fields of shape ``site``: exact, by an LU
    factorization of the dense :math:`\tilde D` (built once from its columns) on grids of up to
    :data:`DENSE_UNKNOWNS` unknowns; by FGMRES(60) to ``tol`` per field above."""
    n = math.prod(site)
    basis = op.coarse.self_term
    if n > DENSE_UNKNOWNS:
        return lambda u: torch.cat([fgmres(op, u[i : i + 1], tol, 10_000, restart=60).x for i in range(len(u))])
    lu, pivots = torch.linalg.lu_factor(dense_matrix(op, site, basis.dtype, basis.device))
    return lambda u: torch.linalg.lu_solve(lu, pivots, u.reshape(len(u), n).T).T.reshape(u.shape)


def coarse_preconditioner(model: PrecondLayer, projector: BlockProjector) -> NeuralPreconditioner:
    """:math:`\\tilde M` of a lo-mode model, on fields ``(B, *C, K, 1)``."""
    links = unit_links(projector.coarse, projector.basis.dtype, projector.basis.device)
    return NeuralPreconditioner(model, links, clover=False)


def coarse_layer_of(coarse: CoarseOperator) -> LPTC:
    """:math:`\\tilde D` as one coarse-grid layer (exact): :math:`W_0 = A_0`, :math:`W_{\\pm\\mu} = A_{\\pm\\mu}`."""
    paths = one_hop_paths(coarse.dim)
    k = coarse.self_term.shape[-1]
    layer = LPTC(1, 1, paths, k, tuple(coarse.self_term.shape[:-2]), coarse.self_term.dtype).to(coarse.self_term.device)
    with torch.no_grad():
        for i, path in enumerate(paths):
            layer.weight[0, 0, i] = coarse.self_term if not path else coarse.hops[path[0]]
    return layer


def neural_two_level(op: Any, projector: BlockProjector, smoother: NeuralPreconditioner,
                     lo_mode: NeuralPreconditioner) -> TwoLevel:
    """The two-level preconditioner with the hi-mode model as smoother and the lo-mode model as
    coarse solve (module docstring); ``op`` is the fine operator at the solve's mass."""
    coarse = CoarseOperator(op, projector)
    spin, colours = op.gammas.shape[-1], op.links.shape[-1]

    def smooth(v: Tensor) -> tuple[Tensor, float]:
        return smoother(v), smoother.work

    lo_mode_cost = lo_mode.model.flops_per_site(1) / coarse.flops_per_coarse_site()  # in applications of D~

    def coarse_solve(c: Tensor) -> tuple[Tensor, float]:
        return lo_mode(c[..., None])[..., 0], lo_mode_cost

    return TwoLevel(op, projector, coarse, smooth, coarse_solve,
                    dirac_flops_per_site(projector.dim, spin, colours, op.clover is not None))
