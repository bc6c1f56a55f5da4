"""Run output: HDF5 configuration store, atomic checkpoints, provenance."""

from hpcflow.io.atomic import atomic_write, atomic_write_json, atomic_write_text
from hpcflow.io.checkpoint import latest_checkpoint, save_checkpoint
from hpcflow.io.provenance import code_version, provenance
from hpcflow.io.store import ConfigStore

__all__ = [
    "ConfigStore",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "code_version",
    "latest_checkpoint",
    "provenance",
    "save_checkpoint",
]
