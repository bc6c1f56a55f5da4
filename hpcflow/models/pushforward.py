r"""The density of a bijective map of prior draws, shared by the gauge models.

A model :math:`f` with ``prior`` (``sample``, ``log_prob``), ``forward(x0) -> (x, log det J)``
and ``inverse(x) -> (x0, log det J at x0)`` has
:math:`\log q(x) = \log q_0(f^{-1}(x)) - \log\det J(f^{-1}(x))`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["Pushforward"]


class Pushforward:
    """``push``, ``log_prob`` and ``sample`` from a model's ``forward``, ``inverse`` and ``prior``."""

    prior: Any

    def push(self, field0: Tensor) -> tuple[Tensor, Tensor]:
        """``(x, log q(x))`` for prior draws ``field0``."""
        field, logdet = self(field0)  # type: ignore[operator]
        return field, self.prior.log_prob(field0) - logdet

    def log_prob(self, field: Tensor) -> Tensor:
        r""":math:`\log q` of given configurations (through the inverse)."""
        field0, logdet = self.inverse(field)  # type: ignore[attr-defined]
        return self.prior.log_prob(field0) - logdet

    def sample(self, batch: int, shape: tuple[int, ...], generator: torch.Generator,
               dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
        """``(x, log q)``: ``batch`` prior draws on the lattice ``shape`` pushed through the map."""
        return self.push(self.prior.sample(batch, shape, generator, dtype))
