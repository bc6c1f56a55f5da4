"""Independent random-number streams per Markov chain.

Every run has one integer seed. Chain ``c`` gets its own ``torch.Generator`` seeded from
``numpy.random.SeedSequence(seed, spawn_key=(c,))``: streams depend on the chain index only, not
on how chains are batched or distributed over ranks, so a chain's history is the same whichever
process owns it, and a checkpoint of the generator states makes a restarted run bitwise identical.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

__all__ = ["ChainRNG", "chain_seed", "seeded_generator"]


def chain_seed(seed: int, chain: int) -> int:
    """64-bit seed of chain ``chain`` derived from the run seed (``SeedSequence`` spawn key)."""
    state = np.random.SeedSequence(seed, spawn_key=(chain,)).generate_state(2, np.uint32)
    return int(state[0]) | (int(state[1]) << 32)


def seeded_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``. CPU and CUDA generators are
    different algorithms: the same seed gives other numbers on each device type."""
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


class ChainRNG:
    """One ``torch.Generator`` per chain, on the device of the chains; draws are stacked along
    the batch axis and made on that device.

    Arguments:
        seed: the run seed (``>= 0``).
        chains: global indices of the chains held here (e.g. ``range(B)``).
        device: where the chains live (``cpu`` by default).
    """

    def __init__(self, seed: int, chains: range | list[int], device: torch.device | str = "cpu") -> None:
        self.chains = list(chains)
        self.device = torch.device(device)
        self.generators = [seeded_generator(chain_seed(seed, c), self.device) for c in self.chains]

    def __len__(self) -> int:
        return len(self.chains)

    def normal(self, shape: tuple[int, ...], dtype: torch.dtype = torch.float64) -> Tensor:
        """Standard normal draws of shape ``(B, *shape)``, row ``b`` from chain ``b``'s stream."""
        out = torch.empty((len(self), *shape), dtype=dtype, device=self.device)
        for row, g in zip(out, self.generators):
            torch.randn(shape, generator=g, dtype=dtype, device=self.device, out=row)
        return out

    def uniform(self, shape: tuple[int, ...] = (), dtype: torch.dtype = torch.float64) -> Tensor:
        """Uniform draws in ``[0, 1)`` of shape ``(B, *shape)``, row ``b`` from chain ``b``'s stream."""
        out = torch.empty((len(self), *shape), dtype=dtype, device=self.device)
        for row, g in zip(out.view(len(self), -1), self.generators):
            row.uniform_(generator=g)
        return out

    def get_state(self) -> list[Tensor]:
        """Generator states (one byte tensor per chain) for a checkpoint."""
        return [g.get_state() for g in self.generators]

    def set_state(self, states: list[Tensor]) -> None:
        """Restore states saved by :meth:`get_state`; the chain count (and the device type, whose
        generator the states belong to) must match."""
        if len(states) != len(self.generators):
            raise ValueError(
                f"checkpoint holds RNG states of {len(states)} chains, this run has {len(self)}"
            )
        if states and states[0].numel() != self.generators[0].get_state().numel():
            raise ValueError(f"checkpoint holds RNG states of another device type than {self.device.type}")
        for g, s in zip(self.generators, states):
            g.set_state(s)
