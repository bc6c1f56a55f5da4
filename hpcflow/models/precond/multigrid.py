r"""Two-level multigrid for the Wilson(-clover) operator: near-null vectors, block aggregation,
the coarse operator as a stencil, and the classical two-level preconditioner.

- **Near-null vectors**: from Gaussian random :math:`v`, a few FGMRES iterations on
  :math:`Dy = Dv` (from :math:`y = 0`) leave :math:`x = v - y`, whose error is dominated by the
  low modes of :math:`D`: the modes a smoother cannot reach.
- **Aggregation** (:class:`BlockProjector`): the lattice is cut into blocks; every near-null
  vector is split into its chiral halves :math:`\frac12(1 \pm \gamma_5)x` (so that the coarse
  operator keeps :math:`\gamma_5`-hermiticity) and the :math:`K = 2n` restrictions to each block
  are orthonormalized there (Gram-Schmidt order, i.e. the QR factorization whose :math:`R` has a
  positive diagonal: unique, so gauge-transformed vectors :math:`\Omega x` give the basis
  :math:`\Omega V` and the same :math:`\tilde D`). Prolongation :math:`P`: coarse :math:`c(B)_k` to
  :math:`\sum_k c(B)_k V_{B,k}`; restriction :math:`R = P^\dagger`, so :math:`RP = 1`.
- **Coarse operator** (:class:`CoarseOperator`): :math:`\tilde D = RDP` as a stencil, a
  :math:`K\times K` matrix per coarse site for the site itself and one per direction
  :math:`\pm\hat\mu`: :math:`(\tilde Dc)(B) = A_0(B)c(B) + \sum_{\pm\mu}A_{\pm\mu}(B)c(B\pm\hat\mu)`,
  built from the operator's local part and its hop terms split into those that stay in a block
  and those that cross to the neighbour block (exact for any block and coarse extent).
- **Two-level preconditioner** (:class:`TwoLevel`): pre-smoothing :math:`x = S v`, coarse
  correction :math:`x \mathrel{+}= P\tilde D^{-1}R(v - Dx)`, post-smoothing
  :math:`x \mathrel{+}= S(v - Dx)`, with :math:`S` a few FGMRES iterations and the coarse solve by
  FGMRES to ``coarse_tol``. Its work in applications of D is counted call by call.

Shapes: fine fields ``(B, *L, S, N)``, coarse fields ``(B, *L/b, K)``.

References:
    | Brannick, Brower, Clark, Osborn, Rebbi, Phys. Rev. Lett. 100 (2008) 041601
    | Lüscher, JHEP 0707:081 (2007) (inexact deflation; the chiral split)
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from torch import Tensor

from hpcflow.dirac.solvers import fgmres

__all__ = ["BlockProjector", "CoarseOperator", "TwoLevel", "near_null_vectors", "two_level_preconditioner"]


def near_null_vectors(op: Any, n: int, iterations: int, generator: torch.Generator) -> Tensor:
    """``n`` near-null vectors ``(n, *L, S, N)`` of ``op`` (module docstring), normalized."""
    links = op.links
    shape = (n, *links.shape[1:-2], op.gammas.shape[-1], links.shape[-1])
    real = links.dtype.to_real()
    v = torch.complex(torch.randn(shape, generator=generator, dtype=real, device=links.device),
                      torch.randn(shape, generator=generator, dtype=real, device=links.device))
    out = []
    for i in range(n):
        y = fgmres(op, op(v[i : i + 1]), tol=1e-30, maxiter=iterations, restart=iterations).x
        x = v[i : i + 1] - y
        out.append(x / x.abs().pow(2).sum().sqrt())
    return torch.cat(out)


class BlockProjector:
    """Prolongation and restriction on blocks of the lattice (module docstring).

    Arguments:
        vectors: near-null vectors ``(n, *L, S, N)``.
        blocks: the block extents, one per lattice axis, dividing the lattice.
        gamma5: the operator's :math:`\\gamma_5` ``(S, S)``.
    """

    def __init__(self, vectors: Tensor, blocks: tuple[int, ...], gamma5: Tensor) -> None:
        lattice = tuple(vectors.shape[1:-2])
        if len(blocks) != len(lattice) or any(n % b for n, b in zip(lattice, blocks)):
            raise ValueError(f"blocks {list(blocks)} do not divide the lattice {list(lattice)}")
        self.lattice, self.blocks = lattice, tuple(blocks)
        self.coarse = tuple(n // b for n, b in zip(lattice, blocks))
        self.dim = len(lattice)
        eye = torch.eye(gamma5.shape[0], dtype=vectors.dtype, device=vectors.device)
        chiral = torch.cat([(0.5 * (eye + gamma5)) @ vectors, (0.5 * (eye - gamma5)) @ vectors])  # (K, *L, S, N)
        self.k = chiral.shape[0]
        columns = self._block(chiral)  # (K, *C, dof)
        q, r = torch.linalg.qr(columns.movedim(0, -1))  # per block: (*C, dof, K), orthonormal columns
        diagonal = torch.diagonal(r, dim1=-2, dim2=-1)
        # the unique QR (diagonal of R real and positive): a basis that transforms as P -> Omega P
        self.basis = q * (diagonal / diagonal.abs())[..., None, :]

    def _block(self, fine: Tensor) -> Tensor:
        """``(B, *L, S, N) -> (B, *C, block dof)``."""
        b = fine.shape[0]
        split = []
        for c, n in zip(self.coarse, self.blocks):
            split += [c, n]
        x = fine.reshape(b, *split, -1)  # (B, C0, b0, C1, b1, ..., S N)
        d = self.dim
        order = [0, *[1 + 2 * i for i in range(d)], *[2 + 2 * i for i in range(d)], 1 + 2 * d]
        return x.permute(order).reshape(b, *self.coarse, -1)

    def _unblock(self, blocked: Tensor, spin: int, colours: int) -> Tensor:
        """Inverse of :meth:`_block`."""
        b, d = blocked.shape[0], self.dim
        x = blocked.reshape(b, *self.coarse, *self.blocks, spin * colours)
        order = [0]
        for i in range(d):
            order += [1 + i, 1 + d + i]
        order.append(1 + 2 * d)
        return x.permute(order).reshape(b, *self.lattice, spin, colours)

    def restrict(self, fine: Tensor) -> Tensor:
        """:math:`R\\psi`: ``(B, *L, S, N) -> (B, *C, K)``."""
        return torch.einsum("...dk,B...d->B...k", self.basis.conj(), self._block(fine))

    def prolong(self, coarse: Tensor, spin: int, colours: int) -> Tensor:
        """:math:`Pc`: ``(B, *C, K) -> (B, *L, S, N)``."""
        return self._unblock(torch.einsum("...dk,B...k->B...d", self.basis, coarse), spin, colours)

    def crossing(self, step: int) -> Tensor:
        """``(*L,)`` booleans: the sites whose neighbour along ``step`` lies in the next block."""
        mu = abs(step) - 1
        coord = torch.arange(self.lattice[mu], device=self.basis.device) % self.blocks[mu]
        edge = coord == (self.blocks[mu] - 1 if step > 0 else 0)
        view = [1] * self.dim
        view[mu] = -1
        return edge.view(view).expand(self.lattice)


class CoarseOperator:
    """:math:`\\tilde D = RDP` as a stencil on the coarse lattice (module docstring).

    Arguments:
        op: the fine operator (:class:`~hpcflow.dirac.wilson.WilsonDirac`).
        projector: the aggregation.
    """

    def __init__(self, op: Any, projector: BlockProjector) -> None:
        self.projector, self.dim = projector, projector.dim
        spin, colours = op.gammas.shape[-1], op.links.shape[-1]
        self.spin, self.colours = spin, colours
        steps = [s * (mu + 1) for mu in range(self.dim) for s in (1, -1)]
        k = projector.k
        self.self_term = torch.zeros((*projector.coarse, k, k), dtype=projector.basis.dtype, device=projector.basis.device)
        self.hops = {s: torch.zeros_like(self.self_term) for s in steps}
        masks = {s: projector.crossing(s)[..., None, None] for s in steps}
        for j in range(k):
            unit = torch.zeros((1, *projector.coarse, k), dtype=projector.basis.dtype, device=projector.basis.device)
            unit[..., j] = 1.0
            source = projector.prolong(unit, spin, colours)  # basis vector j in every block
            self.self_term[..., j] = projector.restrict(op.local(source))[0]
            for s in steps:
                h = -0.5 * op.hop_term(source, s)
                self.self_term[..., j] += projector.restrict(torch.where(masks[s], 0, h))[0]
                self.hops[s][..., j] = projector.restrict(torch.where(masks[s], h, 0))[0]

    def __call__(self, c: Tensor) -> Tensor:
        """:math:`\\tilde Dc` for coarse fields ``(B, *C, K)``."""
        out = torch.einsum("...jk,B...k->B...j", self.self_term, c)
        for s, a in self.hops.items():
            mu = abs(s) - 1
            neighbour = torch.roll(c, -1 if s > 0 else 1, dims=1 + mu)  # c(B + s)
            out = out + torch.einsum("...jk,B...k->B...j", a, neighbour)
        return out

    def flops_per_coarse_site(self) -> float:
        k = self.self_term.shape[-1]
        return 8.0 * k * k * (1 + 2 * self.dim)


class TwoLevel:
    """The two-level preconditioner (module docstring), with its work in applications of D.

    Arguments:
        op: the fine operator; projector, coarse: the aggregation and :math:`\\tilde D`.
        smoother: a map ``v -> (x, work)``, ``x ~ D^{-1} v`` (e.g. :func:`fgmres_smoother`).
        coarse_solve: a map ``c -> (x, its cost in applications of`` :math:`\\tilde D` ``)``,
            ``x ~ \\tilde D^{-1} c``.
    """

    def __init__(self, op: Any, projector: BlockProjector, coarse: CoarseOperator,
                 smoother: Callable[[Tensor], tuple[Tensor, float]], coarse_solve: Callable[[Tensor], tuple[Tensor, float]],
                 fine_flops_per_site: float) -> None:
        self.op, self.projector, self.coarse = op, projector, coarse
        self.smoother, self.coarse_solve = smoother, coarse_solve
        block = math.prod(projector.blocks)
        self.coarse_cost = coarse.flops_per_coarse_site() / (block * fine_flops_per_site)
        self.transfer_cost = 2 * 8.0 * projector.k / fine_flops_per_site  # R and P: K complex products per fine dof
        self.work_done = 0.0

    def __call__(self, v: Tensor) -> Tensor:
        spin, colours = self.coarse.spin, self.coarse.colours
        x, work = self.smoother(v)
        r = v - self.op(x)
        c, coarse_apps = self.coarse_solve(self.projector.restrict(r))
        x = x + self.projector.prolong(c, spin, colours)
        r = v - self.op(x)
        y, work_post = self.smoother(r)
        self.work_done += work + work_post + 2 + coarse_apps * self.coarse_cost + self.transfer_cost * spin * colours
        return x + y


def fgmres_smoother(op: Any, iterations: int) -> Callable[[Tensor], tuple[Tensor, float]]:
    """``iterations`` FGMRES iterations from zero (no restart) as a smoother."""

    def smooth(v: Tensor) -> tuple[Tensor, float]:
        info = fgmres(op, v, tol=1e-30, maxiter=iterations, restart=iterations)
        return info.x, float(info.work)

    return smooth


def two_level_preconditioner(op: Any, s: dict[str, Any]) -> TwoLevel:
    """The classical two-level preconditioner of a ``[solve]`` section (its multigrid keys)."""
    from hpcflow.lattice.rng import seeded_generator
    from hpcflow.models.precond.model import dirac_flops_per_site

    vectors = near_null_vectors(op, s["basis"], s["setup_iterations"], seeded_generator(s["seed"] + 7, op.links.device))
    projector = BlockProjector(vectors, tuple(s["blocks"]), op.gamma5)
    coarse = CoarseOperator(op, projector)

    def coarse_solve(c: Tensor) -> tuple[Tensor, int]:
        info = fgmres(coarse, c, tol=s["coarse_tol"], maxiter=s["coarse_maxiter"], restart=30)
        return info.x, info.work

    spin, colours = op.gammas.shape[-1], op.links.shape[-1]
    return TwoLevel(op, projector, coarse, fgmres_smoother(op, s["smoother_iterations"]), coarse_solve,
                    dirac_flops_per_site(len(projector.lattice), spin, colours, op.clover is not None))
