r"""Wilson and Wilson-clover Dirac operators (torch reference), for a batch of right-hand sides.

.. math::
    D\psi(x) = (d + m)\psi(x) - \frac12\sum_\mu\Big[(1 - \gamma_\mu)U_\mu(x)\psi(x+\hat\mu)
               + (1 + \gamma_\mu)U_\mu(x-\hat\mu)^\dagger\psi(x-\hat\mu)\Big]
               + c_{sw}\frac{i}{4}\sum_{\mu,\nu}\sigma_{\mu\nu}\hat F_{\mu\nu}(x)\psi(x)

with :math:`\sigma_{\mu\nu} = \frac{i}{2}[\gamma_\mu, \gamma_\nu]` and the clover-leaf field
strength :math:`\hat F_{\mu\nu} = \frac18(Q_{\mu\nu} - Q_{\mu\nu}^\dagger)`, :math:`Q_{\mu\nu}` the
sum of the four plaquettes in the :math:`(\mu, \nu)` plane that start and end at ``x``
(Sheikholeslami-Wohlert; Luscher, Sint, Sommer, Weisz 1996). Hopping parameter
:math:`\kappa = 1/(2(m + d))`, so :math:`D = \frac{1}{2\kappa}(1 - \kappa H) + \text{clover}`.
Gamma basis: :mod:`hpcflow.dirac.gamma` (4D DeGrand-Rossi with axis 0 as time; 2D Pauli).
Boundaries: periodic in every direction; ``antiperiodic_time=True`` puts the fermion phase
:math:`-1` on the links that cross the time boundary (axis 0).

Shapes: links ``(d, *L, N, N)`` (one configuration), spinors ``(B, *L, spin, colour)``, complex64
or complex128. U(1) in 2D (the Schwinger model) uses ``N = 1``
(:func:`hpcflow.theories.gauge.u1_links`). ``backend="auto"`` applies, for 4D SU(3) links on a
CUDA device, the fused CuPy kernel of :mod:`hpcflow.dirac.cuda` when CuPy is installed, and on the
CPU the compiled kernel of :mod:`hpcflow.kernels.dirac` (spin projection, OpenMP) when it is
built; ``"cupy"`` and ``"compiled"`` ask for one, ``"torch"`` for the reference that both are
tested against.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hpcflow.dirac.cuda.kernels import WilsonCloverKernel, cupy_available
from hpcflow.dirac.gamma import gamma_basis, sigma_munu
from hpcflow.dirac.transport import Transporter
from hpcflow.kernels import compiled, why_not_compiled
from hpcflow.kernels.dirac import CompiledTransport, CompiledWilson
from hpcflow.theories.gauge import dagger, wilson_loop

__all__ = ["WilsonDirac", "clover_field_strength"]


def clover_field_strength(links: Tensor, mu: int, nu: int) -> Tensor:
    r""":math:`\hat F_{\mu\nu}(x) = \frac18(Q_{\mu\nu} - Q_{\mu\nu}^\dagger)` (anti-hermitian), ``(*L, N, N)``."""
    a, b = mu + 1, nu + 1
    u = links[None]
    leaves = [[a, b, -a, -b], [b, -a, -b, a], [-a, -b, a, b], [-b, a, b, -a]]
    q = sum(wilson_loop(u, path) for path in leaves)[0]
    return (q - dagger(q)) / 8.0


class WilsonDirac:
    """The Wilson(-clover) operator on one gauge configuration.

    Arguments:
        links: gauge links ``(d, *L, N, N)``, complex.
        mass: bare mass ``m`` (``kappa = 1 / (2 (m + d))``).
        csw: clover coefficient (0: plain Wilson).
        antiperiodic_time: antiperiodic fermion boundary in direction 0.
    """

    def __init__(self, links: Tensor, mass: float, csw: float = 0.0, antiperiodic_time: bool = False,
                 backend: str = "auto") -> None:
        if backend not in ("auto", "torch", "cupy", "compiled"):
            raise ValueError(f"backend = {backend!r}: expected 'auto', 'torch', 'cupy' or 'compiled'")
        if backend == "compiled" and compiled() is None:
            raise RuntimeError(f"backend = 'compiled': {why_not_compiled()}")
        self.dim = links.shape[0]
        if links.dim() != self.dim + 3:
            raise ValueError(f"links of shape {tuple(links.shape)}: expected (d, *L, N, N) with d = {self.dim}")
        self.mass, self.csw = mass, csw
        gammas, g5 = gamma_basis(self.dim)
        self.dtype = links.dtype
        self.gammas = gammas.to(device=links.device, dtype=links.dtype)
        self.gamma5 = g5.to(device=links.device, dtype=links.dtype)
        eye = torch.eye(self.gammas.shape[-1], dtype=links.dtype, device=links.device)
        self.minus = eye - self.gammas  # (1 - gamma_mu)
        self.plus = eye + self.gammas
        if antiperiodic_time:
            links = links.clone()
            links[0, -1] = -links[0, -1]
        self.links = links
        self.transporter = Transporter(links, backend="torch" if backend == "torch" else "auto")
        self.clover = self._clover_matrix() if csw else None
        self.kernel = None
        fits = self.dim == 4 and links.shape[-1] == 3 and links.is_cuda
        if backend == "cupy" or (backend == "auto" and fits and cupy_available()):
            self.kernel = WilsonCloverKernel(links, self.gammas, self.dim + mass, self.clover)
        elif backend == "compiled" or (backend == "auto" and self.transporter.kernel is not None):
            transport = self.transporter.kernel or CompiledTransport(links)  # the hops' tables, built once
            self.kernel = CompiledWilson(transport, self.gammas, self.gamma5, self.dim + mass, self.clover)

    @property
    def kappa(self) -> float:
        """Hopping parameter :math:`1/(2(m + d))`."""
        return 1.0 / (2.0 * (self.mass + self.dim))

    def _clover_matrix(self) -> Tensor:
        r""":math:`c_{sw}\frac{i}{4}\sum_{\mu\nu}\sigma_{\mu\nu}\otimes\hat F_{\mu\nu}` per site, ``(*L, S N, S N)``."""
        s, n = self.gammas.shape[-1], self.links.shape[-1]
        total = torch.zeros((*self.links.shape[1:-2], s * n, s * n), dtype=self.dtype, device=self.links.device)
        for mu in range(self.dim):
            for nu in range(mu + 1, self.dim):
                f = clover_field_strength(self.links, mu, nu)
                sig = sigma_munu(self.gammas, mu, nu)
                # sigma and F are both antisymmetric in (mu, nu): the sum over all pairs is twice mu < nu
                total = total + 2.0 * torch.einsum("st,...ab->...satb", sig, f).reshape(total.shape)
        return self.csw * 0.25j * total

    def hop_term(self, psi: Tensor, step: int) -> Tensor:
        r"""One term of the hop: :math:`(1 - \gamma_\mu)T_{+\mu}\psi` for ``step = +(mu + 1)``,
        :math:`(1 + \gamma_\mu)T_{-\mu}\psi` for ``step = -(mu + 1)`` (:mod:`hpcflow.dirac.transport`);
        :math:`D = \text{local} - \frac12\sum \text{hop terms}`."""
        mu = abs(step) - 1
        return (self.minus[mu] if step > 0 else self.plus[mu]) @ self.transporter.hop(psi, step)

    def hop(self, psi: Tensor) -> Tensor:
        r""":math:`\sum_\mu[(1 - \gamma_\mu)U_\mu(x)\psi(x+\hat\mu) + (1 + \gamma_\mu)U_\mu(x-\hat\mu)^\dagger\psi(x-\hat\mu)]`."""
        out = torch.zeros_like(psi)
        for mu in range(self.dim):
            out = out + self.hop_term(psi, mu + 1) + self.hop_term(psi, -(mu + 1))
        return out

    def local(self, psi: Tensor) -> Tensor:
        r"""The site-diagonal part: :math:`(d + m)\psi(x)` plus the clover term."""
        out = (self.dim + self.mass) * psi
        if self.clover is not None:
            flat = psi.flatten(-2)
            out = out + (self.clover @ flat.unsqueeze(-1)).squeeze(-1).view_as(psi)
        return out

    def __call__(self, psi: Tensor) -> Tensor:
        """:math:`D\\psi` for spinors ``(B, *L, spin, colour)``."""
        if self.kernel is not None and self.kernel.accepts(psi):
            return self.kernel(psi)
        return self.local(psi) - 0.5 * self.hop(psi)

    def apply_gamma5(self, psi: Tensor) -> Tensor:
        r""":math:`\gamma_5\psi`."""
        return self.gamma5 @ psi

    def dagger(self, psi: Tensor) -> Tensor:
        r""":math:`D^\dagger\psi = \gamma_5 D\gamma_5\psi` (gamma5-hermiticity)."""
        return self.apply_gamma5(self(self.apply_gamma5(psi)))

    def normal(self, psi: Tensor) -> Tensor:
        r""":math:`D^\dagger D\psi` (hermitian positive definite for CG)."""
        return self.dagger(self(psi))
