"""The interface every lattice action offers to samplers, flows and analysis."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Tensor

__all__ = ["Action"]


@runtime_checkable
class Action(Protocol):
    """A Euclidean lattice action :math:`S[\\phi]` for a batch of configurations.

    ``action(phi)`` returns ``S`` of shape ``(B,)``; ``action.force(phi)`` returns
    :math:`\\partial S / \\partial \\phi` with the shape of ``phi``.
    """

    def __call__(self, phi: Tensor) -> Tensor: ...

    def force(self, phi: Tensor) -> Tensor: ...
