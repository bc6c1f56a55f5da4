r"""The flow-time dependence of the loop coefficients :math:`c_i(t)`, :math:`t \in [0, 1]`.

- :class:`AffineCoefficients`: :math:`c_i(t) = a_i + b_i t`, model A of Bacchio et al.
  (two parameters per loop). Luscher's perturbative maps are of this form (:mod:`.luscher`).
- :class:`SplineCoefficients`: the natural cubic spline through values at ``knots`` equally
  spaced flow times, model B (``knots`` parameters per loop). The spline is linear in the knot
  values, :math:`c_i(t) = \sum_k v_{ik} b_k(t)` with the cardinal splines :math:`b_k`, so its
  basis at each flow time the integrator visits is computed once.

Both start at zero (the identity map) and take Luscher's coefficients through :meth:`set_affine`.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["COEFFICIENTS", "AffineCoefficients", "SplineCoefficients"]


class AffineCoefficients(nn.Module):
    """:math:`c_i(t) = a_i + b_i t`: ``weight[:, 0]`` is :math:`a`, ``weight[:, 1]`` is :math:`b`."""

    def __init__(self, n_loops: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_loops, 2, dtype=torch.float64))

    def forward(self, t: float) -> Tensor:
        """``(n_loops,)`` coefficients at flow time ``t``."""
        return self.weight[:, 0] + t * self.weight[:, 1]

    @torch.no_grad()
    def set_affine(self, a: Tensor, b: Tensor) -> None:
        """Set :math:`c_i(t) = a_i + b_i t` exactly."""
        self.weight.copy_(torch.stack([a, b], 1))


@lru_cache(maxsize=256)
def _cardinal_basis(knots: int, t: float) -> tuple[float, ...]:
    """:math:`b_k(t)`, the natural cubic splines through the unit vectors at ``knots`` equally spaced times."""
    from scipy.interpolate import CubicSpline

    grid = np.linspace(0.0, 1.0, knots)
    return tuple(float(v) for v in CubicSpline(grid, np.eye(knots), bc_type="natural")(t))


class SplineCoefficients(nn.Module):
    """:math:`c_i(t)` the natural cubic spline through ``values[i, k]`` at :math:`t_k = k/(K-1)`."""

    def __init__(self, n_loops: int, knots: int = 10) -> None:
        super().__init__()
        if knots < 2:
            raise ValueError(f"knots = {knots}: need at least 2")
        self.knots = knots
        self.values = nn.Parameter(torch.zeros(n_loops, knots, dtype=torch.float64))

    def forward(self, t: float) -> Tensor:
        """``(n_loops,)`` coefficients at flow time ``t``."""
        basis = torch.tensor(_cardinal_basis(self.knots, float(t)), dtype=self.values.dtype, device=self.values.device)
        return self.values @ basis

    @torch.no_grad()
    def set_affine(self, a: Tensor, b: Tensor) -> None:
        """Knot values of :math:`a_i + b_i t` (a natural cubic spline reproduces a line exactly)."""
        grid = torch.linspace(0.0, 1.0, self.knots, dtype=torch.float64)
        self.values.copy_(a[:, None] + b[:, None] * grid)


COEFFICIENTS: dict[str, type[nn.Module]] = {"affine": AffineCoefficients, "spline": SplineCoefficients}
"""``[model].coefficients``: the flow-time dependence, by name."""
