"""Where this process sits in a parallel job: rank, size and local rank from the launcher.

Read, in this order, from the variables the launchers set (nothing is launched or imported):

=============  ==========================  ==========================  =========================
launcher       rank                        size                        local rank
=============  ==========================  ==========================  =========================
torchrun       ``RANK``                    ``WORLD_SIZE``              ``LOCAL_RANK``
Open MPI       ``OMPI_COMM_WORLD_RANK``    ``OMPI_COMM_WORLD_SIZE``    ``OMPI_COMM_WORLD_LOCAL_RANK``
PBS/PALS       ``PALS_RANKID``             ``PMI_SIZE``                ``PALS_LOCAL_RANKID``
MPICH (PMI)    ``PMI_RANK``                ``PMI_SIZE``                ``MPI_LOCALRANKID`` / ``PMI_LOCAL_RANK``
Slurm (srun)   ``SLURM_PROCID``            ``SLURM_NTASKS``            ``SLURM_LOCALID``
=============  ==========================  ==========================  =========================

A batch script's own shell under Slurm has ``SLURM_NTASKS`` but no ``SLURM_PROCID`` for a
task, so it is serial until ``srun`` starts the tasks. Without any of these: a serial world of one.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Mapping

__all__ = ["ClusterEnv"]

_LAUNCHERS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("torchrun", "RANK", "WORLD_SIZE", ("LOCAL_RANK",)),
    ("openmpi", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", ("OMPI_COMM_WORLD_LOCAL_RANK",)),
    ("pals", "PALS_RANKID", "PMI_SIZE", ("PALS_LOCAL_RANKID",)),
    ("mpich", "PMI_RANK", "PMI_SIZE", ("MPI_LOCALRANKID", "PMI_LOCAL_RANK")),
    ("slurm", "SLURM_PROCID", "SLURM_NTASKS", ("SLURM_LOCALID",)),
)


@dataclass(frozen=True)
class ClusterEnv:
    """Rank, world size and node-local rank of this process, and which launcher said so."""

    rank: int
    size: int
    local_rank: int
    launcher: str
    hostname: str

    @classmethod
    def detect(cls, environ: Mapping[str, str] | None = None) -> ClusterEnv:
        """Read the launcher variables (``os.environ`` by default); serial if there are none."""
        env = os.environ if environ is None else environ
        host = socket.gethostname()
        for name, rank_key, size_key, local_keys in _LAUNCHERS:
            if rank_key in env and size_key in env:
                local = next((int(env[k]) for k in local_keys if k in env), 0)
                found = cls(int(env[rank_key]), int(env[size_key]), local, name, host)
                if not 0 <= found.rank < found.size:
                    raise ValueError(f"{rank_key} = {found.rank} is outside {size_key} = {found.size}")
                return found
        return cls(0, 1, 0, "serial", host)

    @property
    def is_root(self) -> bool:
        """Rank 0 writes checkpoints, logs and progress bars."""
        return self.rank == 0
