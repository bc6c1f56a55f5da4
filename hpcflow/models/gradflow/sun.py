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

:math:`C_F = (N^2-1)/(2N)`, exact for loops that visit each link once
(:math:`\sum_a T^aT^a = -C_F`). A loop that runs over a link twice (the doubly wound plaquette,
the figure-eights, a loop wrapped around a small lattice) adds the cross term of the two
derivatives, by the Fierz identity :math:`\sum_a\mathrm{tr}(T^aX)\,\mathrm{tr}(T^aY) =
-\frac12[\mathrm{tr}(XY) - \frac1N\mathrm{tr}X\,\mathrm{tr}Y]` in its trace form
:math:`\sum_a\mathrm{tr}(T^aXT^aY) = -\frac12[\mathrm{tr}X\,\mathrm{tr}Y - \frac1N\mathrm{tr}(XY)]`:
with the loop split at the two visits into :math:`\Omega = XY`,

.. math::
    \Delta_l\,\mathrm{tr}\,\Omega = -2C_F\,\mathrm{tr}\,\Omega \mp
    \left[\mathrm{tr}X\,\mathrm{tr}Y - \tfrac1N\mathrm{tr}\,\Omega\right],

the upper sign for two visits the same way (:math:`X` from the first visit to just before the
second, or from just after the first to the second where both run backwards), the lower for a
visit each way (:math:`X` from the forward visit through the backward one). A link run over
more often is refused (:meth:`~.loops.Loop.repeated_links`).

