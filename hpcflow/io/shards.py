"""One rank's writer into a run's ``configs.h5``: its block of chains, in either store layout.

=============  ===============================================================================
layout         how a rank writes (see :mod:`hpcflow.io.store`)
=============  ===============================================================================
``single``     one process: plain h5py; several ranks: every rank opens ``configs.h5`` with the
               ``mpio`` driver and writes its hyperslab collectively (needs h5py built with MPI)
``per-rank``   every rank writes ``configs.rankNNNNN.h5``; rank 0 keeps the row counters of the
               virtual datasets in ``configs.h5``. Tied to the rank count it was created with.
=============  ===============================================================================

Every rank calls every method, in the same order (collective).
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from hpcflow.io.store import ConfigStore, open_h5, rank_file
from hpcflow.parallel.world import World

__all__ = ["BlockWriter", "ShardingError", "choose_layout", "stored_blocks", "stored_layout"]

IO_CHOICES = {"auto": None, "mpio": "single", "per-rank": "per-rank"}


class ShardingError(RuntimeError):
    """The store cannot be written by this set of ranks."""


def choose_layout(io: str, ranks: int) -> str:
    """Layout of a new store from ``[parallel].io`` (``auto``: ``single`` unless MPI-IO is missing)."""
    if io not in IO_CHOICES:
        raise ValueError(f"[parallel].io = {io!r}: expected one of {', '.join(IO_CHOICES)}")
    mpi = h5py.get_config().mpi
    if io == "mpio" and ranks > 1 and not mpi:
        raise ShardingError(
            '[parallel].io = "mpio": this h5py is built without MPI (h5py.get_config().mpi is False); '
            'use "per-rank" or "auto", or rebuild h5py with scripts/install.sh'
        )
    if io == "auto":
        return "single" if ranks == 1 or mpi else "per-rank"
    return IO_CHOICES[io]


def stored_layout(path: Path) -> tuple[str, list[range] | None]:
    """Layout of an existing store and, for ``per-rank``, the chain blocks of its files."""
    with open_h5(path, "r") as f:
        layout = str(f.attrs.get("layout", "single"))
        blocks = json.loads(f.attrs["blocks"]) if "blocks" in f.attrs else None
    return layout, None if blocks is None else [range(a, b) for a, b in blocks]


class BlockWriter:
    """Writes the chains ``block`` of this rank into the store at ``path``.

    Arguments:
        path: ``configs.h5``.
        world: the ranks of the job.
        block: this rank's chains.
        layout: ``single`` or ``per-rank`` (as stored in the file).
        blocks: every rank's chains (checked against a ``per-rank`` store's).
    """

    def __init__(self, path: Path, world: World, block: range, layout: str, blocks: list[range] | None = None) -> None:
        self.world = world
        self.main: ConfigStore | None = None
        if layout == "per-rank":
            stored = stored_blocks(path, world)
            if blocks is not None and blocks != stored:
                raise ShardingError(
                    f"{path} is written in per-rank files by {len(stored)} ranks; "
                    f"relaunch with that many ranks ({world.size} now), or start a new run with "
                    '[parallel].io = "mpio" (a single file that any number of ranks can continue)'
                )
            self.rows = ConfigStore(rank_file(path, world.rank), "r+")
            if world.is_root:
                self.main = ConfigStore(path, "r+")
        elif world.size == 1:
            self.rows = ConfigStore(path, "r+")
        elif not h5py.get_config().mpi:
            raise ShardingError(
                f"{path} is a single shared file; writing it from {world.size} ranks needs h5py built with MPI "
                "(h5py.get_config().mpi is False): relaunch with 1 rank, or rebuild h5py with scripts/install.sh"
            )
        else:
            self.rows = ConfigStore(path, "r+", comm=world.comm, chains=block)

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        """Rows ``start ..`` of this rank's chains (counted at the next :meth:`flush`)."""
        self.rows.write(name, start, values)

    def truncate(self, name: str, rows: int) -> None:
        """Forget rows beyond ``rows`` (a restart rewrites them)."""
        self.rows.truncate(name, rows)

    def flush(self) -> None:
        """Every rank's rows on disk, then the counters that make them visible."""
        self.rows.flush()
        if self.rows.comm is None and self.world.size > 1:
            self.world.barrier()  # per-rank files: all on disk before rank 0 counts them
        if self.main is not None:
            for name in self.main.names:
                self.main.set_rows(name, self.rows.rows(name))
            self.main.flush()
        self.world.barrier()

    def close(self) -> None:
        """Close the files."""
        self.rows.close()
        if self.main is not None:
            self.main.close()


def stored_blocks(path: Path, world: World) -> list[range]:
    """Chain blocks of a ``per-rank`` store, read on rank 0 and shared."""
    return world.bcast(stored_layout(path)[1] if world.is_root else None)
