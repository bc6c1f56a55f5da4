r"""Calibration of a flow's zero-mode map (:class:`~hpcflow.models.flows.zero_mode.ZeroModeMap`)
against the target distribution of the magnetization, by short flow-HMC runs.

Reverse KL fits a flow's many short-distance modes and leaves its one zero mode too narrow: the
latent zero mode of the target then has several times the prior's variance, and in flow HMC
(trajectory length 1) :math:`M` moves slowly. Each round of the calibration runs flow HMC with the
current flow (``thermalization`` trajectories with step-size tuning, then ``trajectories`` whose
:math:`M/V` are kept), fits the zero-mode map to those :math:`M/V` by maximum likelihood
(:meth:`~hpcflow.models.flows.zero_mode.ZeroModeMap.fit`), with the variance of the mean entering
the layer measured on prior draws, and carries the chains over to the new latent variables
(:math:`z = f^{-1}(\phi)`). A later round starts from chains that already move faster. Flow HMC is
exact for any map, so the calibration decides only the autocorrelation; the calibrated flow is
fixed before a production chain starts.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
from torch import nn

from hpcflow.lattice.rng import ChainRNG
from hpcflow.lattice.sublattice import SplitField
from hpcflow.models.flows.zero_mode import ZeroModeMap
from hpcflow.samplers.fhmc import PulledBackAction
from hpcflow.samplers.hmc import HMC, StepSizeTuner
from hpcflow.samplers.integrators import Leapfrog
from hpcflow.theories.action import Action

__all__ = ["calibrate_zero_mode"]


def _input_variance(flow: nn.Module, shape: tuple[int, ...], generator: torch.Generator, draws: int) -> float:
    """Variance of the mean that the prior's draws have on entering the last layer."""
    field = SplitField.split(flow.prior.sample(draws, shape, generator, torch.float64))
    with torch.no_grad():
        for layer in flow.layers[:-1]:
            field, _ = layer(field)
    return float((ZeroModeMap.mean(field) ** 2).mean())


def calibrate_zero_mode(flow: nn.Module, action: Action, shape: tuple[int, ...], *, seed: int,
                        trajectories: int, chains: int = 16, thermalization: int = 50, rounds: int = 3,
                        draws: int = 2048, target_acceptance: float = 0.9,
                        device: torch.device | str = "cpu") -> dict[str, Any] | None:
    """Fit the flow's last layer, a :class:`ZeroModeMap`, in place (module docstring).

    Returns the record of the rounds (the fitted parameters, the flow-HMC acceptance and the
    second moment of :math:`M/V`) and the seconds it took, or ``None`` for a flow without a zero-mode map or ``trajectories = 0``.
    """
    layers = getattr(flow, "layers", None)
    if not layers or not isinstance(layers[-1], ZeroModeMap) or trajectories == 0:
        return None
    t0 = time.perf_counter()
    work = copy.deepcopy(flow).double().to(device)
    pulled_back = PulledBackAction(work, action)
    rng = ChainRNG(seed, range(chains), device)
    hmc = HMC(pulled_back, Leapfrog(), tau=1.0, n_steps=8, rng=rng)
    tuner = StepSizeTuner(target=target_acceptance, log_n=math.log(8))
    generator = torch.Generator(device).manual_seed(seed)
    state = hmc.init(rng.normal(shape))
    record: list[dict[str, Any]] = []
    for _ in range(rounds):
        means, accepted = [], []
        for k in range(thermalization + trajectories):
            state, info = hmc.step(state)
            if k < thermalization:
                hmc.n_steps = tuner.update(info.dH)
            else:
                phi, _ = pulled_back.push(state.phi)
                means.append(phi.flatten(1).mean(1))
                accepted.append(info.accepted.double().mean())
        m = torch.stack(means)
        log_likelihood = work.layers[-1].fit(_input_variance(work, shape, generator, draws), m)
        with torch.no_grad():
            state = hmc.init(work.inverse(phi)[0])  # the same fields in the new latent variables
        record.append({"acceptance": float(torch.stack(accepted).mean()), "n_steps": hmc.n_steps,
                       "variance_m": float((m ** 2).mean()), "log_likelihood": log_likelihood,
                       **{name: float(p) for name, p in work.layers[-1].named_parameters()}})
    layers[-1].load_state_dict(work.layers[-1].state_dict())  # into the flow's own dtype and device
    return {"rounds": record, "trajectories": trajectories, "thermalization": thermalization, "chains": chains,
            "seed": seed, "seconds": time.perf_counter() - t0}
