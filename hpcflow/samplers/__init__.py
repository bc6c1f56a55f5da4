"""Markov-chain samplers over a batch of chains."""

from hpcflow.samplers.fhmc import PulledBackAction
from hpcflow.samplers.gauge_hmc import GaugeHMC
from hpcflow.samplers.hmc import HMC, HMCState, StepInfo, StepSizeTuner, metropolis
from hpcflow.samplers.integrators import INTEGRATORS, Integrator, Leapfrog, Omelyan
from hpcflow.samplers.nmcmc import NMCMC

__all__ = [
    "GaugeHMC",
    "HMC",
    "HMCState",
    "INTEGRATORS",
    "Integrator",
    "Leapfrog",
    "NMCMC",
    "Omelyan",
    "PulledBackAction",
    "StepInfo",
    "StepSizeTuner",
    "metropolis",
]
