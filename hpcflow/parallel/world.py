"""The ranks of a job as the sampling stage sees them: MPI collectives on Python objects.

Markov chains need no gradients, so sharded sampling talks to the other ranks through mpi4py
directly (whatever ``[parallel].backend`` trains with). Without a launcher, or with one rank,
:class:`World` is a serial world of one and never imports MPI.

Chains are split in contiguous blocks (:func:`chain_blocks`): with ``B`` chains on ``N`` ranks,
rank ``r`` holds chains ``[r B / N, (r + 1) B / N)`` (the first ``B mod N`` ranks one more), so
every rank writes one contiguous hyperslab of each dataset.
"""

from __future__ import annotations

from typing import Any

import torch

from hpcflow.parallel.env import ClusterEnv

__all__ = ["World", "chain_blocks", "merge_chain_blocks", "take_chain_block"]


def chain_blocks(chains: int, size: int) -> list[range]:
    """Contiguous blocks of ``chains`` chain indices over ``size`` ranks, in rank order."""
    if chains < size:
        raise ValueError(f"{chains} chains cannot be shared by {size} ranks: use at least one chain per rank")
    base, extra = divmod(chains, size)
    starts = [r * base + min(r, extra) for r in range(size + 1)]
    return [range(starts[r], starts[r + 1]) for r in range(size)]


class World:
    """Rank, size and object collectives of the job (mpi4py's ``COMM_WORLD``, or one process).

    Arguments:
        comm: an mpi4py communicator, or ``None`` for a serial world.
    """

    def __init__(self, comm: Any = None) -> None:
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()

    @classmethod
    def detect(cls) -> World:
        """MPI's world when a launcher started more than one rank, else a serial world."""
        env = ClusterEnv.detect()
        if env.size == 1:
            return cls()
        try:
            from mpi4py import MPI
        except ImportError as err:
            raise RuntimeError(
                f"launched as rank {env.rank} of {env.size} ({env.launcher}) but mpi4py is missing: "
                "pip install '.[mpi]'"
            ) from err
        if MPI.COMM_WORLD.Get_size() != env.size:
            raise RuntimeError(f"MPI sees {MPI.COMM_WORLD.Get_size()} ranks, the launcher variables {env.size}")
        return cls(MPI.COMM_WORLD)

    @property
    def is_root(self) -> bool:
        """Rank 0 writes checkpoints, progress bars and summaries."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank."""
        if self.comm is not None:
            self.comm.Barrier()

    def bcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        return obj if self.comm is None else self.comm.bcast(obj, root=0)

    def allgather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` in rank order, on every rank."""
        return [obj] if self.comm is None else self.comm.allgather(obj)

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj`` in rank order on rank 0; ``None`` elsewhere."""
        return [obj] if self.comm is None else self.comm.gather(obj, root=0)

    def scatter(self, objs: list[Any] | None) -> Any:
        """Rank ``r`` gets ``objs[r]`` of rank 0's list (the other ranks pass ``None``)."""
        if self.comm is None:
            return objs[0] if objs is not None else None
        return self.comm.scatter(objs, root=0)

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on some rank (on every rank)."""
        return flag if self.comm is None else any(self.comm.allgather(bool(flag)))


def merge_chain_blocks(parts: list[dict[str, Any]], axes: dict[str, int]) -> dict[str, Any]:
    """One state of all chains from the ranks' states (rank order): entries named in ``axes``
    are concatenated along their chain axis, the others are the same on every rank."""
    return {k: torch.cat([p[k] for p in parts], dim=axes[k]) if k in axes else v for k, v in parts[0].items()}


def take_chain_block(state: dict[str, Any], axes: dict[str, int], block: range) -> dict[str, Any]:
    """The chains ``block`` of a state of all chains (inverse of :func:`merge_chain_blocks`)."""
    return {k: v.narrow(axes[k], block.start, len(block)) if k in axes else v for k, v in state.items()}
