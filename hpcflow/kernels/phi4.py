r"""The compiled molecular dynamics of phi^4 (``csrc/phi4.h``): a schedule of
:mod:`hpcflow.samplers.integrators` run with one pass over memory per drift-kick move.

The arithmetic is that of :class:`~hpcflow.samplers.integrators.ForceMoves` with
:meth:`Phi4Action.force <hpcflow.theories.phi4.Phi4Action.force>` operation for operation (an add
with ``alpha`` is one fused multiply-add, as in torch's vectorized CPU kernels; the neighbour sum
in the same order), so the chains agree bitwise with the torch path where torch's kernels take
their vectorized path (tested), and within rounding otherwise.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hpcflow.kernels import compiled
from hpcflow.kernels.dirac import cpu_neighbour_table

__all__ = ["Phi4Moves"]


class Phi4Moves:
    """Runs a schedule for the phi^4 action: compiled for CPU float32/float64 fields without
    autograd, by ``reference`` otherwise.

    Arguments:
        beta, lam: the couplings of :class:`~hpcflow.theories.phi4.Phi4Action`.
        reference: the torch runner of its force
            (:class:`~hpcflow.samplers.integrators.ForceMoves`), for what the kernel does not take.
    """

    def __init__(self, beta: float, lam: float, reference) -> None:
        self.beta, self.lam = beta, lam
        self.reference = reference
        self.ext = compiled()
        self._spare: tuple[Tensor, Tensor] | None = None  # a scratch pair that is never handed out

    def accepts(self, phi: Tensor) -> bool:
        """Whether the compiled kernel runs ``phi`` ``(B, *L)``."""
        return (self.ext is not None and phi.device.type == "cpu" and 3 <= phi.dim() <= 5 and not phi.requires_grad
                and phi.dtype.is_floating_point and phi.dtype.itemsize in (4, 8))

    def run(self, phi: Tensor, pi: Tensor, first_kick: float, moves: list[tuple[float, float]]) -> tuple[Tensor, Tensor]:
        """``(phi, pi)`` at the end of the schedule (new tensors; the inputs stay intact)."""
        if not self.accepts(phi) or pi.requires_grad:
            return self.reference.run(phi, pi, first_kick, moves)
        flat_phi = phi.reshape(phi.shape[0], -1).contiguous()
        flat_pi = pi.reshape(flat_phi.shape).contiguous()
        spare = self._scratch(flat_phi)
        result = (torch.empty_like(flat_phi), torch.empty_like(flat_pi))  # the caller's: fresh memory
        # the end point lands in pair 0 after an even number of moves: put the result pair there
        pairs = (result, spare) if len(moves) % 2 == 0 else (spare, result)
        rows = cpu_neighbour_table(tuple(phi.shape[1:-1]))  # the neighbouring rows of the last axis's rows
        where = self.ext.phi4_md(flat_phi, flat_pi, rows, self.beta, 4.0 * self.lam, first_kick, moves,
                                 [*pairs[0], *pairs[1]])
        assert pairs[where] is result
        return result[0].view(phi.shape), result[1].view(pi.shape)

    def _scratch(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """The spare pair for fields like ``like``, kept between trajectories (fresh memory costs
        page faults: measured 9 of 40 ms per trajectory at 64^2 x 256 chains)."""
        if self._spare is None or self._spare[0].shape != like.shape or self._spare[0].dtype != like.dtype:
            self._spare = (torch.empty_like(like), torch.empty_like(like))
        return self._spare
