r"""Circular rational-quadratic splines: smooth bijections of the circle (Rezende et al.,
arXiv:2002.02428).

The rational-quadratic spline of :func:`~hpcflow.models.flows.spline.rational_quadratic_spline`
on :math:`[-\pi, \pi]` with ``K`` bins, the end knots fixed at :math:`\pm\pi` and one derivative
shared by both ends, so that the map and its derivative are continuous across
:math:`\pi \equiv -\pi`: a :math:`C^1` diffeomorphism of the circle with
:math:`\log h'` exact per angle. A site carries ``3K`` logits: ``K`` bin widths, ``K`` bin
heights, ``K`` knot derivatives (the first is also the last). All logits zero is the identity
(equal bins, every derivative 1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hpcflow.models.flows.spline import rational_quadratic_spline

__all__ = ["circular_spline", "wrap_angle"]

_MIN_DERIVATIVE = 1e-3
_IDENTITY = math.log(math.expm1(1.0 - _MIN_DERIVATIVE))
"""Shift of the derivative logits so that a zero logit is a knot derivative of exactly 1."""


def wrap_angle(angle: Tensor) -> Tensor:
    r"""``angle`` modulo :math:`2\pi`, into :math:`[-\pi, \pi)`."""
    return torch.remainder(angle + math.pi, 2 * math.pi) - math.pi


def circular_spline(angle: Tensor, logits: Tensor, inverse: bool = False) -> tuple[Tensor, Tensor]:
    r"""Apply the spline (or its inverse) to angles in :math:`[-\pi, \pi]`.

    Arguments:
        angle: ``(...)``.
        logits: ``(..., 3K)``.
        inverse: apply the inverse map.

    Returns:
        ``(h(angle), log h'(angle))``, for the inverse :math:`(h^{-1}, \log (h^{-1})')`.
    """
    k = logits.shape[-1] // 3
    widths, heights, derivatives = logits[..., :k], logits[..., k : 2 * k], logits[..., 2 * k :] + _IDENTITY
    ends = torch.cat([derivatives, derivatives[..., :1]], -1)
    return rational_quadratic_spline(angle, widths, heights, ends, math.pi, inverse=inverse,
                                     min_derivative=_MIN_DERIVATIVE)
