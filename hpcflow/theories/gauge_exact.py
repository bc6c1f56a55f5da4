r"""Exact results of 2D lattice gauge theory on a periodic torus of ``V`` plaquettes (Wilson
action, shared/PHYSICS.md): the plaquettes of a 2D torus are independent up to one global
constraint, so the partition function is a sum over characters of one-plaquette integrals.

- U(1): :math:`Z = \sum_n I_n(\beta)^V`; a Wilson loop around :math:`A` plaquettes shifts their
  characters, :math:`\langle\cos\theta_C\rangle = \sum_n I_n^{V-A}I_{n+1}^A/\sum_n I_n^V`.
- SU(2), :math:`S = -\frac\beta2\sum_P\mathrm{tr}\,U_P`: :math:`Z = \sum_{k\ge1} w_k^V`,
  :math:`w_k = \int dU\,\frac{\chi_j(U)}{d_j}e^{\frac\beta2\mathrm{tr}U} = \frac{2I_k(\beta)}{\beta}`,
  :math:`k = 2j + 1`.
- SU(N) in infinite volume: the plaquettes are independent, :math:`\langle\frac1N\mathrm{Re\,tr}\,U_P\rangle
  = \partial_\beta\log\int dU\,e^{\frac\beta N\mathrm{Re\,tr}U}`, the one-link integral over the
  eigenvalue angles with the Weyl density :math:`\prod_{j<k}|e^{i\alpha_j} - e^{i\alpha_k}|^2`
  (a periodic trapezoid rule, exact to rounding for smooth integrands); a Wilson loop of area
  :math:`A` plaquettes is that value to the power :math:`A`. On a 16x16 torus the other
  characters enter as (plaquette)^256: below 1e-50 for these couplings.
- U(1) with a theta term and the geometric charge :math:`Q = \frac{1}{2\pi}\sum_P\mathrm{wrap}(\theta_P)`:
  :math:`Z(\vartheta) = \sum_n f_n(\vartheta)^V`,
  :math:`f_n(\vartheta) = \frac1{2\pi}\int_{-\pi}^{\pi}d\phi\,e^{\beta\cos\phi}\cos(\nu\phi)`,
  :math:`\nu = n + \vartheta/2\pi`, and :math:`\langle Q^2\rangle = -Z''(0)/Z(0)`.

Sums run over the terms that matter (the Bessel functions fall faster than exponentially in
the index) and are evaluated relative to the largest term, so no power overflows.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["su2_plaquette_exact", "sun_plaquette_infinite_volume", "u1_log_partition_function",
           "u1_plaquette_exact", "u1_topological_susceptibility_exact", "u1_wilson_loop_exact"]

_ORDERS = 60


def _bessel(orders: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """The ``orders`` whose exponentially scaled :math:`I_n(\beta)` is not zero, and those values."""
    from scipy.special import ive

    values = ive(orders, beta)
    keep = values > 0
    return orders[keep], values[keep]


def _weighted_mean(log_weights: np.ndarray, values: np.ndarray) -> float:
    w = np.exp(log_weights - log_weights.max())
    return float((w * values).sum() / w.sum())


def u1_log_partition_function(beta: float, volume: int) -> float:
    r""":math:`\log Z = \log\sum_n I_n(\beta)^V` with the Haar measure normalised to one: the bound
    :math:`-\log Z` below the reverse-KL loss :math:`E_q[\log q + S]` of any map (with :math:`\log q`
    relative to the Haar measure; relative to :math:`d\theta` on the :math:`2V` links add
    :math:`2V\log 2\pi`), so :math:`KL(q\|p) = E_q[\log q + S] + \log Z` exactly."""
    n, i_n = _bessel(np.arange(-_ORDERS, _ORDERS + 1), beta)
    terms = volume * (np.log(i_n) + beta)  # ive(n, beta) = I_n(beta) e^{-beta}
    return float(np.logaddexp.reduce(terms))


def u1_plaquette_exact(beta: float, volume: int) -> float:
    r""":math:`\langle\cos\theta_P\rangle = \frac1V\partial_\beta\log Z = \sum_n I_n^V\frac{I_n'}{I_n}\big/\sum_n I_n^V`,
    :math:`I_n' = (I_{n-1} + I_{n+1})/2`. ``V -> inf``: :math:`I_1/I_0`."""
    from scipy.special import ive

    n, i_n = _bessel(np.arange(-_ORDERS, _ORDERS + 1), beta)
    return _weighted_mean(volume * np.log(i_n), 0.5 * (ive(n - 1, beta) + ive(n + 1, beta)) / i_n)


def u1_wilson_loop_exact(beta: float, volume: int, area: int) -> float:
    r""":math:`\langle\cos\theta_C\rangle` of a loop around ``area`` plaquettes (module docstring);
    ``V -> inf``: :math:`(I_1/I_0)^A`."""
    from scipy.special import ive

    n, i_n = _bessel(np.arange(-_ORDERS, _ORDERS + 1), beta)
    return _weighted_mean(volume * np.log(i_n), (ive(n + 1, beta) / i_n) ** area)


def su2_plaquette_exact(beta: float, volume: int) -> float:
    r""":math:`\langle\frac12\mathrm{tr}\,U_P\rangle = \frac1V\partial_\beta\log Z = \sum_k w_k^V\frac{w_k'}{w_k}\big/\sum_k w_k^V`,
    :math:`\frac{w_k'}{w_k} = \frac{I_{k-1} + I_{k+1}}{2I_k} - \frac1\beta`. ``V -> inf``: :math:`I_2/I_1`."""
    from scipy.special import ive

    k, i_k = _bessel(np.arange(1, _ORDERS + 1), beta)
    return _weighted_mean(volume * np.log(i_k), (ive(k - 1, beta) + ive(k + 1, beta)) / (2 * i_k) - 1 / beta)


def sun_plaquette_infinite_volume(beta: float, n: int, points: int = 96) -> float:
    r""":math:`\langle\frac1N\mathrm{Re\,tr}\,U_P\rangle` of 2D SU(N) in infinite volume (Weyl integration
    over ``N - 1`` eigenvalue angles on a grid of ``points`` per angle)."""
    grid = 2 * np.pi * np.arange(points) / points
    angles = np.stack(np.meshgrid(*[grid] * (n - 1), indexing="ij"), -1).reshape(-1, n - 1)
    angles = np.concatenate([angles, -angles.sum(1, keepdims=True)], 1)
    eig = np.exp(1j * angles)
    weight = np.ones(len(angles))
    for j in range(n):
        for k in range(j + 1, n):
            weight *= np.abs(eig[:, j] - eig[:, k]) ** 2
    re_tr = np.cos(angles).sum(1) / n
    log_b = beta * re_tr
    return _weighted_mean(log_b + np.log(np.maximum(weight, 1e-300)), re_tr)


def u1_topological_susceptibility_exact(beta: float, volume: int) -> float:
    r""":math:`\langle Q^2\rangle/V` of the geometric charge: with :math:`f_n, f_n', f_n''` the
    one-plaquette integral and its :math:`\vartheta`-derivatives at :math:`\vartheta = 0`,
    :math:`\langle Q^2\rangle = -\sum_n f_n^V[V f_n''/f_n + V(V-1)(f_n'/f_n)^2]\big/\sum_n f_n^V`.
    ``V -> inf``: :math:`\langle\phi^2\rangle/4\pi^2` with :math:`\phi` of density :math:`\propto e^{\beta\cos\phi}`."""
    from scipy.integrate import quad

    def integral(fn) -> float:  # with e^{beta (cos phi - 1)}: the common factor e^beta cancels
        return quad(lambda p: math.exp(beta * (math.cos(p) - 1)) * fn(p), -math.pi, math.pi, limit=400)[0] / (2 * math.pi)

    orders = range(-int(beta) - 25, int(beta) + 26)
    f = np.array([integral(lambda p, n=n: math.cos(n * p)) for n in orders])
    df = np.array([-integral(lambda p, n=n: p * math.sin(n * p)) / (2 * math.pi) for n in orders])
    ddf = np.array([-integral(lambda p, n=n: p * p * math.cos(n * p)) / (2 * math.pi) ** 2 for n in orders])
    keep = f > 0
    f, df, ddf = f[keep], df[keep], ddf[keep]
    q2 = -_weighted_mean(volume * np.log(f), volume * ddf / f + volume * (volume - 1) * (df / f) ** 2)
    return q2 / volume
