r"""Rational-quadratic spline coupling (Durkan et al. 2019) with linear tails.

On :math:`[-B, B]` the map is a monotone rational-quadratic spline with ``K`` bins: widths and
heights from softmaxes (each at least ``min_bin`` of the interval), interior knot derivatives
from softplus (at least ``min_derivative``), derivative 1 at :math:`\pm B`. Outside, the map is
the identity, so it is continuous with a continuous derivative everywhere. Inputs are clipped to
:math:`[-B, B]` before any spline arithmetic, so no finite input gives a NaN (values or
gradients). In bin :math:`k`, with :math:`\xi = (x - x_k)/w_k`, :math:`s_k = h_k/w_k`:

.. math::
    y = y_k + \frac{h_k[s_k\xi^2 + d_k\xi(1-\xi)]}{s_k + (d_{k+1} + d_k - 2s_k)\xi(1-\xi)},\quad
    \frac{dy}{dx} = \frac{s_k^2[d_{k+1}\xi^2 + 2s_k\xi(1-\xi) + d_k(1-\xi)^2]}
                         {[s_k + (d_{k+1} + d_k - 2s_k)\xi(1-\xi)]^2}.

The inverse solves the quadratic for :math:`\xi` in its numerically stable form.

References:
    | Durkan, Bekasov, Murray, Papamakarios, arXiv:1906.04032
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor

from hpcflow.models.flows.coupling import CouplingLayer

__all__ = ["SplineCoupling", "rational_quadratic_spline"]


def _knots(raw: Tensor, bound: float, min_bin: float) -> tuple[Tensor, Tensor]:
    """Bin sizes and knot positions from unnormalized logits ``(..., K)``."""
    k = raw.shape[-1]
    size = 2.0 * bound * (min_bin + (1.0 - min_bin * k) * torch.softmax(raw, -1))
    interior = torch.cumsum(size, -1)[..., :-1] - bound
    end = torch.full_like(size[..., :1], bound)
    return size, torch.cat([-end, interior, end], -1)  # the ends exactly at -B and B


def rational_quadratic_spline(
    x: Tensor,
    widths: Tensor,
    heights: Tensor,
    derivatives: Tensor,
    bound: float,
    inverse: bool = False,
    min_bin: float = 1e-3,
    min_derivative: float = 1e-3,
) -> tuple[Tensor, Tensor]:
    """Apply the spline (or its inverse) element-wise.

    Arguments:
        x: inputs ``(...)``.
        widths, heights: bin logits ``(..., K)``.
        derivatives: knot derivative logits: ``(..., K - 1)`` for the interior knots (derivative 1
            at both ends of the interval, continuous with the identity tails), or ``(..., K + 1)`` for all of
            them (a circular spline passes equal first and last ones).
        bound: half-width ``B`` of the spline interval.
        inverse: apply the inverse map.

    Returns:
        ``(y, log dy/dx)`` of the map applied (for the inverse, the log-derivative of the inverse).
    """
    k = widths.shape[-1]
    if k * min_bin >= 1.0:
        raise ValueError(f"{k} bins of minimal size {min_bin} do not fit")
    w, xk = _knots(widths, bound, min_bin)
    h, yk = _knots(heights, bound, min_bin)
    d = min_derivative + F.softplus(derivatives)
    if derivatives.shape[-1] == k - 1:
        d = F.pad(d, (1, 1), value=1.0)
    elif derivatives.shape[-1] != k + 1:
        raise ValueError(f"{derivatives.shape[-1]} knot derivatives for {k} bins: expected {k - 1} or {k + 1}")
    inside = (x >= -bound) & (x <= bound)
    xc = x.clamp(-bound, bound)
    edges = yk if inverse else xk
    idx = (xc.unsqueeze(-1) >= edges[..., 1:k]).sum(-1, keepdim=True)

    def at(t: Tensor, offset: int = 0) -> Tensor:
        return t.gather(-1, idx + offset).squeeze(-1)

    x_lo, y_lo, w_k, h_k, d_lo, d_hi = at(xk), at(yk), at(w), at(h), at(d), at(d, 1)
    s = h_k / w_k
    if inverse:
        dy = xc - y_lo
        a = h_k * (s - d_lo) + dy * (d_hi + d_lo - 2.0 * s)
        b = h_k * d_lo - dy * (d_hi + d_lo - 2.0 * s)
        c = -s * dy
        disc = (b * b - 4.0 * a * c).clamp(min=0.0)
        xi = (2.0 * c / (-b - torch.sqrt(disc))).clamp(0.0, 1.0)
        out = x_lo + xi * w_k
    else:
        xi = (xc - x_lo) / w_k
    one_m = xi * (1.0 - xi)
    den = s + (d_hi + d_lo - 2.0 * s) * one_m
    log_deriv = 2.0 * torch.log(s) + torch.log(d_hi * xi * xi + 2.0 * s * one_m + d_lo * (1.0 - xi) ** 2) - 2.0 * torch.log(den)
    if inverse:
        return torch.where(inside, out, x), torch.where(inside, -log_deriv, torch.zeros_like(x))
    out = y_lo + h_k * (s * xi * xi + d_lo * one_m) / den
    return torch.where(inside, out, x), torch.where(inside, log_deriv, torch.zeros_like(x))


class SplineCoupling(CouplingLayer):
    """Rational-quadratic spline coupling layer; the conditioner gives ``3K - 1`` numbers per site.

    Equivariant form: the spline of :math:`-\\phi_P` is reflected (:math:`g(y) \\to -g(-y)`: bin
    widths, heights and knot derivatives reversed) and averaged with that of :math:`+\\phi_P`,
    which makes the map odd.

    Arguments:
        bins: number of bins ``K`` (at least 2).
        bound: spline interval :math:`[-B, B]`.
        (others as :class:`~hpcflow.models.flows.coupling.CouplingLayer`.)
    """

    params_per_site: ClassVar[int] = 0  # set per instance from bins

    def __init__(self, parity: int, hidden: list[int], kernel: int, equivariant: bool,
                 activation: str = "leaky_relu", bins: int = 8, bound: float = 5.0) -> None:
        if bins < 2:
            raise ValueError(f"bins = {bins}: a spline needs at least 2 bins")
        if bound <= 0:
            raise ValueError(f"bound = {bound}: must be > 0")
        self.bins, self.bound = bins, bound
        self.params_per_site = 3 * bins - 1
        super().__init__(parity, hidden, kernel, equivariant, activation)

    def _split(self, p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        k = self.bins
        return p[:, :k], p[:, k : 2 * k], p[:, 2 * k :]

    def symmetrize(self, plus: Tensor, minus: Tensor) -> Tensor:
        reflected = torch.cat([q.flip(1) for q in self._split(minus)], 1)
        return 0.5 * (plus + reflected)

    def transform(self, x: Tensor, params: Tensor, inverse: bool) -> tuple[Tensor, Tensor]:
        w, h, d = (q.movedim(1, -1) for q in self._split(params))
        return rational_quadratic_spline(x, w, h, d, self.bound, inverse=inverse)
