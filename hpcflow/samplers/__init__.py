"""Markov-chain samplers over a batch of chains."""

from hpcflow.samplers.hmc import HMC, HMCState, StepInfo, StepSizeTuner
from hpcflow.samplers.integrators import INTEGRATORS, Integrator, Leapfrog, Omelyan

__all__ = sorted(
    ["HMC", "HMCState", "INTEGRATORS", "Integrator", "Leapfrog", "Omelyan", "StepInfo", "StepSizeTuner"]
)
