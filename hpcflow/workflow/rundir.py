"""The run directory: what identifies the run that fills it, its creation, the markers of the
workflow's finished stages and the lock that keeps a second live job out.

A run directory is filled by one run card. What defines the run (its *identity*) is every section
but those that change how it is computed or read and not what it computes: ``[parallel]`` (ranks,
store layout, device), ``[workflow]`` and the settings of the samplers beside the card's own
(``[baseline]``, ``[fhmc]``, ``[nmcmc]``: runs of their own) and ``[analysis]`` (an analysis is
rerun, never the sampling). A card whose identity differs from
the one recorded in ``runcard.json`` (or in the attributes of ``configs.h5``) is refused.

A run can be extended by more updates (``hpcflow sample CARD --extend N``): the extensions are
recorded in ``extensions.json`` (:func:`add_extension`), the card stays the run's identity, and
:func:`extended` gives the card with the updates the run has now.

A finished workflow stage leaves ``workflow/<stage>.done``: JSON with the identity of what it
computed (:func:`write_marker`); a rerun skips the stage only when the identity is the same
(:func:`marker_matches`), so a changed card never relabels old results.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from hpcflow.io.atomic import atomic_write_json, atomic_write_text
from hpcflow.io.store import open_h5
from hpcflow.workflow.runcard import UPDATES_KEY, RunCard, RunCardError

__all__ = [
    "EXTENSIONS",
    "LOCK",
    "STORE",
    "RunDirLocked",
    "add_extension",
    "check_run_dir",
    "extended",
    "extensions",
    "lock_holder",
    "lock_run_dir",
    "marker_matches",
    "prepare_run_dir",
    "run_identity",
    "write_marker",
]

log = logging.getLogger(__name__)

STORE = "configs.h5"
LOCK = ".hpcflow.lock"
EXTENSIONS = "extensions.json"
NOT_IDENTITY = ("parallel", "baseline", "fhmc", "nmcmc", "workflow", "analysis")


def run_identity(data: dict[str, Any]) -> dict[str, Any]:
    """The sections of a normalized card that define the run."""
    return {k: v for k, v in data.items() if k not in NOT_IDENTITY}


def _differences(stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    """``[theory].beta: 0.5 there, 0.6 in the card`` for the first few keys that differ."""
    out = []
    for section in sorted(set(stored) | set(wanted)):
        a, b = stored.get(section, {}), wanted.get(section, {})
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                out.append(f"[{section}].{key}: {a.get(key)!r} there, {b.get(key)!r} in the card")
    return "; ".join(out[:3]) + ("; ..." if len(out) > 3 else "")


def _stored_identities(run_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """The identities recorded in the run directory (``runcard.json``, the store's attributes)."""
    found = []
    if (run_dir / "runcard.json").is_file():
        found.append((str(run_dir / "runcard.json"), json.loads((run_dir / "runcard.json").read_text(encoding="utf-8"))))
    if (run_dir / STORE).is_file():
        try:
            with open_h5(run_dir / STORE, "r") as f:
                if "run_card_normalized" in f.attrs:
                    found.append((str(run_dir / STORE), json.loads(f.attrs["run_card_normalized"])))
        except OSError as err:
            raise RunCardError(str(run_dir / STORE), [f"not a readable HDF5 store ({err}); move it away to start over"]) from None
    return found


def check_run_dir(card: RunCard) -> None:
    """Refuse a run directory that holds the output of a different run card."""
    wanted = run_identity(card.data)
    for where, data in _stored_identities(card.run_dir):
        stored = run_identity(data)
        if stored != wanted:
            raise RunCardError(card.source, [
                f"[output].dir = {str(card.run_dir)!r}: holds a run created by a different card "
                f"({_differences(stored, wanted)}; see {where}); choose another dir or remove that one"
            ])


def prepare_run_dir(card: RunCard) -> Path:
    """Create the run directory and record the card in it (once); returns the directory."""
    check_run_dir(card)
    card.run_dir.mkdir(parents=True, exist_ok=True)
    if not (card.run_dir / "runcard.json").is_file():
        atomic_write_text(card.run_dir / "runcard.toml", card.text)
        atomic_write_json(card.run_dir / "runcard.json", card.data)
    return card.run_dir


def extensions(run_dir: Path) -> list[dict[str, Any]]:
    """The extensions of the run in ``run_dir`` (``[{"updates": N, "date": ...}, ...]``)."""
    path = run_dir / EXTENSIONS
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def add_extension(card: RunCard, updates: int) -> None:
    """Record that the run of ``card`` goes on for ``updates`` more updates (before sampling them)."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(card.run_dir / EXTENSIONS, [*extensions(card.run_dir), {"updates": updates, "date": now}])


def extended(card: RunCard) -> RunCard:
    """``card`` with the updates of its run's extensions added (the card itself if there are none)."""
    more = sum(e["updates"] for e in extensions(card.run_dir))
    if not more:
        return card
    key = UPDATES_KEY[card.sampler["kind"]]
    data = {**card.data, "sampler": {**card.sampler, key: card.sampler[key] + more}}
    return RunCard(source=card.source, data=data, text=card.text)


def write_marker(path: Path, stage: str, identity: dict[str, Any]) -> None:
    """Record that ``stage`` finished computing what ``identity`` describes."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    atomic_write_json(path, {"stage": stage, "identity": identity, "finished": now})


def marker_matches(path: Path, identity: dict[str, Any]) -> bool:
    """Whether ``path`` records a finished stage of exactly ``identity`` (a marker of an older
    hpcflow, without an identity, does not match: the stage runs again and resumes)."""
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("identity") == json.loads(json.dumps(identity))
    except (OSError, ValueError, AttributeError):
        return False


class RunDirLocked(RuntimeError):
    """Another live hpcflow process works in the run directory."""


def lock_run_dir(run_dir: Path) -> Any:
    """Hold ``run_dir/.hpcflow.lock`` (``flock``) for the life of the returned file object, or raise
    :class:`RunDirLocked` naming the holder. The lock goes with the process (also on ``kill -9``).
    A file system without ``flock`` (some Lustre mounts) gives a warning and no lock."""
    run_dir.mkdir(parents=True, exist_ok=True)
    handle = open(run_dir / LOCK, "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise RunDirLocked(f"{run_dir}: in use by {holder}; wait for that job to end (or stop it) and rerun") from None
    except OSError as err:
        log.warning("%s: no lock on this file system (%s); make sure no other job writes here", run_dir, err)
        return handle
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                 f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}\n")
    handle.flush()
    return handle


def lock_holder(run_dir: Path) -> str | None:
    """Who holds ``run_dir``'s lock now (``pid ... on host since ...``), or ``None`` if no live
    process does. Reads only: a free lock is taken and released at once."""
    path = run_dir / LOCK
    if not path.is_file():
        return None
    with open(path, encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return handle.read().strip() or "a live process"
        except OSError:
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
    return None
