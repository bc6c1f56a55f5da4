"""The exact 2D torus results (:mod:`hpcflow.theories.gauge_exact`): their infinite-volume
limits, and the U(1) topological susceptibility against HMC on a small torus, where it differs
from the infinite-volume value by many error bars."""

from __future__ import annotations

import math

import numpy as np
from scipy.integrate import quad
from scipy.special import iv

from hpcflow.analysis.gamma import gamma_method
from hpcflow.lattice.rng import ChainRNG
from hpcflow.samplers.hmc import HMC
from hpcflow.samplers.integrators import Leapfrog
from hpcflow.theories.gauge import U1Action, topological_charge
from hpcflow.theories.gauge_exact import su2_plaquette_exact, u1_plaquette_exact, u1_topological_susceptibility_exact


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


def test_u1_topological_susceptibility_against_hmc_on_4x4() -> None:
    beta, shape, chains = 4.0, (4, 4), 32
    hmc = HMC(U1Action(beta), Leapfrog(), tau=1.0, n_steps=8, rng=ChainRNG(7, range(chains)))
    state = hmc.init(math.pi * (2 * hmc.rng.uniform((2, *shape)) - 1))
    for _ in range(50):
        state, _ = hmc.step(state)
    q2 = []
    for _ in range(600):
        state, _ = hmc.step(state)
        q2.append(topological_charge(state.phi).numpy() ** 2 / 16)
    r = gamma_method(np.stack(q2, 1))
    exact = u1_topological_susceptibility_exact(beta, 16)
    assert abs(r.value - exact) < 4 * r.error, (r.value, r.error, exact)
    assert abs(_phi_squared(beta) - exact) > 8 * r.error
