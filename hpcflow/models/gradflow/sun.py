r"""The gradient-flow map of 2D SU(N) gauge fields, links ``U`` ``(B, 2, L0, L1, N, N)`` (:mod:`.map`):
:math:`\tilde S = \sum_i c_i(t)\sum_x\mathrm{Re\,tr}\,W_{C_i}(x)`.

Generators :math:`T^a` anti-hermitian with :math:`\mathrm{tr}\,T^aT^b = -\frac12\delta^{ab}`,
:math:`\partial^a f(U) = \frac{d}{ds} f(e^{sT^a}U)|_{s=0}`. A loop through the link :math:`U_l` is
:math:`\mathrm{Re\,tr}\,\Omega` with :math:`\Omega` the loop rotated to start with :math:`U_l`
(:math:`\Omega = U_l R`; where the loop runs over the link backwards, the dagger of the loop
rotated to start just after it). Then :math:`\partial^a\mathrm{Re\,tr}\,\Omega = \mathrm{Re\,tr}\,T^a\Omega`
and :math:`\sum_a T^a\,\mathrm{Re\,tr}(T^a\Omega) = -\frac12 P(\Omega)`, :math:`P` the traceless
anti-hermitian part, so

.. math::
    Z_l = \sum_a Z^a_l T^a = \frac12\sum_i c_i\sum_{x:\,l\in C_i(x)} P(\Omega_{i,l}(x)), \qquad
    \nabla\cdot Z = -\Delta\tilde S = C_F\sum_i c_i\,l_{C_i}\sum_x\mathrm{Re\,tr}\,W_{C_i}(x),

:math:`C_F = (N^2-1)/(2N)`, exact for loops that visit each link at most once
(:math:`\sum_a T^aT^a = -C_F`); other loops are refused (:meth:`~.loops.Loop.max_visits`). The
rotated loops come from prefix and suffix products, three matrix products per link of a loop.
The group step is :math:`U \to e^{X}U` (matrix exponential).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hpcflow.models.gradflow.haar import HaarSUN
from hpcflow.models.gradflow.loops import Loop
from hpcflow.models.gradflow.map import GradientFlow
from hpcflow.theories.gauge import at_offset, dagger, reunitarize

__all__ = ["SUNGradientFlow", "fundamental_casimir", "traceless_antihermitian"]


def fundamental_casimir(n: int) -> float:
    r""":math:`C_F = (N^2 - 1)/(2N)`: :math:`\sum_a T^aT^a = -C_F` in the fundamental representation."""
    return (n * n - 1) / (2 * n)


def traceless_antihermitian(m: Tensor) -> Tensor:
    r""":math:`P(\Omega) = \frac12(\Omega - \Omega^\dagger) - \frac{1}{2N}\mathrm{tr}(\Omega - \Omega^\dagger)`."""
    a = 0.5 * (m - dagger(m))
    n = m.shape[-1]
    trace = a.diagonal(dim1=-2, dim2=-1).sum(-1)
    return a - (trace / n)[..., None, None] * torch.eye(n, dtype=m.dtype, device=m.device)


class SUNGradientFlow(GradientFlow):
    """The map and its density for 2D SU(N) links.

    Arguments:
        n: the N of SU(N).
        loops, coefficients, steps: as :class:`~.map.GradientFlow`.
    """

    def __init__(self, n: int, loops: list[Loop], coefficients: torch.nn.Module, steps: int = 20) -> None:
        super().__init__(loops, coefficients, steps)
        self.n = n
        self.casimir = fundamental_casimir(n)
        self.prior = HaarSUN(n)

    def _check_loops(self, shape: tuple[int, ...]) -> None:
        for loop in self.loops:
            if loop.max_visits(shape) > 1:
                raise ValueError(f"loop {loop.name!r} runs over a link twice on a {'x'.join(map(str, shape))} lattice; "
                                 "the SU(N) map needs loops that visit each link once (a larger lattice or another loop)")

    def velocity(self, u: Tensor, t: float) -> tuple[Tensor, Tensor]:
        shape = tuple(u.shape[2:4])
        self._check_loops(shape)
        c = self.coefficients(t).to(u.real.dtype)
        fetched: dict[tuple[int, tuple[int, int], bool], Tensor] = {}  # each shifted link once, for all loops
        omegas: dict[tuple[int, tuple[int, int]], Tensor] = {}  # sum of c Omega per link direction and offset
        div = torch.zeros(u.shape[0], dtype=u.real.dtype, device=u.device)
        for i, loop in enumerate(self.loops):
            factors = []
            for mu, offset, forward in loop.links:
                if (mu, offset, forward) not in fetched:
                    link = at_offset(u[:, mu], offset)
                    fetched[(mu, offset, forward)] = link if forward else dagger(link)
                factors.append(fetched[(mu, offset, forward)])
            prefix = [factors[0]]  # prefix[k] = L_0 ... L_k
            for f in factors[1:]:
                prefix.append(prefix[-1] @ f)
            suffix = [factors[-1]]  # suffix[j] = L_{n-1-j} ... L_{n-1}
            for f in reversed(factors[:-1]):
                suffix.append(f @ suffix[-1])
            suffix.reverse()  # suffix[k] = L_k ... L_{n-1}
            loop_trace = prefix[-1].diagonal(dim1=-2, dim2=-1).sum(-1).real
            div = div + c[i] * loop.length * self.casimir * loop_trace.flatten(1).sum(1)
            for k, (mu, offset, forward) in enumerate(loop.links):
                rotated = _rotated(prefix, suffix, k if forward else k + 1)
                term = c[i] * (rotated if forward else dagger(rotated))
                omegas[(mu, offset)] = omegas[(mu, offset)] + term if (mu, offset) in omegas else term
        z = [torch.zeros_like(u[:, 0]) for _ in range(2)]
        for (mu, offset), omega in omegas.items():
            # Omega sits at the loop's origin x; its link at y = x + offset: move it there
            z[mu] = z[mu] + torch.roll(omega, shifts=offset, dims=(1, 2))
        return 0.5 * traceless_antihermitian(torch.stack(z, 1)), div

    def advance(self, u: Tensor, x: Tensor) -> Tensor:
        return torch.linalg.matrix_exp(x) @ u

    def rotation(self, moved: Tensor, u: Tensor) -> Tensor:
        return moved @ dagger(u)

    def unrotate(self, rotation: Tensor, moved: Tensor) -> Tensor:
        # projected back onto SU(N): a fixed-point sweep doubles any departure from unitarity
        return reunitarize(dagger(rotation) @ moved)


def _rotated(prefix: list[Tensor], suffix: list[Tensor], k: int) -> Tensor:
    """The loop rotated to start at its ``k``-th factor, :math:`L_k\\cdots L_{n-1}L_0\\cdots L_{k-1}`."""
    n = len(prefix)
    k %= n
    return prefix[-1] if k == 0 else suffix[k] @ prefix[k - 1]
