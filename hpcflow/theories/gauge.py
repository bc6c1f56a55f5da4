r"""Lattice gauge fields: U(1) in 2D and SU(N) in any dimension, batched.

Conventions (shared/PHYSICS.md):

- SU(N) links ``U`` of shape ``(B, d, L0, ..., L_{d-1}, N, N)``, complex; ``U[:, mu][x]`` is
  :math:`U_\mu(x)`, the parallel transporter from :math:`x + \hat\mu` to :math:`x`.
- U(1) links in 2D as angles ``theta`` of shape ``(B, 2, L0, L1)``, :math:`U_\mu(x) = e^{i\theta_\mu(x)}`;
  :func:`u1_links` turns them into ``1 x 1`` matrices for the general routines.
- Plaquette :math:`U_{\mu\nu}(x) = U_\mu(x) U_\nu(x+\hat\mu) U_\mu(x+\hat\nu)^\dagger U_\nu(x)^\dagger`;
  U(1): :math:`\theta_P = \theta_0(x) + \theta_1(x+\hat 0) - \theta_0(x+\hat 1) - \theta_1(x)`.
- Wilson action :math:`S = -\frac{\beta}{N}\sum_x\sum_{\mu<\nu}\mathrm{Re\,tr}\,U_{\mu\nu}(x)`
  (U(1): :math:`-\beta\sum_x\cos\theta_P`).
- Gauge transformation :math:`U_\mu(x) \to \Omega(x) U_\mu(x) \Omega(x+\hat\mu)^\dagger`.
- 2D U(1) topological charge :math:`Q = \frac{1}{2\pi}\sum_x \mathrm{wrap}(\theta_P)`,
  wrap into :math:`(-\pi, \pi]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from hpcflow.lattice.geometry import shift

__all__ = [
    "U1Action",
    "WilsonGaugeAction",
    "at_offset",
    "dagger",
    "gauge_transform",
    "identity_links",
    "mean_wilson_loop",
    "plaquette_field",
    "random_gauge",
    "random_su_n",
    "reunitarize",
    "topological_charge",
    "path_links",
    "u1_links",
    "u1_mean_wilson_loop",
    "u1_loop_angle",
    "u1_plaquette_angle",
    "wilson_loop",
]


def dagger(m: Tensor) -> Tensor:
    """Hermitian conjugate over the last two (colour) indices."""
    return m.conj().transpose(-1, -2)


def wilson_loop(u: Tensor, path: list[int]) -> Tensor:
    r"""Product of links along a closed path starting at every site, ``(B, *L, N, N)``.

    ``path`` lists steps as signed directions ``+(mu+1)`` (forward along :math:`\mu`) or
    ``-(mu+1)`` (backward): a plaquette in the (0, 1) plane is ``[1, 2, -1, -2]``, a 2x1
    rectangle ``[1, 1, 2, -1, -1, -2]``. A forward step multiplies by :math:`U_\mu(y)`, a
    backward step by :math:`U_\mu(y-\hat\mu)^\dagger`.

    Arguments:
        u: links ``(B, d, *L, N, N)``.
        path: the steps; the path must close.
    """
    result = None
    for mu, offset, forward in path_links(path, u.shape[1]):
        link = at_offset(u[:, mu], offset)
        link = link if forward else dagger(link)
        result = link if result is None else result @ link
    return result


def at_offset(field: Tensor, offset: tuple[int, ...]) -> Tensor:
    """``out[x] = field[x + offset]`` over the lattice axes ``1 .. d`` of ``(B, *L, ...)``."""
    moves = [(-o, nu + 1) for nu, o in enumerate(offset) if o]
    return torch.roll(field, [m[0] for m in moves], [m[1] for m in moves]) if moves else field


def path_links(path: list[int], dim: int) -> list[tuple[int, tuple[int, ...], bool]]:
    """The links a closed path traverses from the origin: ``(mu, offset of the link's site,
    forward)`` per step (a backward step along mu uses the link at ``y - mu``, daggered).

    Raises ``ValueError`` for a step out of range or a path that does not close.
    """
    offset = [0] * dim
    out = []
    for step in path:
        if step == 0 or abs(step) > dim:
            raise ValueError(f"path step {step}: expected +-1 .. +-{dim}")
        mu = abs(step) - 1
        if step < 0:
            offset[mu] -= 1
        out.append((mu, tuple(offset), step > 0))
        if step > 0:
            offset[mu] += 1
    if any(offset):
        raise ValueError(f"path {path} does not close (ends at offset {offset})")
    return out


def u1_loop_angle(theta: Tensor, path: list[int]) -> Tensor:
    r""":math:`\theta_C(x) = \sum_{l\in C}\pm\theta_l`, the U(1) angle of the closed path ``path``
    (as :func:`wilson_loop`) starting at every site, ``(B, *L)``, for angles ``(B, d, *L)``."""
    total = None
    for mu, offset, forward in path_links(path, theta.shape[1]):
        angle = at_offset(theta[:, mu], offset)
        angle = angle if forward else -angle
        total = angle if total is None else total + angle
    return total


def plaquette_field(u: Tensor, mu: int, nu: int) -> Tensor:
    r""":math:`U_{\mu\nu}(x)` at every site, ``(B, *L, N, N)``."""
    return wilson_loop(u, [mu + 1, nu + 1, -(mu + 1), -(nu + 1)])


def _rectangles(d: int, a: int, b: int) -> list[list[int]]:
    """The closed paths of the ``a x b`` rectangles in every plane, both orientations (one if ``a == b``)."""
    sides = [(a, b)] if a == b else [(a, b), (b, a)]
    return [[mu + 1] * x + [nu + 1] * y + [-(mu + 1)] * x + [-(nu + 1)] * y
            for mu in range(d) for nu in range(mu + 1, d) for x, y in sides]


def mean_wilson_loop(u: Tensor, a: int, b: int) -> Tensor:
    r""":math:`\langle\frac1N\mathrm{Re\,tr}\,W_{a\times b}\rangle` over sites, planes and both
    orientations of the rectangle, ``(B,)``."""
    traces = [wilson_loop(u, path).diagonal(dim1=-2, dim2=-1).sum(-1).real.flatten(1).mean(1)
              for path in _rectangles(u.shape[1], a, b)]
    return torch.stack(traces).mean(0) / u.shape[-1]


def u1_mean_wilson_loop(theta: Tensor, a: int, b: int) -> Tensor:
    r""":math:`\langle\cos\theta_{a\times b}\rangle` over sites and both orientations, ``(B,)``."""
    return torch.stack([torch.cos(u1_loop_angle(theta, path)).flatten(1).mean(1)
                        for path in _rectangles(theta.shape[1], a, b)]).mean(0)


def u1_links(theta: Tensor) -> Tensor:
    """U(1) angles ``(B, d, *L)`` as ``1 x 1`` complex link matrices ``(B, d, *L, 1, 1)``."""
    return torch.polar(torch.ones_like(theta), theta)[..., None, None]


def u1_plaquette_angle(theta: Tensor) -> Tensor:
    r""":math:`\theta_P(x) = \theta_0(x) + \theta_1(x+\hat 0) - \theta_0(x+\hat 1) - \theta_1(x)`, ``(B, L0, L1)``."""
    t0, t1 = theta[:, 0], theta[:, 1]
    return t0 + shift(t1, 0, +1) - shift(t0, 1, +1) - t1


def topological_charge(theta: Tensor) -> Tensor:
    r""":math:`Q = \frac{1}{2\pi}\sum_x \mathrm{wrap}(\theta_P)`, an integer on a periodic 2D torus; ``(B,)``."""
    p = u1_plaquette_angle(theta)
    wrapped = p - 2 * math.pi * torch.floor((p + math.pi) / (2 * math.pi))
    wrapped = torch.where(wrapped == -math.pi, torch.full_like(wrapped, math.pi), wrapped)  # into (-pi, pi]
    return wrapped.flatten(1).sum(1) / (2 * math.pi)


@dataclass(frozen=True)
class U1Action:
    r"""2D U(1) Wilson action on angles: :math:`S = -\beta\sum_x\cos\theta_P(x)`.

    Force :math:`\partial S/\partial\theta_\mu(x)`: :math:`\theta_0(x)` enters :math:`\theta_P(x)`
    with + and :math:`\theta_P(x-\hat 1)` with -; :math:`\theta_1(x)` enters :math:`\theta_P(x-\hat 0)`
    with + and :math:`\theta_P(x)` with -, so
    :math:`\partial S/\partial\theta_0(x) = \beta[\sin\theta_P(x) - \sin\theta_P(x-\hat 1)]`,
    :math:`\partial S/\partial\theta_1(x) = \beta[\sin\theta_P(x-\hat 0) - \sin\theta_P(x)]`.

    Example:
        >>> U1Action(beta=2.0)(torch.zeros(1, 2, 4, 4, dtype=torch.float64))
        tensor([-32.], dtype=torch.float64)
    """

    beta: float

    def __call__(self, theta: Tensor) -> Tensor:
        return -self.beta * torch.cos(u1_plaquette_angle(theta)).flatten(1).sum(1)

    def force(self, theta: Tensor) -> Tensor:
        s = torch.sin(u1_plaquette_angle(theta))
        f0 = s - shift(s, 1, -1)
        f1 = shift(s, 0, -1) - s
        return self.beta * torch.stack([f0, f1], 1)


@dataclass(frozen=True)
class WilsonGaugeAction:
    r"""SU(N) Wilson action :math:`S = -\frac{\beta}{N}\sum_x\sum_{\mu<\nu}\mathrm{Re\,tr}\,U_{\mu\nu}(x)`, ``(B,)``."""

    beta: float

    def __call__(self, u: Tensor) -> Tensor:
        d, n = u.shape[1], u.shape[-1]
        total = 0.0
        for mu in range(d):
            for nu in range(mu + 1, d):
                total = total + plaquette_field(u, mu, nu).diagonal(dim1=-2, dim2=-1).sum(-1).real.flatten(1).sum(1)
        return -self.beta / n * total

    @staticmethod
    def mean_plaquette(u: Tensor) -> Tensor:
        r""":math:`\langle\frac1N\mathrm{Re\,tr}\,U_{\mu\nu}\rangle` over sites and planes, ``(B,)``."""
        return mean_wilson_loop(u, 1, 1)


def reunitarize(u: Tensor) -> Tensor:
    r"""Project matrices ``(..., N, N)`` onto SU(N): QR with a positive diagonal of R (the
    Gram-Schmidt orthonormalization of the columns), then the phase of the determinant divided out."""
    q, r = torch.linalg.qr(u)
    d = torch.diagonal(r, dim1=-2, dim2=-1)
    q = q * (d / d.abs())[..., None, :]
    det = torch.linalg.det(q)
    n = u.shape[-1]
    return q / torch.pow(det, 1.0 / n)[..., None, None]


def random_su_n(shape: tuple[int, ...], n: int, generator: torch.Generator, dtype: torch.dtype = torch.complex128) -> Tensor:
    """Random SU(N) matrices ``(*shape, N, N)`` (Haar up to the determinant phase fix)."""
    real = torch.randn((*shape, n, n, 2), generator=generator, dtype=torch.float64)
    return reunitarize(torch.view_as_complex(real).to(dtype))


def identity_links(batch: int, shape: tuple[int, ...], n: int, dtype: torch.dtype = torch.complex128,
                   device: torch.device | str = "cpu") -> Tensor:
    """The free field ``U = 1``, ``(B, d, *L, N, N)``."""
    eye = torch.eye(n, dtype=dtype, device=device)
    return eye.expand(batch, len(shape), *shape, n, n).clone()


def random_gauge(batch: int, shape: tuple[int, ...], n: int, generator: torch.Generator,
                 dtype: torch.dtype = torch.complex128) -> Tensor:
    """A random gauge transformation :math:`\\Omega(x)`, ``(B, *L, N, N)``."""
    return random_su_n((batch, *shape), n, generator, dtype)


def gauge_transform(u: Tensor, omega: Tensor) -> Tensor:
    r""":math:`U_\mu(x) \to \Omega(x) U_\mu(x) \Omega(x+\hat\mu)^\dagger` for links ``(B, d, *L, N, N)``."""
    d = u.shape[1]
    return torch.stack([omega @ u[:, mu] @ dagger(shift(omega, mu, +1)) for mu in range(d)], 1)
