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

- next-to-leading order in 2D SU(N), with :math:`\kappa = \beta^2/(4N^2C_F)`: by the Fierz
  identity, over the two plaquettes :math:`P_1, P_2` of each link (:math:`\partial^a\mathrm{tr}P = \mathrm{tr}\,T^aG`),

  .. math::
      \partial S\cdot\partial\tilde S^{(0)} = \kappa\Big[\sum_P\big((\tfrac1N - 1)\chi_S + (1 + \tfrac1N)\chi_A
      - \tfrac1N\chi_{adj}\big) + \sum_{\nu,x}\big(\tfrac12R_\nu - \tfrac1{2N}Q_\nu - \tfrac12F_\nu
      + \tfrac1{2N}\bar Q_\nu\big)\Big] + {\rm const}

  (real parts), with :math:`R_\nu` the 1x2 rectangle along :math:`\nu` (``"2x1"`` for
  :math:`\nu = 0`), :math:`F_\nu` the figure-eight, :math:`Q_\nu = \mathrm{Re\,tr}P(x)\,\mathrm{tr}P(x+\hat\nu)`
  and :math:`\bar Q_\nu` its conjugated product (:data:`~.loops.PRODUCTS`). The characters and
  :math:`R` are eigenfunctions (:math:`-4C_r`, :math:`-6C_F`); the shared link mixes the rest in
  pairs, :math:`\Delta Q = -(8C_F + \frac1N)Q + R`, :math:`\Delta\bar Q = -\lambda\bar Q - F`,
  :math:`\Delta F = -\lambda F - \bar Q` (:math:`\lambda = 8C_F - \frac1N`), so
  :math:`\tilde S^{(1)} = t\sum_i b_iW_i` solves a 2x2 system per pair (:func:`_sun_nlo`). In SU(2)
  :math:`\chi_A = 1` drops out.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hpcflow.models.gradflow.loops import Loop
from hpcflow.models.gradflow.sun import casimir, fundamental_casimir

__all__ = ["GROUP_N", "luscher_coefficients"]

GROUP_N = {"u1": 1, "su2": 2, "su3": 3}
"""N of each gauge group (U(1) counts as N = 1 with C_F = 1)."""


def _sun_nlo(n: int) -> dict[str, float]:
    r"""The NLO coefficients :math:`b_i/\kappa` of 2D SU(``n``) (module docstring)."""
    cf = fundamental_casimir(n)
    out = {"1x1@sym": -(1 / n - 1) / (4 * casimir("sym", n)), "1x1@adj": (1 / n) / (4 * casimir("adj", n))}
    if n > 2:
        out["1x1@anti"] = -(1 + 1 / n) / (4 * casimir("anti", n))
    q = 1 / (2 * n * (8 * cf + 1 / n))  # Delta(q Q + r R) = -Q/(2N) + R/2
    lam = 8 * cf - 1 / n  # [[lam, 1], [1, lam]] (qbar, f) = (-1/(2N), 1/2)
    qbar, f = (-lam / (2 * n) - 0.5) / (lam**2 - 1), (lam / 2 + 1 / (2 * n)) / (lam**2 - 1)
    for nu, rectangle in ((0, "2x1"), (1, "1x2")):
        out |= {rectangle: (q - 0.5) / (6 * cf), f"1x1*1x1_{nu}": q, f"1x1*1x1bar_{nu}": qbar, f"fig8_{nu}": f}
    return out


_NLO_U1 = {"1x1_twice": 1 / 32, "fig8_0": 1 / 40, "fig8_1": 1 / 40, "1x2": -1 / 24, "2x1": -1 / 24}


def luscher_coefficients(group: str, beta: float, loops: list[Loop], order: str) -> tuple[Tensor, Tensor]:
    r"""``(a, b)`` with :math:`c_i(t) = a_i + b_i t` of Luscher's map at ``order`` ``"lo"`` or ``"nlo"``
    over ``loops`` (for SU(N) the family ``"luscher_nlo"``); a loop the order needs and the list
    lacks is an error."""
    if group not in GROUP_N:
        raise ValueError(f"group = {group!r}: expected one of {sorted(GROUP_N)}")
    if order not in ("lo", "nlo"):
        raise ValueError(f"order = {order!r}: expected 'lo' or 'nlo'")
    n = GROUP_N[group]
    casimir_f = 1.0 if group == "u1" else fundamental_casimir(n)
    # S~1 = t sum_i b_i W_i: U(1) in units of beta^2, SU(N) of kappa = beta^2 / (4 N^2 C_F)
    nlo = {name: beta**2 * b for name, b in _NLO_U1.items()} if group == "u1" else \
        {name: beta**2 / (4 * n * n * casimir_f) * b for name, b in _sun_nlo(n).items()}
    names = [lp.name for lp in loops]
    needed = {"1x1"} | (set(nlo) if order == "nlo" else set())
    missing = sorted(needed - set(names))
    if missing:
        raise ValueError(f"Luscher's {order.upper()} map needs the loops {missing} in [model].loops")
    a = torch.tensor([-beta / (4 * n * casimir_f) if name == "1x1" else 0.0 for name in names], dtype=torch.float64)
    b = torch.tensor([nlo.get(name, 0.0) if order == "nlo" else 0.0 for name in names], dtype=torch.float64)
    return a, b
