"""The store of a sampling run (``configs.h5``): its datasets, its attributes, its creation and
the rows a restarted run writes again.

Datasets (all allocated when the store is created, :mod:`hpcflow.io.store`): the field
(``phi`` or ``links``) and ``observables/<name>`` per measurement, ``(chain, step, ...)``; the
sampler's records ``<kind>/<name>`` per update, ``(chain, update)``. Before the store is
allocated the bytes it needs are checked against the free space of its file system, and a store
that already holds rows is never replaced by a fresh one (:func:`check_fresh_start`).
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hpcflow.io.provenance import provenance
from hpcflow.io.shards import BlockWriter
from hpcflow.io.store import ConfigStore, DatasetSpec, open_h5
from hpcflow.lattice.rng import chain_seed
from hpcflow.workflow.chains import ChainSampler
from hpcflow.workflow.runcard import RunCard, RunCardError

__all__ = ["PendingRows", "check_disk", "check_fresh_start", "check_memory", "create_store", "parallel_record", "store_layout"]


def store_layout(card: RunCard, sampler: ChainSampler) -> dict[str, DatasetSpec]:
    """Every dataset of the run's store with its full shape and HDF5 dtype."""
    theory, b = sampler.theory, card.sampler["chains"]
    steps = card.updates // card.sampler["measure_every"]
    layout = {theory.field: ((b, steps, *theory.field_shape()), theory.dtype)}
    for name, (shape, dtype) in theory.observables().items():
        layout[f"observables/{name}"] = ((b, steps, *shape), dtype)
    for name, dtype in sampler.measurements.items():
        layout[f"observables/{name}"] = ((b, steps), dtype)
    for name, dtype in sampler.records.items():
        layout[f"{sampler.kind}/{name}"] = ((b, card.updates), dtype)
    return layout


def _bytes(layout: dict[str, DatasetSpec]) -> int:
    return sum(math.prod(shape) * np.dtype(dtype).itemsize for shape, dtype in layout.values())


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_disk(card: RunCard, layout: dict[str, DatasetSpec]) -> None:
    """The store fits the free space of the run directory's file system (with 2 % to spare)."""
    needed = _bytes(layout)
    free = shutil.disk_usage(card.run_dir).free
    if needed > 0.98 * free:
        raise RunCardError(card.source, [
            f"[sampler]: the store needs {_gib(needed)} ({card.sampler['chains']} chains x {card.updates} updates of "
            f"lattice {card.theory['shape']}) and {card.run_dir} has {_gib(free)} free; "
            "lower [sampler].chains or the updates, raise measure_every, or choose another [output].dir"
        ])


def _available_memory(device: torch.device) -> int:
    """Free bytes on ``device``: the GPU's free memory, or the host's ``MemAvailable``."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(card: RunCard, sampler: ChainSampler, device: torch.device) -> None:
    """This rank's chains fit the free memory of its device (before any field is allocated)."""
    needed, free = sampler.working_bytes(), _available_memory(device)
    if needed > 0.9 * free:
        raise RunCardError(card.source, [
            f"[sampler].chains = {card.sampler['chains']}: {len(sampler.chains)} chains of lattice {card.theory['shape']} "
            f"need about {_gib(needed)} on this rank's {device.type} and {_gib(free)} are free; "
            "use fewer chains per rank (more ranks, or lower [sampler].chains"
            + (" or [sampler].chunk)" if card.sampler["kind"] == "nmcmc" else ")")
        ])


def check_fresh_start(card: RunCard, store_path: Path) -> None:
    """A run without a checkpoint may create its store only if no store with rows is there."""
    if not store_path.is_file():
        return
    try:
        with open_h5(store_path, "r") as f:
            rows = int(np.max(f["written"][()])) if "written" in f and f["written"].size else 0
    except OSError as err:
        raise RunCardError(card.source, [f"{store_path}: exists but cannot be read ({err}); move it away to start over"]) from None
    if rows > 0:
        raise RunCardError(card.source, [
            f"{store_path}: holds {rows} rows but the run has no checkpoint to continue from; refusing to start over "
            "(restore the checkpoints, or move the store away to start a new run)"
        ])


def create_store(card: RunCard, sampler: ChainSampler, path: Path, layout: dict[str, DatasetSpec], io: str,
                 blocks: list[range], device: torch.device) -> None:
    """Allocate the store with its attributes (run card, provenance, seeds, ranks, device)."""
    check_disk(card, layout)
    versions = provenance()
    attrs = {
        "run_card": card.text,
        "run_card_normalized": card.canonical(),
        "code_version": versions["hpcflow"],
        "provenance": versions,
        "sampler": sampler.kind,
        "theory": sampler.theory.name,
        "seed": card.sampler["seed"],
        "chains": card.sampler["chains"],
        "device": device.type,
        "rng": f"torch.Generator ({device.type}) per chain, seeded by numpy SeedSequence(seed, spawn_key=(chain,))",
        "parallel": parallel_record(card, io, blocks),
        "complete": False,
    }
    ConfigStore.create(path, layout, attrs, blocks=blocks if io == "per-rank" else None)


def parallel_record(card: RunCard, layout: str, blocks: list[range]) -> dict[str, Any]:
    """Ranks, how they talk, store layout, and each rank's chains and their seeds."""
    seed = card.sampler["seed"]
    return {
        "ranks": len(blocks),
        "backend": "mpi4py" if len(blocks) > 1 else "serial",
        "layout": layout,
        "chain_blocks": [[b.start, b.stop] for b in blocks],
        "chain_seeds": [[chain_seed(seed, c) for c in b] for b in blocks],
    }


class PendingRows:
    """Rows produced since the last checkpoint, and where each dataset continues."""

    def __init__(self, layout: dict[str, DatasetSpec], kind: str, production: int, every: int) -> None:
        self.names = list(layout)
        self.kind = kind
        self.pending: dict[str, list[np.ndarray]] = {}
        production = max(0, production)  # rows start after this many post-thermalization updates
        self.starts = {n: production if n.startswith(kind + "/") else production // every for n in self.names}

    def add(self, rows: dict[str, torch.Tensor]) -> None:
        for name, value in rows.items():
            self.pending.setdefault(name, []).append(value.detach().cpu().numpy())

    def flush_into(self, store: BlockWriter) -> None:
        for name, rows in self.pending.items():
            store.write(name, self.starts[name], np.stack(rows, axis=1))
            self.starts[name] += len(rows)
        self.pending.clear()
        store.flush()
