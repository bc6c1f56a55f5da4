r"""The base distributions of the gradient-flow maps: the Haar measure on every link.

Each has ``sample(n, shape, generator, dtype)`` (one stream), ``draw(rng, shape)`` (one stream per
chain, :class:`~hpcflow.lattice.rng.ChainRNG`) and ``log_prob(field)`` per configuration, the
interface of :class:`~hpcflow.models.flows.prior.NormalPrior`; ``shape`` is the 2D lattice.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from hpcflow.lattice.rng import ChainRNG
from hpcflow.theories.gauge import reunitarize

__all__ = ["HaarSUN", "HaarU1"]


class HaarU1:
    r"""Uniform angles :math:`\theta\in[-\pi, \pi)` on the ``2 V`` links; density with respect to
    :math:`d\theta`: :math:`\log q_0 = -2V\log 2\pi`."""

    def log_prob(self, theta: Tensor) -> Tensor:
        return torch.full((theta.shape[0],), -theta[0].numel() * math.log(2 * math.pi), dtype=theta.dtype, device=theta.device)

    def sample(self, n: int, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        u = torch.rand((n, len(shape), *shape), generator=generator, dtype=dtype, device=generator.device)
        return math.pi * (2.0 * u - 1.0)

    def draw(self, rng: ChainRNG, shape: tuple[int, ...]) -> Tensor:
        return math.pi * (2.0 * rng.uniform((len(shape), *shape)) - 1.0)


class HaarSUN:
    r"""Haar-random SU(N) links (complex Gaussian matrices orthonormalized,
    :func:`~hpcflow.theories.gauge.reunitarize`); density with respect to the normalized Haar
    measure: :math:`\log q_0 = 0`."""

    def __init__(self, n: int) -> None:
        self.n = n

    def log_prob(self, u: Tensor) -> Tensor:
        return torch.zeros(u.shape[0], dtype=u.real.dtype, device=u.device)

    def sample(self, n: int, shape: tuple[int, ...], generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        real = torch.randn((n, len(shape), *shape, self.n, self.n, 2), generator=generator, dtype=dtype,
                           device=generator.device)
        return reunitarize(torch.view_as_complex(real))

    def draw(self, rng: ChainRNG, shape: tuple[int, ...]) -> Tensor:
        real = rng.normal((len(shape), *shape, self.n, self.n, 2))
        return reunitarize(torch.view_as_complex(real))
