"""Configurations in and out: ``hpcflow export RUN_DIR --format F`` and ``hpcflow import FILE... --to STORE``.

Export writes stored 4D SU(3) configurations of a run as ILDG, NERSC or openQCD files
(:mod:`hpcflow.io.formats`) into ``RUN_DIR/export/`` (or ``--out``), one file per chain and step,
named ``<run>_c<chain>_s<step>.<ext>``, with ``manifest.json`` (source store, files, checksums,
plaquettes, provenance). Import reads gauge files (the format detected from the first bytes, or
given), checks each against its own checksum and header plaquette, and writes a new store with the
layout of the gauge HMC's (``links`` of one chain, one row per file, and ``observables/plaquette``),
whose attribute ``imported`` records every source file, its format and checksum (under a
launcher of several ranks, ILDG and NERSC files are read in parallel): ``hpcflow solve``
and ``hpcflow precond train`` read it as they read the project's own. The store is built under a
temporary name and renamed; an existing store is never replaced.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from hpcflow.io.atomic import atomic_write_json
from hpcflow.io.formats import FORMATS, GaugeFile, read_gauge_file
from hpcflow.io.formats.common import plaquette
from hpcflow.io.provenance import provenance
from hpcflow.io.store import ConfigStore
from hpcflow.parallel.world import World

__all__ = ["InterchangeError", "describe_import", "export_run", "import_files"]


class InterchangeError(ValueError):
    """An export or import that cannot be done as asked (one line)."""


def _su3_store(run_dir: Path) -> Path:
    path = run_dir / "configs.h5"
    if not path.is_file():
        raise InterchangeError(f"{run_dir}: no configs.h5 there (a run directory of hpcflow sample)")
    with ConfigStore(path) as store:
        theory = str(store.attrs.get("theory", "phi4"))
    if theory != "su3":
        raise InterchangeError(f"{path}: a {theory!r} ensemble; --format ildg|nersc|openqcd hold 4D SU(3) links "
                               "(other theories stay in the HDF5 store)")
    return path


def export_run(run_dir: Path, fmt: str, steps: list[int] | None = None, chains: list[int] | None = None,
               out: Path | None = None, precision: int = 64) -> list[Path]:
    """Write the configurations ``(chain, step)`` of ``run_dir`` (all by default; negative steps
    count from the last) in format ``fmt``; returns the files (module docstring)."""
    if fmt not in FORMATS:
        raise InterchangeError(f"--format {fmt}: expected one of {', '.join(sorted(FORMATS))}")
    if precision != 64 and fmt == "openqcd":
        raise InterchangeError("--precision 32: openQCD files are double precision")
    store_path = _su3_store(run_dir)
    out = out or run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    write, ext = FORMATS[fmt][1], FORMATS[fmt][2]
    entries, files = [], []
    with ConfigStore(store_path) as store:
        rows, n_chains = store.rows("links"), store.file["links"].shape[0]
        chosen = range(n_chains) if chains is None else chains
        wanted = range(rows) if steps is None else steps
        for chain in chosen:
            if not 0 <= chain < n_chains:
                raise InterchangeError(f"--chains {chain}: the store has chains 0..{n_chains - 1}")
            for step in wanted:
                if not -rows <= step < rows:
                    raise InterchangeError(f"--steps {step}: the store holds steps 0..{rows - 1} (or -{rows}..-1)")
                row = step % rows
                links = store.file["links"][chain, row]
                path = out / f"{run_dir.name}_c{chain}_s{row:05d}.{ext}"
                extra = {"precision": precision} if fmt != "openqcd" else {}
                if fmt == "ildg":
                    extra["lfn"] = f"hpcflow/{run_dir.name}/chain{chain}/step{row}"
                try:
                    checksum = write(path, links, **extra)
                except ValueError as err:  # a lattice the format cannot hold (openQCD: odd extents)
                    raise InterchangeError(str(err)) from None
                entries.append({"file": path.name, "chain": chain, "step": row, "checksum": checksum,
                                "plaquette": plaquette(links)})
                files.append(path)
    atomic_write_json(out / "manifest.json", {"source": str(store_path.resolve()), "format": fmt,
                                              "precision": precision, "files": entries, "provenance": provenance()})
    return files


def _read_all(files: list[Path], fmt: str | None, world: World) -> list[GaugeFile]:
    configs = [read_gauge_file(path, fmt, world) for path in files]
    shapes = {c.links.shape for c in configs}
    if len(shapes) > 1:
        raise InterchangeError(f"the files hold different lattices: {sorted(list(s[1:5]) for s in shapes)}")
    return configs


def import_files(files: list[Path], to: Path, fmt: str | None = None, world: World | None = None) -> Path:
    """Read gauge ``files`` into a new store ``to`` (module docstring); returns ``to``. With a
    ``world`` of several ranks the files are read in parallel and rank 0 writes the store."""
    world = world or World()
    if not files:
        raise InterchangeError("no files to import")
    if to.exists():
        raise InterchangeError(f"--to {to}: exists; nothing already written is replaced (choose a new path)")
    configs = _read_all(files, fmt, world)
    if not world.is_root:
        world.barrier()
        return to
    shape = configs[0].links.shape
    records: list[dict[str, Any]] = [{"source": str(Path(p).resolve()), **c.meta, "checksum": c.checksum,
                                      "header_plaquette": c.plaquette} for p, c in zip(files, configs)]
    plaquettes = np.array([[plaquette(c.links) for c in configs]])
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.with_name(f".{to.name}.importing-{os.getpid()}")
    try:
        ConfigStore.create(tmp, {"links": ((1, len(configs), *shape), "complex128"),
                                 "observables/plaquette": ((1, len(configs)), "float64")},
                           {"theory": "su3", "sampler": "import", "chains": 1, "complete": True,
                            "imported": json.dumps(records), "provenance": provenance()})
        with ConfigStore(tmp, "r+") as store:
            store.write("links", 0, np.stack([c.links for c in configs])[None])
            store.write("observables/plaquette", 0, plaquettes)
            store.flush()
        os.replace(tmp, to)
    finally:
        tmp.unlink(missing_ok=True)
        world.barrier()
    return to


def describe_import(to: Path) -> list[str]:
    """One line per imported configuration: its row, source, format and checksum."""
    with ConfigStore(to) as store:
        records = json.loads(store.attrs["imported"])
        plaq = store.read("observables/plaquette")[0]
    return [f"row {i}: {r['source']} ({r['format']}, checksum {r['checksum']}), plaquette {p:.10f}"
            for i, (r, p) in enumerate(zip(records, plaq))]
