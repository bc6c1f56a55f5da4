"""An analysis's observables as ``pyerrors.Obs``, in pyerrors' own JSON export (``.json.gz``).

Each primary of an observable (:data:`hpcflow.analysis.observables.Definition`) becomes an
``Obs`` with one replica per chain, named ``<ensemble>|r<chain>``, holding the chain's Monte Carlo
history (measurement ``i`` at ``idl`` ``i + 1``: the report's time unit, one measurement); a
derived observable is its function applied to those ``Obs`` (pyerrors propagates the errors).
``pyerrors.input.json.load_json_dict`` reads the file back as a dict ``{name: Obs}``. pyerrors takes
the fluctuations about each replica's own mean (:mod:`hpcflow.analysis.gamma`), so with several
chains its errors are slightly below the report's.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from hpcflow.analysis.observables import Definition
from hpcflow.io.atomic import atomic_write

__all__ = ["pyerrors_available", "write_pyerrors"]


def pyerrors_available() -> bool:
    """Whether the ``pyerrors`` package imports here."""
    return importlib.util.find_spec("pyerrors") is not None


def write_pyerrors(path: Path, definitions: dict[str, Definition], ensemble: str, description: str) -> Path:
    """Write ``definitions`` as named ``Obs`` to ``path`` (a ``.json.gz``); returns ``path``."""
    import pyerrors as pe

    obs = {}
    for name, (data, f) in definitions.items():
        columns = data[..., None] if data.ndim == 2 else data
        names = [f"{ensemble}|r{chain}" for chain in range(columns.shape[0])]
        primaries = [pe.Obs([np.asarray(row[:, a], dtype=float) for row in columns], names)
                     for a in range(columns.shape[-1])]
        obs[name] = primaries[0] if f is None else f(primaries)

    def write(tmp: Path) -> None:  # pyerrors appends .json.gz to a name without it
        pe.input.json.dump_dict_to_json(obs, f"{tmp}.json.gz", description=description, gz=True)
        os.replace(f"{tmp}.json.gz", tmp)

    atomic_write(Path(path), write)
    return Path(path)
