"""Gamma method: exact autocorrelation times of AR(1) chains, derived quantities, pyerrors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpcflow.analysis.gamma import autocovariance, gamma_method


def ar1(rho: float, replicas: int, n: int, seed: int) -> np.ndarray:
    """x_{t+1} = rho x_t + sqrt(1 - rho^2) eta_t, started in equilibrium: unit variance,
    rho(t) = rho^t, tau_int = (1 + rho) / (2 (1 - rho))."""
    rng = np.random.default_rng(seed)
    eta = rng.normal(size=(replicas, n))
    x = np.empty((replicas, n))
    x[:, 0] = eta[:, 0]
    c = math.sqrt(1.0 - rho * rho)
    for t in range(1, n):
        x[:, t] = rho * x[:, t - 1] + c * eta[:, t]
    return x


@pytest.mark.parametrize("rho, replicas", [(0.8, 1), (0.8, 4), (0.5, 2), (0.95, 4)])
def test_ar1_tau_int_and_error_of_the_mean(rho: float, replicas: int) -> None:
    x = ar1(rho, replicas, 200_000 // replicas, seed=int(rho * 100) + replicas)
    r = gamma_method(x)
    tau_exact = (1 + rho) / (2 * (1 - rho))
    assert abs(r.tau_int - tau_exact) < 4 * r.tau_int_error
    sigma_exact = math.sqrt(2 * tau_exact / x.size)  # Var[mean] = 2 tau Var[x] / N, Var[x] = 1
    assert abs(r.error / sigma_exact - 1) < 4 * r.tau_int_error / (2 * r.tau_int)
    assert abs(r.value) < 4 * r.error
    assert r.window_found and r.replicas == replicas and r.n == x.size


def test_iid_data_has_tau_one_half() -> None:
    r = gamma_method(np.random.default_rng(1).normal(size=(2, 50_000)))
    assert abs(r.tau_int - 0.5) < 4 * r.tau_int_error


def test_autocovariance_matches_the_direct_sum() -> None:
    x = np.random.default_rng(2).normal(size=(3, 257))
    d = x - x.mean()
    direct = [sum((d[r, : 257 - t] * d[r, t:]).sum() for r in range(3)) / (3 * (257 - t)) for t in range(20)]
    np.testing.assert_allclose(autocovariance(d, 19), direct, rtol=1e-12)


def test_derived_quantity_error_propagation() -> None:
    """f = <a>^2 of iid N(3, 1): sigma_f = 2 |<a>| sigma_a (linear propagation)."""
    x = np.random.default_rng(3).normal(3.0, 1.0, size=(1, 40_000))
    r = gamma_method(x[..., None], lambda a: a[0] ** 2)
    assert r.value == pytest.approx(x.mean() ** 2)
    expected = 2 * abs(x.mean()) * x.std() / math.sqrt(x.size)
    assert r.error == pytest.approx(expected, rel=4 * r.tau_int_error / (2 * r.tau_int))


def test_constant_data_has_zero_error() -> None:
    r = gamma_method(np.full((2, 100), 1.5))
    assert r.value == 1.5 and r.error == 0.0


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        gamma_method(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="expected"):
        gamma_method(np.zeros(10))


def _pyerrors_obs(pe, data: np.ndarray):
    return pe.Obs(list(data), [f"ens|r{i}" for i in range(data.shape[0])])


@pytest.mark.parametrize("seed", [9, 21])
def test_agreement_with_pyerrors_on_one_replica_to_rounding(seed: int) -> None:
    """One replica: pyerrors and this module implement the same estimator, so they agree to
    rounding once the documented conventions are converted (module docstring): the same window,
    value and error; tau_int bias-corrected by (1 + (2W+1)/N)/(1 + 2 tau/N) here and by
    (1 + (2W+1)/N)/(1 + 1/N) there; its error Madras-Sokal here, Wolff's eq. (42) there."""
    pe = pytest.importorskip("pyerrors", reason="pyerrors is a test dependency (pip install .[test])")
    x = ar1(0.8, 1, 120_000, seed=seed)
    y = x**2 + 0.3 * ar1(0.5, 1, 120_000, seed=seed + 1)
    ox, oy = _pyerrors_obs(pe, x), _pyerrors_obs(pe, y)
    cases = ((gamma_method(x), ox), (gamma_method(np.stack([x, y], -1), lambda a: a[1] - a[0] ** 2), oy - ox**2))
    for ours, theirs in cases:
        theirs.gamma_method(S=1.5)
        w, n = ours.window, ours.n
        assert w == theirs.e_windowsize["ens"]
        assert ours.value == pytest.approx(theirs.value, rel=1e-13)
        assert ours.error == pytest.approx(theirs.dvalue, rel=1e-12)
        k = 1 + (2 * w + 1) / n
        tau_raw = ours.tau_int / (k - 2 * ours.tau_int / n)  # our bias correction undone
        assert theirs.e_tauint["ens"] == pytest.approx(tau_raw * k / (1 + 1 / n), rel=1e-12)
        assert theirs.e_dtauint["ens"] == pytest.approx(2 * tau_raw * math.sqrt((w + 0.5 - tau_raw) / n), rel=1e-12)
        assert ours.tau_int_error == pytest.approx(ours.tau_int * math.sqrt((4 * w + 2) / n), rel=1e-14)


@pytest.mark.parametrize("replicas", [2, 4])
def test_agreement_with_pyerrors_on_replicas(replicas: int) -> None:
    """Several replicas: fluctuations about the mean of all replicas here (Wolff), about each
    replica's own mean in pyerrors, which lowers each Gamma(t) by about (R - 1) C_F / N and so
    C_F by about (2W + 1)(R - 1) C_F / N; the difference of the errors stays within that bound
    (times 4 for the fluctuation of the replica means) and the window is the same."""
    pe = pytest.importorskip("pyerrors", reason="pyerrors is a test dependency (pip install .[test])")
    x = ar1(0.8, replicas, 120_000 // replicas, seed=9)
    y = x**2 + 0.3 * ar1(0.5, replicas, 120_000 // replicas, seed=10)
    ox, oy = _pyerrors_obs(pe, x), _pyerrors_obs(pe, y)
    cases = ((gamma_method(x), ox), (gamma_method(np.stack([x, y], -1), lambda a: a[1] - a[0] ** 2), oy - ox**2))
    for ours, theirs in cases:
        theirs.gamma_method(S=1.5)
        assert ours.window == theirs.e_windowsize["ens"]
        assert ours.value == pytest.approx(theirs.value, rel=1e-13)
        bound = 4 * (2 * ours.window + 1) * (replicas - 1) / ours.n
        assert 0 <= (ours.error / theirs.dvalue) ** 2 - 1 < bound
        assert abs(ours.tau_int / theirs.e_tauint["ens"] - 1) < bound
