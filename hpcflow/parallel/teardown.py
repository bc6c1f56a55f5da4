"""Leaving a process of a parallel launch without the interpreter's finalization.

A Gloo worker thread of torch.distributed can drop its last reference to a tensor while the
interpreter finalizes and abort a process whose results are already on disk (SIGABRT from
``ProcessGroupGloo::runLoop``; pytorch/pytorch#190489, seen with ``mpiexec -n 2 hpcflow train``).
:func:`leave` flushes the output, finalizes MPI if it was initialized (Open MPI's ``mpiexec``
counts a rank that exits without ``MPI_Finalize`` as failed) and exits by ``os._exit``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

__all__ = ["leave"]


def _finalize_mpi() -> None:
    """``MPI_Finalize`` if MPI was initialized (by mpi4py or by Horovod), without initializing it."""
    try:
        import mpi4py
    except ImportError:
        return
    mpi4py.rc.initialize = False  # importing mpi4py.MPI below must not start MPI (e.g. under torchrun)
    from mpi4py import MPI

    if MPI.Is_initialized() and not MPI.Is_finalized():
        MPI.Finalize()


def leave(status: int) -> NoReturn:
    """Flush logging and stdio, finalize MPI, exit with ``status`` skipping interpreter finalization.
    Call it only once every file of the run is closed and every process group shut down."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    _finalize_mpi()
    os._exit(status)
