r"""The base distribution of the flows: :math:`r(z) = \prod_x N(z_x; 0, 1)`."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hpcflow.lattice.rng import ChainRNG

__all__ = ["NormalPrior"]


class NormalPrior:
    r"""Independent unit Gaussians on every site.

    :math:`\log r(z) = -\frac12\sum_x z_x^2 - \frac V2 \log 2\pi`, per configuration ``(B,)``.
    """

    def log_prob(self, z: Tensor) -> Tensor:
        volume = z[0].numel()
        return -0.5 * (z * z).flatten(1).sum(1) - 0.5 * volume * math.log(2 * math.pi)

    def sample(self, n: int, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        """``n`` draws of shape ``(n, *shape)`` from one generator, on the generator's device."""
        return torch.randn((n, *shape), generator=generator, dtype=dtype, device=generator.device)

    def draw(self, rng: ChainRNG, shape: tuple[int, ...]) -> Tensor:
        """One draw of shape ``(B, *shape)`` per chain, each from its own stream, float64."""
        return rng.normal(shape)
