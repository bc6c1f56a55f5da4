"""HDF5 configuration store of one run (``configs.h5``).

Every dataset is declared up front with its final shape ``(chain, row, ...)`` (``row`` is the
measurement or trajectory index) and allocated contiguously when the file is created, which is
itself atomic (built under a temporary name, then renamed). After that, appending only writes
raw bytes into space that already exists: no HDF5 metadata changes while a run is going, so a
process killed at any moment leaves a file that opens. The number of valid rows of each dataset
lives in the small dataset ``written`` (one entry per dataset, names in its ``names`` attribute),
updated after the rows themselves and followed by a flush and an fsync. Readers see only the
rows counted there; a restarted run overwrites rows beyond its checkpoint with identical data.

Attributes of the root group hold the run card and provenance; :meth:`ConfigStore.finalize`
adds the summary (e.g. acceptance) when the run is complete.

File locking: HDF5 >= 1.10 locks files with ``flock``, which some parallel file systems (Lustre
mounted without ``flock``, some NFS) refuse ("unable to lock file"). :func:`open_h5` then opens
the file without HDF5's lock, with a warning (as ``HDF5_USE_FILE_LOCKING=FALSE`` would); the
run directory's own lock (:mod:`hpcflow.workflow.rundir`) still keeps a second job out.

Several ranks write one store in one of two layouts (attribute ``layout``), which readers cannot
tell apart: ``"single"``, one file that every rank opens with the ``mpio`` driver and writes its
block of chains into collectively; and ``"per-rank"``, one file per rank
(``configs.rank00001.h5``, that rank's chains only) stitched together by virtual datasets in
``configs.h5``, for an h5py without MPI or a file system without working MPI-IO locking.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hpcflow.io.atomic import atomic_write

__all__ = ["ConfigStore", "DatasetSpec", "open_h5", "rank_file"]

log = logging.getLogger(__name__)

DatasetSpec = tuple[tuple[int, ...], str]
"""``(shape, dtype)`` of a dataset; ``shape[:2]`` is ``(chains, rows)``."""


def _attr(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, np.generic)) else json.dumps(value, sort_keys=True)


def open_h5(path: Path, mode: str = "r", **kwargs: Any) -> h5py.File:
    """``h5py.File``, retried without HDF5's file lock where the file system refuses locks."""
    try:
        return h5py.File(path, mode, **kwargs)
    except OSError as err:
        if "lock" not in str(err).lower():
            raise
        log.warning("%s: the file system refuses HDF5's file lock (%s); opening without it", path, err)
        return h5py.File(path, mode, locking=False, **kwargs)


