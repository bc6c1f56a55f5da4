r"""Luscher's perturbative trivializing map (arXiv:0907.5491) as coefficients of the gradient-flow map.

The map from the Haar measure (:math:`t = 0`) to :math:`e^{-S}/Z` (:math:`t = 1`) transports
:math:`\rho_t \propto e^{-tS}` when its driving action solves (continuity equation with
:math:`Z = -\partial\tilde S`)

.. math::
    \Delta\tilde S_t - t\,\partial^a S\,\partial^a\tilde S_t = -S + \langle S\rangle_t .

Expanded in :math:`\beta`:

- leading order, :math:`\Delta\tilde S^{(0)} = -S + {\rm const}`: with the Wilson action
  :math:`S = -\frac{\beta}{N}\sum_P\mathrm{Re\,tr}\,U_P` and :math:`\Delta\,\mathrm{Re\,tr}\,U_P = -4C_F\,\mathrm{Re\,tr}\,U_P`,
  :math:`\tilde S^{(0)} = -\frac{\beta}{4NC_F}\sum_P\mathrm{Re\,tr}\,U_P` (U(1): :math:`N = C_F = 1`,
  :math:`-\frac\beta4\sum_P\cos\theta_P`), independent of :math:`t`;
- next-to-leading order in 2D U(1), :math:`\Delta\tilde S^{(1)} = t\,\partial S\cdot\partial\tilde S^{(0)} + {\rm const}`:
  each link lies in two plaquettes of opposite orientation, so
  :math:`\partial S\cdot\partial\tilde S^{(0)} = \frac{\beta^2}{4}\sum_l(\sin\theta_{P_1} - \sin\theta_{P_2})^2
  = \frac{\beta^2}{4}[2V - 2\sum_P\cos 2\theta_P - \sum_l\cos(\theta_{P_1} - \theta_{P_2}) + \sum_l\cos(\theta_{P_1} + \theta_{P_2})]`;
  the doubly wound plaquette (:math:`k = 16`), the figure-eights (:math:`k = 10`) and the
  rectangles (:math:`k = 6`) are eigenfunctions of :math:`\Delta`, so
  :math:`\tilde S^{(1)} = t\beta^2[\frac1{32}\sum\cos 2\theta_P + \frac1{40}\sum\cos\theta_{8} - \frac1{24}\sum\cos\theta_{R}]`
  over both orientations of the figure-eights and rectangles.

The SU(N) next-to-leading order brings, besides loops that run over a link twice and traces in
other representations (both available to the map, :mod:`.sun`), products of the traces of
neighbouring plaquettes (the Fierz identity of the generators); it is not here.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hpcflow.models.gradflow.loops import Loop
from hpcflow.models.gradflow.sun import fundamental_casimir

__all__ = ["GROUP_N", "luscher_coefficients"]

GROUP_N = {"u1": 1, "su2": 2, "su3": 3}
"""N of each gauge group (U(1) counts as N = 1 with C_F = 1)."""

_NLO_U1 = {"1x1_twice": 1 / 32, "fig8_0": 1 / 40, "fig8_1": 1 / 40, "1x2": -1 / 24, "2x1": -1 / 24}


def luscher_coefficients(group: str, beta: float, loops: list[Loop], order: str) -> tuple[Tensor, Tensor]:
    r"""``(a, b)`` with :math:`c_i(t) = a_i + b_i t` of Luscher's map at ``order`` ``"lo"`` or ``"nlo"``
    (U(1) only), over ``loops``; a loop the order needs and the list lacks is an error."""
    if group not in GROUP_N:
        raise ValueError(f"group = {group!r}: expected one of {sorted(GROUP_N)}")
    if order not in ("lo", "nlo"):
        raise ValueError(f"order = {order!r}: expected 'lo' or 'nlo'")
    if order == "nlo" and group != "u1":
        raise ValueError(f"Luscher's next-to-leading order is implemented for u1 only, not {group}; use 'luscher_lo'")
    n = GROUP_N[group]
    casimir = 1.0 if group == "u1" else fundamental_casimir(n)
    names = [lp.name for lp in loops]
    needed = {"1x1"} | (set(_NLO_U1) if order == "nlo" else set())
    missing = sorted(needed - set(names))
    if missing:
        raise ValueError(f"Luscher's {order.upper()} map needs the loops {missing} in [model].loops")
    a = torch.tensor([-beta / (4 * n * casimir) if name == "1x1" else 0.0 for name in names], dtype=torch.float64)
    b = torch.tensor([beta**2 * _NLO_U1.get(name, 0.0) if order == "nlo" else 0.0 for name in names], dtype=torch.float64)
    return a, b
