r"""Neural Markov-chain Monte Carlo: independence Metropolis with flow proposals.

Each chain proposes :math:`\phi' = f(z')`, :math:`z' \sim r` from its own random stream (``r``
the model's base distribution: Gaussian latents of a coupling flow, Haar-random links of a
gradient-flow map), and
accepts with :math:`\min(1, w(\phi')/w(\phi))`, :math:`\log w = -S(\phi) - \log q(\phi)`. The
chain is exact for any flow; the flow only sets the acceptance. Proposals are computed ``chunk``
steps ahead for all chains in one flow call (bounded memory: ``chunk x B`` fields), in float64.
A proposal whose log weight is not finite (NaN or +-inf) is rejected; a chain whose first
proposal has one starts with weight zero and accepts its first finite proposal (its own
stream decides, not the other chains), and a chain that has none by its first measurement
stops the run (:class:`NonFiniteWeights`).
Per chain the draws come in the order ``z_1, u_1, z_2, u_2, ...`` whatever the chunk size, and
the queue of pending proposals is part of the checkpointed state, so a resumed chain is
bitwise identical.

References:
    | Albergo, Kanwar, Shanahan, arXiv:1904.12072
    | Del Debbio, Marsh Rossney, Wilson, arXiv:2105.12481
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from hpcflow.lattice.rng import ChainRNG
from torch import nn

from hpcflow.theories.action import Action

__all__ = ["NMCMC", "NMCMCInfo", "NMCMCState", "NonFiniteWeights"]


class NonFiniteWeights(RuntimeError):
    """Chains that have not drawn a single proposal with a finite weight."""


@dataclass(frozen=True)
class NMCMCState:
    """Current fields ``(B, ...)``, their action and model log-density ``(B,)``."""

    phi: Tensor
    action: Tensor
    log_q: Tensor

    @property
    def log_w(self) -> Tensor:
        """Log importance weight of the current fields."""
        return -self.action - self.log_q


@dataclass(frozen=True)
class NMCMCInfo:
    """Per-chain outcome of one update: the proposal ``(B, ...)``, its log weight and acceptance ``(B,)``."""

    proposal: Tensor
    log_w: Tensor
    accepted: Tensor


class NMCMC:
    """Independence Metropolis sampler over a batch of chains.

    Arguments:
        flow: the proposal density, a model of :mod:`hpcflow.models.registry` (evaluated in float64,
            without gradients, on the device of ``rng``).
        action: the target action.
        shape: lattice shape ``(L0, L1)`` (the model's prior lays out the fields on it).
        rng: per-chain random streams.
        chunk: update steps whose proposals are computed together.
    """

    def __init__(self, flow: nn.Module, action: Action, shape: tuple[int, ...], rng: ChainRNG, chunk: int = 64) -> None:
        if chunk < 1:
            raise ValueError(f"chunk = {chunk}: must be >= 1")
        self.flow = flow.double().eval().to(rng.device)
        self.action = action
        self.shape = shape
        self.rng = rng
        self.chunk = chunk
        self.queue: dict[str, Tensor] = {}

    def _refill(self) -> None:
        b = len(self.rng)
        latents, log_u = [], torch.empty((self.chunk, b), dtype=torch.float64, device=self.rng.device)
        for t in range(self.chunk):
            latents.append(self.flow.prior.draw(self.rng, self.shape))
            log_u[t] = torch.log(self.rng.uniform())
        z = torch.stack(latents)
        with torch.no_grad():
            phi, log_q = self.flow.push(z.flatten(0, 1))
        self.queue = {
            "phi": phi.view_as(z),
            "log_q": log_q.view(self.chunk, b),
            "action": self.action(phi).view(self.chunk, b),
            "log_u": log_u,
        }

    def _next(self) -> dict[str, Tensor]:
        if not self.queue or self.queue["phi"].shape[0] == 0:
            self._refill()
        head = {k: v[0] for k, v in self.queue.items()}
        self.queue = {k: v[1:] for k, v in self.queue.items()}
        return head

    def init(self) -> NMCMCState:
        """Start every chain at its first proposal; one with a non-finite weight gets weight zero
        (action ``+inf``, ``log_q`` 0), so that the chain accepts its first finite proposal."""
        p = self._next()
        bad = ~torch.isfinite(-p["action"] - p["log_q"])
        action = torch.where(bad, torch.full_like(p["action"], math.inf), p["action"])
        return NMCMCState(phi=p["phi"], action=action, log_q=torch.where(bad, torch.zeros_like(p["log_q"]), p["log_q"]))

    @staticmethod
    def check_started(state: NMCMCState, chains: list[int]) -> None:
        """Raise :class:`NonFiniteWeights` if a chain has accepted no finite-weight proposal yet."""
        stuck = [c for c, ok in zip(chains, torch.isfinite(state.log_w).tolist()) if not ok]
        if stuck:
            raise NonFiniteWeights(
                f"chains {stuck}: every proposal so far had a non-finite log weight (NaN or inf in the flow "
                "or the action); retrain the flow (lower [training].lr) or raise [sampler].thermalization"
            )

    def step(self, state: NMCMCState) -> tuple[NMCMCState, NMCMCInfo]:
        """One independence-Metropolis update of every chain; non-finite proposals are rejected."""
        p = self._next()
        log_w = -p["action"] - p["log_q"]
        accepted = torch.isfinite(log_w) & (p["log_u"] < log_w - state.log_w)
        mask = accepted.view(-1, *([1] * (p["phi"].dim() - 1)))
        new = NMCMCState(
            phi=torch.where(mask, p["phi"], state.phi),
            action=torch.where(accepted, p["action"], state.action),
            log_q=torch.where(accepted, p["log_q"], state.log_q),
        )
        return new, NMCMCInfo(proposal=p["phi"], log_w=log_w, accepted=accepted)

    def get_queue(self) -> dict[str, Tensor]:
        """Pending proposals, for a checkpoint."""
        return {k: v.clone() for k, v in self.queue.items()}

    def set_queue(self, queue: dict[str, Tensor]) -> None:
        """Restore pending proposals saved by :meth:`get_queue`."""
        self.queue = dict(queue)
