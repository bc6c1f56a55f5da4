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
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hpcflow.io.atomic import atomic_write

__all__ = ["ConfigStore", "DatasetSpec"]

DatasetSpec = tuple[tuple[int, ...], str]
"""``(shape, dtype)`` of a dataset; ``shape[:2]`` is ``(chains, rows)``."""


def _attr(value: Any) -> Any:
    return value if isinstance(value, (str, int, float, bool, np.generic)) else json.dumps(value, sort_keys=True)


class ConfigStore:
    """Append-only HDF5 store; use :meth:`create` once, then open it with the constructor.

    Arguments:
        path: the ``configs.h5`` file.
        mode: ``"r"`` to read, ``"r+"`` to append.
    """

    def __init__(self, path: Path, mode: str = "r") -> None:
        if mode not in ("r", "r+"):
            raise ValueError(f"mode = {mode!r}: expected 'r' or 'r+'")
        self.path = Path(path)
        self.file = h5py.File(self.path, mode)
        self.names: list[str] = json.loads(self.file["written"].attrs["names"])

    @classmethod
    def create(cls, path: Path, datasets: dict[str, DatasetSpec], attrs: dict[str, Any]) -> None:
        """Create the file with all datasets allocated and the given root attributes."""

        def write(tmp: Path) -> None:
            with h5py.File(tmp, "w", track_order=True) as f:
                for key, value in attrs.items():
                    f.attrs[key] = _attr(value)
                for name, (shape, dtype) in datasets.items():
                    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
                    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
                    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
                    f.create_dataset(name, shape=shape, dtype=dtype, dcpl=dcpl, track_times=False)
                names = sorted(datasets)
                written = f.create_dataset("written", data=np.zeros(len(names), np.int64), track_times=False)
                written.attrs["names"] = json.dumps(names)

        atomic_write(Path(path), write)

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
        """Number of valid rows of dataset ``name``."""
        return int(self.file["written"][self.names.index(name)])

    def capacity(self, name: str) -> int:
        """Rows allocated for dataset ``name``."""
        return int(self.file[name].shape[1])

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        """Write ``values`` ``(chains, n, ...)`` into rows ``start .. start + n`` and count them."""
        ds = self.file[name]
        stop = start + values.shape[1]
        if stop > ds.shape[1] or values.shape[0] != ds.shape[0] or values.shape[2:] != ds.shape[2:]:
            raise ValueError(f"{name}: rows {start}:{stop} of shape {values.shape} do not fit {ds.shape}")
        ds[:, start:stop] = values
        self.file["written"][self.names.index(name)] = stop

    def truncate(self, name: str, rows: int) -> None:
        """Forget rows beyond ``rows`` (they will be written again)."""
        self.file["written"][self.names.index(name)] = min(rows, self.rows(name))

    def read(self, name: str) -> np.ndarray:
        """The valid rows of dataset ``name``, shape ``(chains, rows, ...)``."""
        return self.file[name][:, : self.rows(name)]

    def flush(self) -> None:
        """Flush HDF5 buffers and fsync the file."""
        self.file.flush()
        with open(self.path, "rb") as fh:
            os.fsync(fh.fileno())

    def finalize(self, summary: dict[str, Any]) -> None:
        """Add summary attributes once the run is complete, then flush."""
        for key, value in summary.items():
            self.file.attrs[key] = _attr(value)
        self.flush()