def rank_file(path: Path, rank: int) -> Path:
    """The file of ``rank`` in the ``"per-rank"`` layout, beside ``path``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.rank{rank:05d}{path.suffix}")


class ConfigStore:
    """Append-only HDF5 store; use :meth:`create` once, then open it with the constructor.

    Arguments:
        path: the ``configs.h5`` file.
        mode: ``"r"`` to read, ``"r+"`` to append.
    """

    def __init__(self, path: Path, mode: str = "r", comm: Any = None, chains: range | None = None) -> None:
        if mode not in ("r", "r+"):
            raise ValueError(f"mode = {mode!r}: expected 'r' or 'r+'")
        self.path = Path(path)
        self.comm = comm
        self.file = open_h5(self.path, mode, **({} if comm is None else {"driver": "mpio", "comm": comm}))
        self.names: list[str] = json.loads(self.file["written"].attrs["names"])
        self.chains = chains
        self._staged: dict[int, int] = {}

    @classmethod
    def create(
        cls, path: Path, datasets: dict[str, DatasetSpec], attrs: dict[str, Any], blocks: list[range] | None = None
    ) -> None:
        """Create the file with all datasets allocated and the given root attributes.

        With ``blocks`` (the chains of each rank): the ``"per-rank"`` layout, one file per rank
        created first, then ``path`` with virtual datasets over them.
        """
        if blocks is not None:
            for rank, block in enumerate(blocks):
                cls.create(
                    rank_file(path, rank),
                    {name: ((len(block), *shape[1:]), dtype) for name, (shape, dtype) in datasets.items()},
                    {"layout": "rank", "rank": rank, "chains": [block.start, block.stop]},
                )

        def write(tmp: Path) -> None:
            with open_h5(tmp, "w", track_order=True) as f:
                for key, value in attrs.items():
                    f.attrs[key] = _attr(value)
                for name, (shape, dtype) in datasets.items():
                    if blocks is None:
                        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
                        dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
                        f.create_dataset(name, shape=shape, dtype=dtype, dcpl=dcpl, track_times=False)
                        continue
                    layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
                    for rank, block in enumerate(blocks):
                        # a relative name: HDF5 looks for it beside configs.h5, so the run directory can move
                        source = h5py.VirtualSource(rank_file(path, rank).name, name, shape=(len(block), *shape[1:]))
                        layout[block.start : block.stop] = source
                    f.create_virtual_dataset(name, layout)
                names = sorted(datasets)
                written = f.create_dataset("written", data=np.zeros(len(names), np.int64), track_times=False)
                written.attrs["names"] = json.dumps(names)
                if "layout" not in attrs:
                    f.attrs["layout"] = "single" if blocks is None else "per-rank"
                if blocks is not None:
                    f.attrs["blocks"] = json.dumps([[b.start, b.stop] for b in blocks])

        atomic_write(Path(path), write)

    @classmethod
    def grow(cls, path: Path, datasets: dict[str, DatasetSpec], attrs: dict[str, Any]) -> None:
        """Replace the (single-file) store at ``path`` by one whose datasets have the larger
        ``datasets`` shapes (the row axis grows, nothing else changes), holding the same valid rows
        and counters and the old attributes updated by ``attrs``; atomic (a crash leaves the old
        store)."""
        with open_h5(path, "r") as old:
            if old.attrs.get("layout", "single") != "single":
                raise ValueError(f"{path}: a per-rank store cannot grow; extend a run written in one file")
            names = json.loads(old["written"].attrs["names"])
            counts = dict(zip(names, old["written"][()].tolist()))
            old_attrs = {k: old.attrs[k] for k in old.attrs}
            for name, (shape, _) in datasets.items():
                have = old[name].shape
                if have[0] != shape[0] or have[2:] != tuple(shape[2:]) or have[1] > shape[1]:
                    raise ValueError(f"{path}: dataset {name} {have} cannot grow to {shape}")
        tmp = path.with_name(f".{path.name}.grow")
        cls.create(tmp, datasets, {**old_attrs, **attrs})
        with open_h5(path, "r") as old, open_h5(tmp, "r+") as new:
            for name in names:
                rows, step = counts[name], 4096
                for start in range(0, rows, step):  # in slabs: a large store never sits in memory
                    new[name][:, start : min(rows, start + step)] = old[name][:, start : min(rows, start + step)]
            new["written"][()] = [counts[n] for n in json.loads(new["written"].attrs["names"])]
            new.flush()
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def __enter__(self) -> ConfigStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self.file.close()

    @property
    def attrs(self) -> h5py.AttributeManager:
        """Root attributes (run card, provenance, summary)."""
        return self.file.attrs

    def rows(self, name: str) -> int:
        """Number of valid rows of dataset ``name`` (including rows not yet flushed)."""
        i = self.names.index(name)
        return self._staged.get(i, int(self.file["written"][i]))

    def capacity(self, name: str) -> int:
        """Rows allocated for dataset ``name``."""
        return int(self.file[name].shape[1])

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        """Write ``values`` ``(chains, n, ...)`` into rows ``start .. start + n``, counted at the next :meth:`flush`.

        ``chains`` are this store's chains (all, or the block given to the constructor); with
        ``comm`` every rank calls this for the same datasets in the same order (collective I/O).
        """
        ds = self.file[name]
        lo, hi = (0, ds.shape[0]) if self.chains is None else (self.chains.start, self.chains.stop)
        stop = start + values.shape[1]
        if stop > ds.shape[1] or values.shape[0] != hi - lo or values.shape[2:] != ds.shape[2:]:
            raise ValueError(f"{name}: rows {start}:{stop} of shape {values.shape} do not fit chains {lo}:{hi} of {ds.shape}")
        if self.comm is None:
            ds[lo:hi, start:stop] = values
        else:
            with ds.collective:
                ds[lo:hi, start:stop] = values
        self.set_rows(name, stop)

    def set_rows(self, name: str, rows: int) -> None:
        """Count ``rows`` valid rows of ``name`` from the next :meth:`flush` on."""
        self._staged[self.names.index(name)] = rows

    def truncate(self, name: str, rows: int) -> None:
        """Forget rows beyond ``rows`` (they will be written again)."""
        self.set_rows(name, min(rows, self.rows(name)))

    def read(self, name: str) -> np.ndarray:
        """The valid rows of dataset ``name``, shape ``(chains, rows, ...)``."""
        return self.file[name][:, : self.rows(name)]

    def flush(self) -> None:
        """Rows to disk (flush, fsync), then the row counters, then again: a reader never counts
        rows that are not on disk. Collective with ``comm``."""
        self._sync()
        if not self._staged:
            return
        if self.comm is not None:
            self.comm.Barrier()  # every rank's rows are on disk
        if self.comm is None or self.comm.Get_rank() == 0:
            written = self.file["written"]
            counts = written[()]
            for i, rows in self._staged.items():
                counts[i] = rows
            written[()] = counts
        self._staged.clear()
        self._sync()

    def _sync(self) -> None:
        self.file.flush()
        if self.comm is None or self.comm.Get_rank() == 0:
            with open(self.path, "rb") as fh:
                os.fsync(fh.fileno())

    def finalize(self, summary: dict[str, Any]) -> None:
        """Add summary attributes once the run is complete, then flush."""
        for key, value in summary.items():
            self.file.attrs[key] = _attr(value)
        self.flush()
