r"""Gamma method for Monte Carlo errors with autocorrelations (Wolff 2004).

For primary observables :math:`a_\alpha` measured on ``R`` replicas (independent chains) of
``N_r`` measurements each, and a derived quantity :math:`F = f(\bar a)`:

- projected fluctuations :math:`\delta_i = \sum_\alpha f_\alpha (a_{i\alpha} - \bar a_\alpha)`, with
  :math:`f_\alpha = \partial f/\partial\bar a_\alpha` by central differences of step
  :math:`\sqrt{\Gamma_{\alpha\alpha}(0)/N}`;
- :math:`\Gamma(t) = \frac{1}{N - Rt}\sum_r\sum_{i=1}^{N_r - t}\delta^r_i\delta^r_{i+t}`,
  :math:`\rho(t) = \Gamma(t)/\Gamma(0)`, :math:`\tau_{int}(W) = \frac12 + \sum_{t=1}^W\rho(t)`;
- automatic window: the first ``W`` with :math:`g(W) = e^{-W/\tau_W} - \tau_W/\sqrt{WN} < 0`,
  :math:`\tau_W = S/\ln\frac{2\tau_{int}(W)+1}{2\tau_{int}(W)-1}`, ``S = 1.5`` by default;
- bias-corrected :math:`C_F = \Gamma(0) + 2\sum_{t=1}^W\Gamma(t)` (each :math:`\Gamma(t)` raised by
  :math:`C_F/N`), :math:`\sigma_F^2 = C_F/N = 2\tau_{int}\Gamma(0)/N`;
- :math:`\delta\tau_{int} = \tau_{int}\sqrt{(4W + 2)/N}` (Madras-Sokal).

Conventions where the ``pyerrors`` package differs (tested against it): fluctuations are taken
about the mean of all replicas (pyerrors: about each replica's own mean, which lowers
:math:`C_F` by about :math:`(2W+1)(R-1)C_F/N`); the bias correction raises :math:`\Gamma(0)` too,
:math:`\tau_{int} = \tau_W(1 + (2W+1)/N)/(1 + 2\tau_W/N)` (pyerrors divides by :math:`1 + 1/N`);
the error of :math:`\tau_{int}` is Madras-Sokal's (pyerrors: Wolff's eq. (42),
:math:`2\tau_W\sqrt{(W + 1/2 - \tau_W)/N}`); derivatives by central differences (exact for
quadratic ``f``; pyerrors differentiates automatically). On one replica the value, the error and
the window agree to rounding.

References:
    | U. Wolff, Comput. Phys. Commun. 156 (2004) 143, hep-lat/0306017
    | N. Madras, A. D. Sokal, J. Stat. Phys. 50 (1988) 109
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["GammaResult", "autocovariance", "gamma_method"]

Derived = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class GammaResult:
    """Result of a Gamma-method analysis.

    Attributes:
        value: :math:`F = f(\\bar a)`.
        error: its standard error including autocorrelations.
        tau_int: integrated autocorrelation time (in units of measurements).
        tau_int_error: Madras-Sokal error of ``tau_int``.
        window: summation window ``W``; ``window_found`` is False if ``g(W)`` never turned negative.
        rho: normalized autocorrelation function :math:`\\rho(t)`, ``t = 0 .. len(rho) - 1``.
        n: total number of measurements (all replicas).
        replicas: number of replicas.
    """

    value: float
    error: float
    tau_int: float
    tau_int_error: float
    window: int
    window_found: bool
    rho: np.ndarray
    n: int
    replicas: int

    def to_dict(self, rho_points: int = 0) -> dict:
        """JSON-ready summary; ``rho_points`` leading values of rho are included."""
        out = {
            "value": self.value,
            "error": self.error,
            "tau_int": self.tau_int,
            "tau_int_error": self.tau_int_error,
            "window": self.window,
            "window_found": self.window_found,
            "n": self.n,
            "replicas": self.replicas,
        }
        if rho_points:
            out["rho"] = self.rho[:rho_points].tolist()
        return out


def autocovariance(delta: np.ndarray, t_max: int) -> np.ndarray:
    r""":math:`\Gamma(t)` for ``t = 0 .. t_max`` of fluctuations ``delta`` ``(R, N_r)`` (mean removed).

    Sums over replicas and normalizes by :math:`N - Rt`; computed with zero-padded FFTs.
    """
    replicas, n_r = delta.shape
    size = 1 << int(math.ceil(math.log2(2 * n_r)))
    f = np.fft.rfft(delta, n=size, axis=1)
    lagged = np.fft.irfft(f * f.conj(), n=size, axis=1)[:, : t_max + 1].sum(0)
    return lagged / (replicas * (n_r - np.arange(t_max + 1)))


def _gradient(f: Derived, mean: np.ndarray, step: np.ndarray) -> np.ndarray:
    grad = np.zeros_like(mean)
    for a in range(mean.size):
        if step[a] == 0:
            continue
        e = np.zeros_like(mean)
        e[a] = step[a]
        grad[a] = (f(mean + e) - f(mean - e)) / (2.0 * step[a])
    return grad


def _window(rho: np.ndarray, n: int, s: float) -> tuple[int, bool]:
    tau = 0.5 + np.cumsum(rho[1:])  # tau[W - 1] = tau_int(W)
    for w in range(1, rho.size):
        t = tau[w - 1]
        if t <= 0.5:
            return w, True
        tau_w = s / math.log((2.0 * t + 1.0) / (2.0 * t - 1.0))
        if math.exp(-w / tau_w) - tau_w / math.sqrt(w * n) < 0.0:
            return w, True
    return rho.size - 1, False


def gamma_method(data: np.ndarray, f: Derived | None = None, s: float = 1.5) -> GammaResult:
    r"""Value, error and :math:`\tau_{int}` of a primary or derived observable.

    Arguments:
        data: ``(R, N_r)`` for one primary observable, or ``(R, N_r, A)`` for ``A`` primaries;
            rows are replicas (independent chains of equal length), columns Monte Carlo time.
        f: derived quantity of the ``A`` means (array ``(A,)`` -> float); identity if omitted.
        s: Wolff's ``S`` parameter of the automatic window (1.5; 1 to 2 is sensible).

    Example:
        >>> x = np.random.default_rng(0).normal(size=(4, 10_000))
        >>> r = gamma_method(x)
        >>> abs(r.tau_int - 0.5) < 4 * r.tau_int_error
        True
    """
    a = np.asarray(data, dtype=np.float64)
    if a.ndim == 2:
        a = a[..., None]
        if f is None:
            f = lambda m: float(m[0])  # noqa: E731
    if a.ndim != 3:
        raise ValueError(f"data has shape {np.shape(data)}: expected (R, N_r) or (R, N_r, A)")
    if f is None:
        raise ValueError("several primaries need a derived quantity f")
    replicas, n_r, _ = a.shape
    if n_r < 4:
        raise ValueError(f"{n_r} measurements per replica: the Gamma method needs at least 4")
    n = replicas * n_r
    mean = a.mean((0, 1))
    fluct = a - mean
    step = np.sqrt((fluct**2).mean((0, 1)) / n)
    value = float(f(mean))
    delta = fluct @ _gradient(f, mean, step)
    gamma = autocovariance(delta, n_r // 2)
    if gamma[0] <= 0.0:  # constant data, or f flat at the mean
        return GammaResult(value, 0.0, 0.5, 0.0, 0, True, np.ones(1), n, replicas)
    window, found = _window(gamma / gamma[0], n, s)
    c_f = gamma[0] + 2.0 * gamma[1 : window + 1].sum()
    gamma = gamma + c_f / n  # Wolff's bias correction of Gamma(t)
    c_f = gamma[0] + 2.0 * gamma[1 : window + 1].sum()
    tau = float(c_f / (2.0 * gamma[0]))
    return GammaResult(
        value=value,
        error=math.sqrt(max(c_f, 0.0) / n),
        tau_int=tau,
        tau_int_error=tau * math.sqrt((4 * window + 2) / n),
        window=window,
        window_found=found,
        rho=gamma / gamma[0],
        n=n,
        replicas=replicas,
    )
