"""The exact 2D torus results (:mod:`hpcflow.theories.gauge_exact`): their infinite-volume
limits, and the U(1) topological susceptibility and 2x2 Wilson loop against HMC on a small torus,
where they differ from the infinite-volume values by many error bars."""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import quad
from scipy.special import iv

from hpcflow.analysis.gamma import gamma_method
from hpcflow.lattice.rng import ChainRNG
from hpcflow.samplers.hmc import HMC
from hpcflow.samplers.integrators import Leapfrog
from hpcflow.theories.gauge import U1Action, topological_charge, u1_mean_wilson_loop
from hpcflow.theories.gauge_exact import (
    su2_plaquette_exact,
    sun_plaquette_infinite_volume,
    u1_log_partition_function,
    u1_plaquette_exact,
    u1_topological_susceptibility_exact,
    u1_wilson_loop_exact,
)


def _phi_squared(beta: float) -> float:
    """:math:`\\langle\\phi^2\\rangle/4\\pi^2` of one plaquette angle of density :math:`\\propto e^{\\beta\\cos\\phi}`."""
    num = quad(lambda p: p * p * math.exp(beta * math.cos(p)), -math.pi, math.pi)[0]
    return num / quad(lambda p: math.exp(beta * math.cos(p)), -math.pi, math.pi)[0] / (4 * math.pi**2)


def test_infinite_volume_limits() -> None:
    for beta in (1.0, 4.0):
        assert abs(u1_plaquette_exact(beta, 10**6) - iv(1, beta) / iv(0, beta)) < 1e-12
        assert abs(su2_plaquette_exact(beta, 10**6) - iv(2, beta) / iv(1, beta)) < 1e-12
        assert abs(u1_topological_susceptibility_exact(beta, 10**4) - _phi_squared(beta)) < 1e-9
        assert abs(su2_plaquette_exact(beta, 4) - iv(2, beta) / iv(1, beta)) > 1e-3  # the torus matters at V = 4
        assert abs(sun_plaquette_infinite_volume(beta, 2) - iv(2, beta) / iv(1, beta)) < 1e-12
        assert abs(u1_wilson_loop_exact(beta, 10**6, 4) - (iv(1, beta) / iv(0, beta)) ** 4) < 1e-12
        assert abs(u1_wilson_loop_exact(beta, 36, 1) - u1_plaquette_exact(beta, 36)) < 1e-14


def test_u1_log_partition_function() -> None:
    """log Z: on the 1x1 torus the plaquette angle vanishes identically, so Z = e^beta (the
    generating function sum_n I_n = e^beta); its beta-derivative is V <cos theta_P> on a 6x6 torus;
    per plaquette it tends to log I_0 in infinite volume; at beta = 0 the Haar measure gives 0."""
    for beta in (0.5, 3.0, 6.0):
        assert abs(u1_log_partition_function(beta, 1) - beta) < 1e-12
        h = 1e-4
        slope = (u1_log_partition_function(beta + h, 36) - u1_log_partition_function(beta - h, 36)) / (2 * h)
        assert abs(slope - 36 * u1_plaquette_exact(beta, 36)) < 1e-6
        assert abs(u1_log_partition_function(beta, 10**6) / 10**6 - math.log(iv(0, beta))) < 1e-12
    assert u1_log_partition_function(0.0, 64) == 0.0


def test_u1_topological_susceptibility_against_hmc_on_4x4() -> None:
    beta, shape, chains = 4.0, (4, 4), 32
    hmc = HMC(U1Action(beta), Leapfrog(), tau=1.0, n_steps=8, rng=ChainRNG(7, range(chains)))
    state = hmc.init(math.pi * (2 * hmc.rng.uniform((2, *shape)) - 1))
    for _ in range(50):
        state, _ = hmc.step(state)
    q2, loop = [], []
    for _ in range(600):
        state, _ = hmc.step(state)
        q2.append(topological_charge(state.phi).numpy() ** 2 / 16)
        loop.append(u1_mean_wilson_loop(state.phi, 2, 2).numpy())
    r = gamma_method(np.stack(q2, 1))
    exact = u1_topological_susceptibility_exact(beta, 16)
    assert abs(r.value - exact) < 4 * r.error, (r.value, r.error, exact)
    assert abs(_phi_squared(beta) - exact) > 8 * r.error
    w = gamma_method(np.stack(loop, 1))  # the 2x2 loop covers a quarter of the torus: far from (I1/I0)^4
    assert abs(w.value - u1_wilson_loop_exact(beta, 16, 4)) < 4 * w.error
    assert abs(w.value - (iv(1, beta) / iv(0, beta)) ** 4) > 8 * w.error
