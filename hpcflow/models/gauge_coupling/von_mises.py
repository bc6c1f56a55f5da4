r"""The von Mises distribution of one plaquette angle at coupling :math:`\beta`, the law of every
plaquette of 2D U(1) with the Wilson action :math:`S = -\beta\sum_x\cos P_x` on an infinite (or
open) lattice:

.. math::
    p_\beta(P) = \frac{e^{\beta\cos P}}{2\pi I_0(\beta)}, \qquad
    F_\beta(P) = \int_{-\pi}^{P} p_\beta = \frac{P + \pi}{2\pi}
        + \frac{1}{\pi}\sum_{n\ge 1}\frac{I_n(\beta)}{I_0(\beta)}\frac{\sin nP}{n},

the series from :math:`e^{\beta\cos P} = I_0(\beta) + 2\sum_n I_n(\beta)\cos nP`, cut where
:math:`I_n/I_0` falls below :data:`_CUT`, summed by Clenshaw's recurrence. The inverse CDF starts
from the cubic Hermite interpolation in :math:`u` between :data:`_KNOTS` + 1 tabulated quantiles
(exact values and slopes :math:`dP/du = 1/p_\beta`) and refines by Newton steps kept inside the
bracket of the two quantiles around it, to :data:`_TOLERANCE` in :math:`F`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from scipy.special import ive
from torch import Tensor

__all__ = ["VonMises"]

_CUT = 1e-18
_TOLERANCE = 1e-14
_SWEEPS = 100
_KNOTS = 64


@lru_cache(maxsize=16)
def _bessel_ratios(beta: float) -> tuple[float, ...]:
    """:math:`I_n(\\beta)/I_0(\\beta)` for :math:`n = 1, 2, \\dots` down to :data:`_CUT`."""
    n = np.arange(1, 1000)
    ratios = ive(n, beta) / ive(0, beta)
    return tuple(ratios[: max(1, int(np.argmax(ratios < _CUT)))])


class VonMises:
    """:math:`p_\\beta`, :math:`F_\\beta` and :math:`F_\\beta^{-1}` on :math:`[-\\pi, \\pi]`.

    Arguments:
        beta: the coupling, at least 0.
    """

    def __init__(self, beta: float) -> None:
        if not beta >= 0:
            raise ValueError(f"beta = {beta}: the von Mises plaquette map needs beta >= 0")
        self.beta = float(beta)
        self.log_norm = math.log(2 * math.pi) + math.log(ive(0, self.beta)) + self.beta
        self._weights = [r / n for n, r in enumerate(_bessel_ratios(self.beta), 1)]
        grid = torch.arange(_KNOTS + 1, dtype=torch.float64) / _KNOTS
        self._quantiles = self._solve(grid, torch.full_like(grid, -math.pi), torch.full_like(grid, math.pi),
                                      torch.zeros_like(grid))
        self._slopes = (-self.log_density(self._quantiles)).exp() / _KNOTS  # dP/du per knot interval

    def log_density(self, angle: Tensor) -> Tensor:
        return self.beta * torch.cos(angle) - self.log_norm

    def cdf(self, angle: Tensor) -> Tensor:
        # Clenshaw: sum_n w_n sin(n P) = b_1 sin P with b_n = w_n + 2 cos P b_{n+1} - b_{n+2}
        two_cos = 2 * torch.cos(angle)
        b1, b2 = torch.zeros_like(angle), torch.zeros_like(angle)
        for w in reversed(self._weights):
            b1, b2 = w + two_cos * b1 - b2, b1
        return (angle + math.pi) / (2 * math.pi) + b1 * torch.sin(angle) / math.pi

    def icdf(self, u: Tensor) -> Tensor:
        """The angle :math:`P` with :math:`F_\\beta(P) = u`, for ``u`` in ``[0, 1]``."""
        u = u.clamp(0.0, 1.0)
        k = (u * _KNOTS).floor().clamp(max=_KNOTS - 1).long()
        quantiles, slopes = self._quantiles.to(u.device, u.dtype), self._slopes.to(u.device, u.dtype)
        lo, hi = quantiles[k], quantiles[k + 1]
        t = u * _KNOTS - k
        hermite = ((2 * t**3 - 3 * t**2 + 1) * lo + (t**3 - 2 * t**2 + t) * slopes[k]
                   + (-2 * t**3 + 3 * t**2) * hi + (t**3 - t**2) * slopes[k + 1])
        return self._solve(u, lo, hi, hermite.clamp(lo, hi))

    def _solve(self, u: Tensor, lo: Tensor, hi: Tensor, angle: Tensor) -> Tensor:
        """Newton steps for :math:`F(P) = u` from ``angle``, bisecting where a step leaves ``[lo, hi]``;
        each sweep works on the angles not yet converged."""
        shape = u.shape
        u, lo, hi, angle = (t.flatten().clone() for t in (u, lo, hi, angle))
        todo = torch.arange(len(u), device=u.device)
        for _ in range(_SWEEPS):
            residual = self.cdf(angle[todo]) - u[todo]
            open_ = residual.abs() >= _TOLERANCE
            if not bool(open_.any()):
                return angle.reshape(shape)
            todo, residual = todo[open_], residual[open_]
            now = angle[todo]
            low = torch.where(residual < 0, now, lo[todo])
            high = torch.where(residual > 0, now, hi[todo])
            step = now - residual / self.log_density(now).exp()
            angle[todo] = torch.where((step >= low) & (step <= high), step, 0.5 * (low + high))
            lo[todo], hi[todo] = low, high
        raise RuntimeError(f"the von Mises inverse CDF at beta = {self.beta} did not converge in {_SWEEPS} sweeps "
                           f"(residual {float(residual.abs().max()):.3g})")
