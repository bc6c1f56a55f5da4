"""Samplers as the sampling stage sees them: one adapter per ``[sampler].kind``.

An adapter builds its sampler from a run card for a block of chains (all of them, or one
rank's share) and says what it records per update (the datasets ``<kind>/<name>`` of shape
``(chain, update)``), what it adds to each measurement, how it adapts during thermalization
(with the records of every rank, so that all ranks adapt alike), and what its checkpoint holds,
with the chain axis of each entry so that the sampling stage can gather one checkpoint of all
chains and hand each rank its block again (on any number of ranks).
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor

from hpcflow.lattice.rng import ChainRNG
from hpcflow.parallel.world import World
from hpcflow.samplers.fhmc import PulledBackAction
from hpcflow.samplers.gauge_hmc import GaugeHMC
from hpcflow.samplers.hmc import HMC, HMCState, StepSizeTuner
from hpcflow.samplers.integrators import INTEGRATORS
from hpcflow.samplers.nmcmc import NMCMC, NMCMCState
from hpcflow.workflow.model_io import ModelError, flow_path, load_flow
from hpcflow.workflow.runcard import RunCard
from hpcflow.workflow.theories import theory_of

__all__ = ["CHAIN_SAMPLERS", "ChainSampler", "FHMCChains", "HMCChains", "NMCMCChains", "chain_sampler"]


class ChainSampler(abc.ABC):
    """A batch of Markov chains driven by the sampling stage."""

    kind: ClassVar[str]
    records: dict[str, str]
    """Per-update datasets (name -> HDF5 dtype), of the kind or set per instance."""
    measurements: ClassVar[dict[str, str]] = {}
    """Extra per-measurement observables (name -> HDF5 dtype)."""
    chain_axes: ClassVar[dict[str, int]]
    """Entries of :meth:`checkpoint` that hold one slice per chain, and along which axis."""
    buffers: ClassVar[float] = 10.0
    """Field-sized buffers per chain at the peak of an update (fields, momenta, forces, temporaries)."""

    def __init__(self, card: RunCard, chains: range | None = None, world: World | None = None,
                 device: torch.device | str = "cpu") -> None:
        self.card = card
        self.chains = range(card.sampler["chains"]) if chains is None else chains
        self.world = World() if world is None else world
        self.theory = theory_of(card)
        self.rng = ChainRNG(card.sampler["seed"], self.chains, device)

    def working_bytes(self) -> int:
        """Memory the chains of this rank need at the peak of an update (an estimate)."""
        field = math.prod(self.theory.field_shape()) * np.dtype(self.theory.dtype).itemsize
        return int(len(self.chains) * field * self.buffers)

    @abc.abstractmethod
    def initial(self) -> Any:
        """State of the chains before the first update."""

    @abc.abstractmethod
    def step(self, state: Any) -> tuple[Any, dict[str, Tensor]]:
        """One update of every chain; returns the new state and the records of :attr:`records`."""

    def adapt(self, records: dict[str, Tensor]) -> None:
        """Tuning hook, called after each thermalization update."""

    def measure(self, state: Any) -> dict[str, Tensor]:
        """Values of :attr:`measurements` for the current state."""
        return {}

    def physical(self, state: Any) -> tuple[Tensor, Tensor]:
        """The physical fields of the chains and their action, ``((B, ...), (B,))``: what is stored
        and measured (the state's own for samplers in field space)."""
        return state.phi, state.action

    @abc.abstractmethod
    def checkpoint(self, state: Any) -> dict[str, Any]:
        """Everything needed to continue bit for bit (the RNG states are added by the caller)."""

    @abc.abstractmethod
    def restore(self, payload: dict[str, Any]) -> Any:
        """Inverse of :meth:`checkpoint`; returns the state."""

    def summary(self, records: dict[str, np.ndarray]) -> dict[str, Any]:
        """Summary attributes for the store at the end of the run."""
        accepted = records["accepted"]
        return {"acceptance": float(accepted.mean()), "acceptance_per_chain": accepted.mean(1).tolist()}


class HMCChains(ChainSampler):
    """HMC (``kind = "hmc"``) of any theory, with optional step-size tuning during thermalization."""

    kind = "hmc"
    records = {"dH": "f8", "accepted": "i1"}
    chain_axes = {"phi": 0, "action": 0}

    def __init__(self, card: RunCard, chains: range | None = None, world: World | None = None,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(card, chains, world, device)
        s = card.sampler
        self.hmc = self.make_hmc()
        self.tuner = None
        if "target_acceptance" in s:
            self.tuner = StepSizeTuner(target=s["target_acceptance"], log_n=math.log(s["steps"]))

    def make_hmc(self) -> HMC | GaugeHMC:
        """The HMC of the card's theory."""
        return self.theory.hmc(self.rng)

    def initial(self) -> HMCState:
        return self.hmc.init(self.theory.initial(self.rng))

    def step(self, state: HMCState) -> tuple[HMCState, dict[str, Tensor]]:
        state, info = self.hmc.step(state)
        return state, {"dH": info.dH, "accepted": info.accepted}

    def adapt(self, records: dict[str, Tensor]) -> None:
        if self.tuner is not None:  # on every rank the same: the dH of all chains, in chain order
            self.hmc.n_steps = self.tuner.update(torch.cat(self.world.allgather(records["dH"].cpu())))

    def checkpoint(self, state: HMCState) -> dict[str, Any]:
        out: dict[str, Any] = {"phi": state.phi, "action": state.action, "n_steps": self.hmc.n_steps}
        if self.tuner is not None:
            out.update(tuner_log_n=self.tuner.log_n, tuner_updates=self.tuner.updates, tuner_acceptance=self.tuner.acceptance)
        return out

    def restore(self, payload: dict[str, Any]) -> HMCState:
        self.hmc.n_steps = int(payload["n_steps"])
        if self.tuner is not None:
            self.tuner.log_n, self.tuner.updates = float(payload["tuner_log_n"]), int(payload["tuner_updates"])
            self.tuner.acceptance = float(payload.get("tuner_acceptance", 0.0))
        return HMCState(phi=payload["phi"], action=payload["action"])

    def summary(self, records: dict[str, np.ndarray]) -> dict[str, Any]:
        """Acceptance and the integration the production ran with (the tuned steps and eps)."""
        s = self.card.sampler
        return {**super().summary(records), "n_steps": self.hmc.n_steps, "eps": s["tau"] / self.hmc.n_steps,
                "n_steps_card": s["steps"], "tuned": self.tuner is not None}


class FHMCChains(HMCChains):
    r"""Flow HMC (``kind = "fhmc"``): HMC in the latent fields ``z`` of a trained flow on the
    pulled-back action (:mod:`hpcflow.samplers.fhmc`), in float64. The state and the checkpoints
    hold ``z`` (a resumed chain continues bit for bit); the store holds :math:`\phi = f(z)` and
    the observables of :math:`\phi`. The chains start at draws of the flow's prior."""

    kind = "fhmc"

    def make_hmc(self) -> HMC:
        s = self.card.sampler
        flow = load_flow(self.card)
        why = flow.spec.roughness()
        if why:
            path, key = flow_path(self.card)
            raise ModelError(f"{key} = {str(path)!r}: flow HMC needs a smooth map and {why}; train an affine flow "
                             "with a smooth activation (tanh, gelu, silu) for it")
        self.pulled_back = PulledBackAction(flow.double().to(self.rng.device), self.theory.action())
        return HMC(self.pulled_back, INTEGRATORS[s["integrator"]](), tau=s["tau"], n_steps=s["steps"], rng=self.rng)

    def initial(self) -> HMCState:
        return self.hmc.init(self.rng.normal(tuple(self.card.theory["shape"])))

    def physical(self, state: HMCState) -> tuple[Tensor, Tensor]:
        return self.pulled_back.push(state.phi)


class NMCMCChains(ChainSampler):
    """Independence Metropolis with a trained model (``kind = "nmcmc"``): a coupling flow for
    phi^4, a gradient-flow map for gauge fields. Besides the log weights and accept flags it
    records the theory's :meth:`~hpcflow.workflow.theories.Theory.proposal_observables` of every
    proposal (``proposal_M``, ``proposal_e`` for phi^4; ``proposal_plaquette`` and, for U(1),
    ``proposal_Q``)."""

    kind = "nmcmc"
    measurements = {"log_w": "f8"}
    chain_axes = {"phi": 0, "action": 0, "log_q": 0, **{f"queue_{k}": 1 for k in ("phi", "log_q", "action", "log_u")}}

    def __init__(self, card: RunCard, chains: range | None = None, world: World | None = None,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(card, chains, world, device)
        s = card.sampler
        flow = load_flow(card)
        self.log_q_error = self._check_log_q(flow) if hasattr(flow, "log_q_error") else None
        self.nmcmc = NMCMC(flow, self.theory.action(), tuple(card.theory["shape"]), self.rng, chunk=s["chunk"])
        self.records = {"log_w": "f8", "accepted": "i1",
                        **{f"proposal_{k}": "f8" for k in self.theory.proposal_names}}
        self.buffers = s["chunk"] * flow.spec.proposal_buffers()  # a chunk of proposals per chain, no gradients

    def _check_log_q(self, flow: torch.nn.Module) -> float:
        r"""The spread (standard deviation over :data:`LOG_Q_DRAWS` prior draws) of the change of
        :math:`\log q` when a map that integrates a flow equation doubles its steps
        (``log_q_error``; a constant offset cancels in the Metropolis ratio). Above
        :data:`LOG_Q_TOLERANCE` the NMCMC weights would be biased by the integration error,
        which training can learn to exploit, and the run is refused. The draws use a stream of
        their own, so the chains are unchanged by the check."""
        draws = flow.prior.sample(LOG_Q_DRAWS, tuple(self.card.theory["shape"]),
                                  torch.Generator().manual_seed(self.card.sampler["seed"]), torch.float64)
        spread = float(flow.double().log_q_error(draws).std())
        if not spread <= LOG_Q_TOLERANCE:
            path, key = flow_path(self.card)
            raise ModelError(f"{key} = {str(path)!r}: its log q changes by {spread:.3g} (standard deviation over "
                             f"{LOG_Q_DRAWS} draws) when its {flow.steps} integration steps are doubled (tolerance "
                             f"{LOG_Q_TOLERANCE}): the NMCMC weights would carry that error; retrain with a larger "
                             "[model].steps")
        return spread

    def summary(self, records: dict[str, np.ndarray]) -> dict[str, Any]:
        """Acceptance, and for a map that integrates a flow equation the measured error of log q."""
        extra = {} if self.log_q_error is None else {"log_q_integration_error": self.log_q_error}
        return {**super().summary(records), **extra}

    def initial(self) -> NMCMCState:
        return self.nmcmc.init()

    def step(self, state: NMCMCState) -> tuple[NMCMCState, dict[str, Tensor]]:
        state, info = self.nmcmc.step(state)
        observed = self.theory.proposal_observables(info.proposal)
        return state, {"log_w": info.log_w, "accepted": info.accepted, **{f"proposal_{k}": v for k, v in observed.items()}}

    def measure(self, state: NMCMCState) -> dict[str, Tensor]:
        self.nmcmc.check_started(state, list(self.chains))
        return {"log_w": state.log_w}

    def checkpoint(self, state: NMCMCState) -> dict[str, Any]:
        queue = {f"queue_{k}": v for k, v in self.nmcmc.get_queue().items()}
        return {"phi": state.phi, "action": state.action, "log_q": state.log_q, **queue}

    def restore(self, payload: dict[str, Any]) -> NMCMCState:
        self.nmcmc.set_queue({k.removeprefix("queue_"): v for k, v in payload.items() if k.startswith("queue_")})
        return NMCMCState(phi=payload["phi"], action=payload["action"], log_q=payload["log_q"])


LOG_Q_DRAWS = 8
LOG_Q_TOLERANCE = 0.05
"""Largest spread of the change of log q (a map's step count doubled) that NMCMC accepts: the
maps of bench_gauge_flows that reproduce the plaquette measure 0.001-0.008 on 16^2, one that
learned to exploit the error 11."""

CHAIN_SAMPLERS: dict[str, type[ChainSampler]] = {"hmc": HMCChains, "fhmc": FHMCChains, "nmcmc": NMCMCChains}


def chain_sampler(card: RunCard, chains: range | None = None, world: World | None = None,
                  device: torch.device | str = "cpu") -> ChainSampler:
    """The adapter for ``[sampler].kind``, for ``chains`` (default all) of the ``world``'s ranks,
    with the chains on ``device``."""
    return CHAIN_SAMPLERS[card.sampler["kind"]](card, chains, world, device)
