r"""Scalar observables of :math:`\phi^4` with Gamma-method errors, per chain and combined.

From per-configuration primaries ``M`` (magnetization), ``e`` (see
:func:`hpcflow.theories.phi4.energy_density`) and ``S`` (action), each ``(R, N_r)``:

- ``abs_magnetization`` :math:`\langle|M|\rangle/V`; ``magnetization`` :math:`\langle M\rangle/V`;
- ``susceptibility`` :math:`\chi = (\langle M^2\rangle - \langle M\rangle^2)/V`;
- ``energy`` :math:`E = \frac1d\sum_\mu G(\hat\mu) = \langle e\rangle - (\langle M\rangle/V)^2`;
- ``action_density`` :math:`\langle S\rangle/V`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from hpcflow.analysis.gamma import GammaResult, gamma_method

__all__ = ["DISPLAY_NAMES", "OBSERVABLES", "Definition", "display_name", "estimate", "gauge_definitions", "gauge_observables",
           "phi4_definitions", "phi4_observables", "phi4_reweighted"]

OBSERVABLES = ("abs_magnetization", "magnetization", "susceptibility", "energy", "action_density")

DISPLAY_NAMES = {
    "abs_magnetization": "<|M|>/V", "magnetization": "<M>/V", "susceptibility": "chi", "energy": "E",
    "action_density": "<S>/V", "plaquette": "plaquette", "topological_charge": "<Q>",
    "topological_susceptibility": "chi_t", "wilson_1x2": "W(1x2)", "wilson_2x2": "W(2x2)",
}
"""The observables' names in every table and plot, in the order they are listed."""


def display_name(key: str) -> str:
    """The name of observable ``key`` in tables and plots."""
    return DISPLAY_NAMES.get(key, key)


Definition = tuple[np.ndarray, Callable[[Any], Any] | None]
"""An observable as the Gamma method takes it: primaries ``(R, N_r)`` or ``(R, N_r, A)`` and the
derived function of their means (``None``: the mean itself). The function uses arithmetic only,
so it applies to ``pyerrors.Obs`` alike (:mod:`hpcflow.io.formats.pyerrors_export`)."""


def phi4_definitions(m: np.ndarray, e: np.ndarray, s: np.ndarray, volume: int) -> dict[str, Definition]:
    r"""The :data:`OBSERVABLES` of :math:`\phi^4` as :data:`Definition` s (module docstring)."""
    v = float(volume)
    return {
        "abs_magnetization": (np.abs(m) / v, None),
        "magnetization": (m / v, None),
        "susceptibility": (np.stack([m, m * m], -1), lambda a: (a[1] - a[0] ** 2) / v),
        "energy": (np.stack([e, m], -1), lambda a: a[0] - (a[1] / v) ** 2),
        "action_density": (s / v, None),
    }


def estimate(definitions: dict[str, Definition]) -> dict[str, GammaResult]:
    """Gamma-method results of ``definitions``, the rows of the primaries as replicas."""
    return {name: gamma_method(data, f) for name, (data, f) in definitions.items()}


def phi4_observables(m: np.ndarray, e: np.ndarray, s: np.ndarray, volume: int) -> dict[str, GammaResult]:
    """Gamma-method results for :data:`OBSERVABLES`, treating the rows as replicas."""
    return estimate(phi4_definitions(m, e, s, volume))


def phi4_reweighted(log_w: np.ndarray, m: np.ndarray, e: np.ndarray, volume: int) -> dict[str, GammaResult]:
    r"""Importance-sampling estimates from flow proposals :math:`\phi_i \sim q` with weights
    :math:`w_i = e^{-S(\phi_i)}/q(\phi_i)`: :math:`\langle O\rangle = \langle wO\rangle_q/\langle w\rangle_q`.

    Arguments are ``(R, N_r)`` per proposal. Weights are rescaled by :math:`e^{-\max\log w}`
    (ratios are unchanged); a non-finite log weight is a rejected proposal, weight zero. Errors
    by the Gamma method on the ratio estimators.
    """
    v = float(volume)
    finite = np.isfinite(log_w)
    if not finite.any():
        raise ValueError("no proposal has a finite log weight: nothing to reweight")
    w = np.where(finite, np.exp(np.where(finite, log_w, 0.0) - np.max(log_w[finite])), 0.0)
    m, e = np.where(finite, m, 0.0), np.where(finite, e, 0.0)
    data = np.stack([w, w * np.abs(m), w * m, w * m * m, w * e], -1)

    def mean(a: np.ndarray, k: int) -> float:
        return a[k] / a[0]

    return {
        "abs_magnetization": gamma_method(data, lambda a: mean(a, 1) / v),
        "susceptibility": gamma_method(data, lambda a: (mean(a, 3) - mean(a, 2) ** 2) / v),
        "energy": gamma_method(data, lambda a: mean(a, 4) - (mean(a, 2) / v) ** 2),
    }


def gauge_definitions(
    plaquette: np.ndarray, action: np.ndarray, volume: int, charge: np.ndarray | None = None,
    loops: dict[str, np.ndarray] | None = None,
) -> dict[str, Definition]:
    r"""The observables of a gauge ensemble as :data:`Definition` s: ``plaquette`` (mean
    :math:`\frac1N\mathrm{Re\,tr}\,U_P` per configuration), ``action_density``
    :math:`\langle S\rangle/V`, the Wilson loops of ``loops`` (``wilson_1x2``, ... : their means);
    with the U(1) charge also ``topological_charge`` :math:`\langle Q\rangle` and
    ``topological_susceptibility`` :math:`\chi_t = (\langle Q^2\rangle - \langle Q\rangle^2)/V`."""
    out: dict[str, Definition] = {"plaquette": (plaquette, None), "action_density": (action / float(volume), None),
                                  **{name: (values, None) for name, values in (loops or {}).items()}}
    if charge is not None:
        out["topological_charge"] = (charge, None)
        out["topological_susceptibility"] = (np.stack([charge, charge * charge], -1),
                                             lambda a: (a[1] - a[0] ** 2) / float(volume))
    return out


def gauge_observables(
    plaquette: np.ndarray, action: np.ndarray, volume: int, charge: np.ndarray | None = None,
    loops: dict[str, np.ndarray] | None = None,
) -> dict[str, GammaResult]:
    """Gamma-method results of :func:`gauge_definitions`, rows as replicas."""
    return estimate(gauge_definitions(plaquette, action, volume, charge, loops))
