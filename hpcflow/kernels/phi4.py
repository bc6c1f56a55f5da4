r"""The compiled molecular dynamics of phi^4 (``csrc/phi4.h``): a schedule of
:mod:`hpcflow.samplers.integrators` run with one pass over memory per drift-kick move.

The arithmetic is that of :class:`~hpcflow.samplers.integrators.ForceMoves` with
:meth:`Phi4Action.force <hpcflow.theories.phi4.Phi4Action.force>` operation for operation (an add
with ``alpha`` is one fused multiply-add, as in torch's vectorized CPU kernels; the neighbour sum
in the same order), so the chains agree bitwise with the torch path where torch's kernels take
their vectorized path (tested), and within rounding otherwise.
"""

from __future__ import annotations

from functools import lru_cache

from torch import Tensor

from hpcflow.kernels import compiled
from hpcflow.kernels.dirac import neighbour_table
from hpcflow.samplers.integrators import ForceMoves

__all__ = ["Phi4Moves"]


@lru_cache(maxsize=8)
def _rows(shape: tuple[int, ...]) -> Tensor:
    """The neighbouring rows ``(R, 2(d-1))`` of the rows of the last axis (what the kernel walks)."""
    return neighbour_table(shape[:-1])


class Phi4Moves:
    """Runs a schedule for the phi^4 action: compiled for CPU float32/float64 fields without
    autograd, the torch :class:`ForceMoves` otherwise.

    Arguments:
        beta, lam: the couplings of :class:`~hpcflow.theories.phi4.Phi4Action`.
        force: its force (the fallback).
    """

    def __init__(self, beta: float, lam: float, force) -> None:
        self.beta, self.lam = beta, lam
        self.reference = ForceMoves(force)
        self.ext = compiled()

    def accepts(self, phi: Tensor) -> bool:
        """Whether the compiled kernel runs ``phi`` ``(B, *L)``."""
        return (self.ext is not None and phi.device.type == "cpu" and 3 <= phi.dim() <= 5 and not phi.requires_grad
                and phi.dtype.is_floating_point and phi.dtype.itemsize in (4, 8))

    def run(self, phi: Tensor, pi: Tensor, first_kick: float, moves: list[tuple[float, float]]) -> tuple[Tensor, Tensor]:
        """``(phi, pi)`` at the end of the schedule (new tensors; the inputs stay intact)."""
        if not self.accepts(phi) or pi.requires_grad:
            return self.reference.run(phi, pi, first_kick, moves)
        flat = (phi.shape[0], -1)
        out_phi, out_pi = self.ext.phi4_md(phi.reshape(flat).contiguous(), pi.reshape(flat).contiguous(),
                                           _rows(tuple(phi.shape[1:])), self.beta, 4.0 * self.lam, first_kick, moves)
        return out_phi.view(phi.shape), out_pi.view(pi.shape)
