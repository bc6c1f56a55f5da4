"""Leaving a process of a parallel launch: without the interpreter's finalization, and, on a
failure, taking every other rank down with it.

A Gloo worker thread of torch.distributed can drop its last reference to a tensor while the
interpreter finalizes and abort a process whose results are already on disk (SIGABRT from
``ProcessGroupGloo::runLoop``; pytorch/pytorch#190489, seen with ``mpiexec -n 2 hpcflow train``).
:func:`leave` flushes the output, finalizes MPI if it was initialized (Open MPI's ``mpiexec``
counts a rank that exits without ``MPI_Finalize`` as failed) and exits by ``os._exit``.

A rank that fails while the others wait in a collective (a barrier after work that only rank 0
does, a file only one rank reads) would leave them waiting until the walltime. :func:`abort`
ends the whole job instead: ``MPI_Abort`` on ``COMM_WORLD`` when MPI is initialized (Open MPI,
MPICH, Cray MPICH and Slurm all kill every rank then), else the exit status itself, which
``mpiexec`` and ``torchrun`` answer by stopping the other ranks.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, NoReturn

__all__ = ["abort", "leave"]


def _mpi() -> Any:
    """mpi4py's ``MPI`` if MPI was initialized (by mpi4py or by Horovod) and not finalized, else
    ``None``; importing it here never initializes MPI (e.g. under torchrun)."""
    try:
        import mpi4py
    except ImportError:
        return None
    mpi4py.rc.initialize = False
    from mpi4py import MPI

    return MPI if MPI.Is_initialized() and not MPI.Is_finalized() else None


def _flush() -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()


def leave(status: int) -> NoReturn:
    """Flush logging and stdio, finalize MPI, exit with ``status`` skipping interpreter finalization.
    Call it only once every file of the run is closed and every process group shut down."""
    _flush()
    mpi = _mpi()
    if mpi is not None:
        mpi.Finalize()
    os._exit(status)


def abort(status: int) -> NoReturn:
    """End every rank of the job now with ``status`` (at least 1), after flushing this rank's output."""
    status = max(1, status)
    _flush()
    mpi = _mpi()
    if mpi is not None:
        mpi.COMM_WORLD.Abort(status)
    os._exit(status)
