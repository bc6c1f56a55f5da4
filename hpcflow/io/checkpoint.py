"""Atomic checkpoints of a run's complete state.

Layout: ``checkpoints/<step:010d>/state.pt`` and a ``complete`` marker, written in a hidden
temporary folder which is renamed into place after both files are fsync'ed. A folder without
the marker is never read; the newest complete one wins, and an unreadable one falls back to the
one before. The newest ``keep`` checkpoints are kept. Complete checkpoints that are all
unreadable are an error (:class:`CheckpointError`), never taken for a fresh start.

States hold CPU tensors (:func:`on_device` moves them), so a checkpoint reads on any machine.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from hpcflow.io.atomic import fsync_dir

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "checkpoint_steps",
    "has_checkpoint",
    "latest_checkpoint",
    "on_device",
    "save_checkpoint",
]

log = logging.getLogger(__name__)

MARKER = "complete"
STATE = "state.pt"

Checkpoint = tuple[int, dict[str, Any]]


class CheckpointError(RuntimeError):
    """Checkpoints exist but none can be read."""


def on_device(obj: Any, device: torch.device | str) -> Any:
    """``obj`` with every tensor inside (dicts, lists, tuples) moved to ``device``."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: on_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(on_device(v, device) for v in obj)
    return obj


def _complete_steps(directory: Path) -> list[int]:
    if not directory.is_dir():
        return []
    return sorted(
        int(p.name) for p in directory.iterdir() if p.name.isdigit() and (p / MARKER).is_file()
    )


def has_checkpoint(directory: Path) -> bool:
    """Whether ``directory`` holds a complete checkpoint (readable or not)."""
    return bool(_complete_steps(Path(directory)))


def checkpoint_steps(directory: Path) -> list[int]:
    """The steps of the complete checkpoints in ``directory``, oldest first."""
    return _complete_steps(Path(directory))


def save_checkpoint(directory: Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write ``state`` (tensors, numbers, strings, lists and dicts of them) as checkpoint ``step``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{step:010d}"
    tmp = directory / f".tmp-{step:010d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    torch.save(on_device(state, "cpu"), tmp / STATE)
    (tmp / MARKER).write_text(f"{step}\n")
    for name in (STATE, MARKER):
        with open(tmp / name, "rb") as fh:
            os.fsync(fh.fileno())
    fsync_dir(tmp)
    if target.exists():  # the same step written by an earlier attempt: identical by construction
        shutil.rmtree(target)
    os.replace(tmp, target)
    fsync_dir(directory)
    for old in _complete_steps(directory)[:-keep]:
        shutil.rmtree(directory / f"{old:010d}", ignore_errors=True)
    for stale in directory.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return target


def latest_checkpoint(directory: Path) -> Checkpoint | None:
    """``(step, state)`` of the newest readable complete checkpoint; ``None`` if there is no
    complete checkpoint; :class:`CheckpointError` if there are some and none can be read."""
    steps = _complete_steps(Path(directory))
    failures = []
    for step in reversed(steps):
        path = Path(directory) / f"{step:010d}" / STATE
        try:
            return step, torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # a damaged file: fall back to the previous checkpoint
            log.warning("checkpoint %s is unreadable (%s); trying an older one", path, err)
            failures.append(f"{path.parent.name}: {type(err).__name__}")
    if steps:
        raise CheckpointError(
            f"{directory}: no complete checkpoint can be read ({'; '.join(failures)}); nothing was started over. "
            "Restore a checkpoint from a backup, or move the run directory away to start a new run"
        )
    return None
