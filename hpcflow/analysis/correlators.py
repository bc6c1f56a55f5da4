r"""Zero-momentum two-point function, effective mass and the correlation length from a cosh fit.

Primaries per configuration (see :func:`hpcflow.theories.phi4.timeslice_correlator`): the
time-slice correlator estimator :math:`c(t)` and the magnetization ``M``. The connected
:math:`G(t) = \langle c(t)\rangle - (V/L_0)(\langle M\rangle/V)^2`, the effective mass
:math:`m_{eff}(t) = \mathrm{arccosh}\frac{G(t-1) + G(t+1)}{2G(t)}` and the pole mass of the fit
:math:`G(t) = A\cosh(m(t - L_0/2))` are functions of the means, so their errors come from the
Gamma method applied to the derived quantity (autocorrelations included);
:math:`\xi = 1/m`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from hpcflow.analysis.gamma import GammaResult, gamma_method

__all__ = ["CorrelatorAnalysis", "analyze_correlator", "connected_correlator", "cosh_fit", "effective_mass"]


def connected_correlator(means: np.ndarray, volume: int) -> np.ndarray:
    """``G(t)`` from the means ``[c(0), ..., c(L0 - 1), M]`` on a lattice of ``volume`` sites."""
    l0 = means.size - 1
    return means[:l0] - (volume / l0) * (means[l0] / volume) ** 2


def effective_mass(g: np.ndarray) -> np.ndarray:
    """``m_eff(t)`` for ``t = 1 .. L0 - 2``; NaN where the cosh ratio is below 1 (noise)."""
    ratio = (g[:-2] + g[2:]) / (2.0 * g[1:-1])
    with np.errstate(invalid="ignore"):
        return np.where(ratio >= 1.0, np.arccosh(np.maximum(ratio, 1.0)), np.nan)


def cosh_fit(g: np.ndarray, sigma: np.ndarray, t_min: int, t_max: int | None = None) -> tuple[float, float, float]:
    r"""Uncorrelated least-squares fit of :math:`A\cosh(m(t - L_0/2))` on ``t_min <= t <= t_max``
    (default ``t_max = L0/2``).

    Returns ``(m, A, chi2)``; ``sigma`` are fixed weights (errors of ``G``): the covariance of the
    time slices is not used (an uncorrelated fit, so chi2/dof is not a goodness of fit); the
    error of ``m`` comes from the Gamma method on the fit as a function of the means.
    """
    l0 = g.size
    t_max = l0 // 2 if t_max is None else t_max
    t = np.arange(t_min, t_max + 1)
    if t.size < 2:
        raise ValueError(f"fit range t_min = {t_min}..{t_max} holds fewer than 2 points")
    y, w = g[t], 1.0 / sigma[t]
    ratio = (g[t_min - 1] + g[t_min + 1]) / (2.0 * g[t_min]) if t_min >= 1 else 2.0
    m0 = math.acosh(ratio) if ratio > 1.0 else 0.5
    a0 = y[-1] if y[-1] > 0 else abs(y).max()

    def residual(p: np.ndarray) -> np.ndarray:
        return (p[1] * np.cosh(p[0] * (t - l0 / 2)) - y) * w

    fit = least_squares(residual, x0=[m0, a0], xtol=1e-14, ftol=1e-14, gtol=1e-14)
    return abs(float(fit.x[0])), float(fit.x[1]), float(2.0 * fit.cost)


@dataclass(frozen=True)
class CorrelatorAnalysis:
    """``G(t)``, ``m_eff(t)`` and the cosh fit, each with Gamma-method errors."""

    g: list[GammaResult]
    m_eff: list[GammaResult | None]
    mass: GammaResult
    xi: GammaResult
    amplitude: float
    chi2_per_dof: float
    t_min: int
    t_max: int

    def to_dict(self) -> dict:
        """JSON-ready summary."""
        return {
            "G": [[r.value, r.error] for r in self.g],
            "m_eff": [None if r is None else [r.value, r.error] for r in self.m_eff],
            "fit": {
                "model": "A cosh(m (t - L0/2))",
                "correlated": False,
                "t_range": [self.t_min, self.t_max],
                "m": self.mass.to_dict(),
                "xi": self.xi.to_dict(),
                "A": self.amplitude,
                "chi2_per_dof": self.chi2_per_dof,
            },
        }


def analyze_correlator(c: np.ndarray, m: np.ndarray, volume: int, t_min: int = 1,
                       t_max: int | None = None) -> CorrelatorAnalysis:
    """Full correlator analysis.

    Arguments:
        c: time-slice correlator estimators ``(R, N_r, L0)``.
        m: magnetizations ``(R, N_r)``.
        volume: number of lattice sites.
        t_min, t_max: the fit range (``1 <= t_min < t_max <= L0/2``; ``t_max`` default ``L0/2``).
    """
    l0 = c.shape[-1]
    t_max = l0 // 2 if t_max is None else t_max
    if not 1 <= t_min < t_max <= l0 // 2:
        raise ValueError(f"fit range t_min = {t_min}, t_max = {t_max}: must satisfy 1 <= t_min < t_max <= L0/2 = {l0 // 2}")
    data = np.concatenate([c, m[..., None]], axis=-1)
    g = [gamma_method(data, lambda a, t=t: connected_correlator(a, volume)[t]) for t in range(l0)]
    g_mean = np.array([r.value for r in g])
    m_eff: list[GammaResult | None] = [None] * l0  # m_eff[t] for t = 1 .. L0 - 2
    for t, central in enumerate(effective_mass(g_mean), start=1):
        if not math.isnan(central):
            m_eff[t] = gamma_method(data, lambda a, t=t: effective_mass(connected_correlator(a, volume))[t - 1])
    sigma = np.array([r.error for r in g])
    sigma = np.where(sigma > 0, sigma, 1.0)

    def fitted_mass(a: np.ndarray) -> float:
        return cosh_fit(connected_correlator(a, volume), sigma, t_min, t_max)[0]

    mass = gamma_method(data, fitted_mass)
    xi = gamma_method(data, lambda a: 1.0 / fitted_mass(a))
    _, amplitude, chi2 = cosh_fit(g_mean, sigma, t_min, t_max)
    dof = t_max + 1 - t_min - 2
    return CorrelatorAnalysis(
        g=g,
        m_eff=m_eff,
        mass=mass,
        xi=xi,
        amplitude=amplitude,
        chi2_per_dof=chi2 / dof if dof > 0 else math.nan,
        t_min=t_min,
        t_max=t_max,
    )
