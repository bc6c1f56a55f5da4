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
from hpcflow.models.gradflow.loops import Loop, TraceProduct
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

    def _path_products(self, u: Tensor, loop: Loop, fetched: dict) -> tuple[list[Tensor], Tensor, list[Tensor]]:
        r"""``(factors, Omega, rotated)`` of a loop's path: its links as factors (daggered where it
        runs backwards), the loop from its origin, and per link the loop rotated to start with that
        link, or just after it where the path runs backwards (each use daggers or negates those
        itself: :meth:`_loop_terms`, :func:`_complex_derivatives`). ``fetched`` holds each shifted
        link of ``u`` once, for all loops."""
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
        rotated = [_rotated(prefix, suffix, k if forward else k + 1) for k, (_, _, forward) in enumerate(loop.links)]
        return factors, prefix[-1], rotated

    def _loop_terms(self, loop: Loop, products: tuple, repeats: tuple) -> tuple[Tensor, list[Tensor]]:
        r"""``(-Laplacian of Re chi_r(W_C) per site, D_r per link of the path)``: :math:`D_r(\Omega_l)`
        with :math:`\Omega_l` the loop rotated to start with the link, or where the path runs
        backwards the dagger of the loop rotated to start just after it (the same real part)."""
        factors, omega, rotated = products
        value = character(loop.rep, omega)  # tr Omega for a loop that may run over a link twice
        minus_laplacian = loop.length * casimir(loop.rep, self.n) * value.real
        if repeats:
            minus_laplacian = minus_laplacian + self._repeat_term(factors, value, repeats)
        return minus_laplacian, [character_derivative(loop.rep, r if forward else dagger(r))
                                 for r, (_, _, forward) in zip(rotated, loop.links)]

    def _product_terms(self, term: TraceProduct, first: tuple, second: tuple,
                       shape: tuple[int, int]) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        r"""``(-Laplacian per site, D per link of the first loop, D per link of the second)`` of
        :math:`\mathrm{Re}[\mathrm{tr}A(x)\,s(\mathrm{tr}B(x+s))]`, :math:`s` the identity or the
        conjugation; the second loop's D sit at its own origin.

        With :math:`G_l` the complex derivative, :math:`\partial^a\mathrm{tr}A = \mathrm{tr}\,T^aG_l`
        (:math:`G_l = \Omega_l` where the loop runs forward over the link, minus the loop rotated
        to start just after it where it runs backwards), :math:`D = s(\mathrm{tr}B)\,G^A_l` and
        :math:`D = \overline{\mathrm{tr}A}^{(s)}\,G^B_l`; each factor is an eigenfunction,
        :math:`-\Delta\,\mathrm{tr}A = C_Fl_A\,\mathrm{tr}A`, and each link on both loops adds
        :math:`-2\,\mathrm{Re}\sum_a\mathrm{tr}(T^aX)\,s(\mathrm{tr}(T^aY))` with
        :math:`X = G^A_l`, :math:`Y = G^B_l`: by Fierz :math:`-\frac12[\mathrm{tr}XY - \frac1N\mathrm{tr}X\,\mathrm{tr}Y]`
        without conjugation, :math:`\frac12[\mathrm{tr}XY^\dagger - \frac1N\mathrm{tr}X\,\overline{\mathrm{tr}Y}]` with it."""
        shift, back = term.shift, tuple(-x for x in term.shift)
        g_first, g_second = (_complex_derivatives(loop, products[2]) for loop, products in
                             ((term.first, first), (term.second, second)))
        tr_a, tr_b = _trace(first[1]), _trace(second[1])
        conj = torch.conj if term.conjugate else (lambda z: z)
        partner_of_a = conj(at_offset(tr_b, shift))  # s(tr B(x + shift)) at x
        partner_of_b = conj(at_offset(tr_a, back))  # Re[tr A s(tr B)] = Re[s(tr A) tr B]: s(tr A(y - shift)) at y
        value = (tr_a * partner_of_a).real
        minus_laplacian = fundamental_casimir(self.n) * term.length * value
        for j, k in term.shared_links(shape):
            x, y = g_first[j], at_offset(g_second[k], shift)
            if term.conjugate:
                cross = 0.5 * (_trace(x @ dagger(y)) - _trace(x) * _trace(y).conj() / self.n)
            else:
                cross = -0.5 * (_trace(x @ y) - _trace(x) * _trace(y) / self.n)
            minus_laplacian = minus_laplacian - 2 * cross.real
        return (minus_laplacian, [partner_of_a[..., None, None] * g for g in g_first],
                [partner_of_b[..., None, None] * g for g in g_second])

    def velocity(self, u: Tensor, t: float) -> tuple[Tensor, Tensor]:
        shape = tuple(u.shape[2:4])
        c = self.coefficients(t).to(u.real.dtype)
        fetched: dict[tuple[int, tuple[int, int], bool], Tensor] = {}  # each shifted link once, for all loops
        paths: dict[tuple[int, ...], tuple[list[Tensor], Tensor, list[Tensor]]] = {}  # shared by a path's uses

        def products(loop: Loop) -> tuple[list[Tensor], Tensor, list[Tensor]]:
            if loop.path not in paths:
                paths[loop.path] = self._path_products(u, loop, fetched)
            return paths[loop.path]

        omegas: dict[tuple[int, tuple[int, int]], Tensor] = {}  # sum of c D per link direction and offset

        def add(links: list, derivatives: list[Tensor], weight: Tensor) -> None:
            for (mu, offset, _), d in zip(links, derivatives):
                omegas[(mu, offset)] = omegas[(mu, offset)] + weight * d if (mu, offset) in omegas else weight * d

        div = torch.zeros(u.shape[0], dtype=u.real.dtype, device=u.device)
        for i, term in enumerate(self.loops):
            if isinstance(term, TraceProduct):
                minus_laplacian, d_first, d_second = self._product_terms(term, products(term.first),
                                                                         products(term.second), shape)
                add(term.first.links, d_first, c[i])
                add(term.second.links, d_second, c[i])
            else:
                repeats = term.repeated_links(shape)
                if term.rep != "fund" and repeats:
                    raise ValueError(f"loop {term.name!r} runs over a link twice on a {'x'.join(map(str, shape))} "
                                     "lattice; a loop in another representation must visit each link once")
                minus_laplacian, d = self._loop_terms(term, products(term), repeats)
                add(term.links, d, c[i])
            div = div + c[i] * minus_laplacian.flatten(1).sum(1)
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


def _complex_derivatives(loop: Loop, rotated: list[Tensor]) -> list[Tensor]:
    r""":math:`G_l` with :math:`\partial^a\mathrm{tr}\,W = \mathrm{tr}\,T^aG_l` per link of the
    path, from :meth:`SUNGradientFlow._path_products`' rotated loops: the loop from the link, or
    minus the loop from just after it where the path runs backwards."""
    return [r if forward else -r for r, (_, _, forward) in zip(rotated, loop.links)]


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