A loop in another representation (``"1x1@adj"``, :data:`~.loops.REPRESENTATIONS`) contributes
:math:`\mathrm{Re}\,\chi_r(\Omega)` with the characters :math:`\chi_S = \frac12[(\mathrm{tr}\,\Omega)^2
+ \mathrm{tr}\,\Omega^2]`, :math:`\chi_A = \frac12[(\mathrm{tr}\,\Omega)^2 - \mathrm{tr}\,\Omega^2]`,
:math:`\chi_{adj} = |\mathrm{tr}\,\Omega|^2 - 1`: eigenfunctions of each link's Laplacian with
eigenvalue :math:`-C_r`, :math:`C_S = (N-1)(N+2)/N`, :math:`C_A = (N+1)(N-2)/N`,
:math:`C_{adj} = N`, so :math:`-\Delta\,\mathrm{Re}\,\chi_r = l_C C_r\,\mathrm{Re}\,\chi_r` for a loop
that visits each link once. Its velocity is that of the fundamental loop with :math:`\Omega`
replaced by :math:`D_r(\Omega)`, :math:`\partial^a\mathrm{Re}\,\chi_r(\Omega) = \mathrm{Re\,tr}\,T^aD_r(\Omega)`:
:math:`D_S = \mathrm{tr}\,\Omega\,\Omega + \Omega^2`, :math:`D_A = \mathrm{tr}\,\Omega\,\Omega - \Omega^2`,
:math:`D_{adj} = 2\,\overline{\mathrm{tr}\,\Omega}\,\Omega`. The rotated loops come from prefix
and suffix products, three matrix products per link of a loop.
The group step is :math:`U \to e^{X}U` (matrix exponential).
"""

from __future__ import annotations

import torch
from torch import Tensor

from hpcflow.models.gradflow.haar import HaarSUN
from hpcflow.models.gradflow.loops import Loop
from hpcflow.models.gradflow.map import GradientFlow
from hpcflow.theories.gauge import at_offset, dagger, reunitarize

__all__ = ["SUNGradientFlow", "casimir", "character", "character_derivative", "fundamental_casimir", "traceless_antihermitian"]


def fundamental_casimir(n: int) -> float:
    r""":math:`C_F = (N^2 - 1)/(2N)`: :math:`\sum_a T^aT^a = -C_F` in the fundamental representation."""
    return (n * n - 1) / (2 * n)


def casimir(rep: str, n: int) -> float:
    """The quadratic Casimir of SU(``n``) in ``rep`` (``"fund"`` or :data:`~.loops.REPRESENTATIONS`),
    normalised as :math:`C_F = (N^2 - 1)/(2N)`."""
    return {"fund": fundamental_casimir(n), "sym": (n - 1) * (n + 2) / n, "anti": (n + 1) * (n - 2) / n, "adj": float(n)}[rep]


def character(rep: str, omega: Tensor) -> Tensor:
    r""":math:`\chi_r(\Omega)` from the fundamental traces of :math:`\Omega` and :math:`\Omega^2`."""
    tr = _trace(omega)
    if rep == "fund":
        return tr
    if rep == "adj":
        return (tr * tr.conj()) - 1
    sign = 1.0 if rep == "sym" else -1.0
    return 0.5 * (tr * tr + sign * _trace(omega @ omega))


def character_derivative(rep: str, m: Tensor) -> Tensor:
    r""":math:`D_r(M)` with :math:`\frac{d}{ds}\chi_r(e^{sT}M)|_0 = \mathrm{tr}\,T D_r(M)`."""
    if rep == "fund":
        return m
    tr = _trace(m)[..., None, None]
    if rep == "adj":
        return 2 * tr.conj() * m
    sign = 1.0 if rep == "sym" else -1.0
    return tr * m + sign * (m @ m)


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
        self.prior = HaarSUN(n)

    def _repeat_term(self, factors: list[Tensor], loop_trace: Tensor, pairs: tuple[tuple[int, int, bool, bool], ...]) -> Tensor:
        r""":math:`-\sum_l` of the cross terms of :math:`\Delta_l\,\mathrm{Re\,tr}\,\Omega` over the links run over twice."""
        n = len(factors)
        total = torch.zeros_like(loop_trace.real)
        for j, k, forward_j, forward_k in pairs:
            if forward_j == forward_k:
                first, last, sign = (j, k - 1, 1.0) if forward_j else (j + 1, k, 1.0)
            else:
                first, last, sign = (j, k, -1.0) if forward_j else (k, j + n, -1.0)
            tr_x = _trace(_product(factors, first, last))
            tr_y = _trace(_product(factors, last + 1, first + n - 1)) if last - first + 1 < n else self.n
            total = total + sign * ((tr_x * tr_y).real - loop_trace.real / self.n)
        return total

    def velocity(self, u: Tensor, t: float) -> tuple[Tensor, Tensor]:
        shape = tuple(u.shape[2:4])
        repeats = [loop.repeated_links(shape) for loop in self.loops]
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
            if loop.rep != "fund" and repeats[i]:
                raise ValueError(f"loop {loop.name!r} runs over a link twice on a {'x'.join(map(str, shape))} lattice; "
                                 "a loop in another representation must visit each link once")
            value = character(loop.rep, prefix[-1])  # tr Omega for a loop that may run over a link twice
            minus_laplacian = loop.length * casimir(loop.rep, self.n) * value.real
            if repeats[i]:
                minus_laplacian = minus_laplacian + self._repeat_term(factors, value, repeats[i])
            div = div + c[i] * minus_laplacian.flatten(1).sum(1)
            for k, (mu, offset, forward) in enumerate(loop.links):
                rotated = _rotated(prefix, suffix, k if forward else k + 1)
                term = c[i] * character_derivative(loop.rep, rotated if forward else dagger(rotated))
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


def _trace(m: Tensor) -> Tensor:
    return m.diagonal(dim1=-2, dim2=-1).sum(-1)


def _product(factors: list[Tensor], first: int, last: int) -> Tensor:
    r""":math:`L_{first}\cdots L_{last}`, indices cyclic (``last >= first``)."""
    n = len(factors)
    out = factors[first % n]
    for k in range(first + 1, last + 1):
        out = out @ factors[k % n]
    return out


def _rotated(prefix: list[Tensor], suffix: list[Tensor], k: int) -> Tensor:
    """The loop rotated to start at its ``k``-th factor, :math:`L_k\\cdots L_{n-1}L_0\\cdots L_{k-1}`."""
    n = len(prefix)
    k %= n
    return prefix[-1] if k == 0 else suffix[k] @ prefix[k - 1]
