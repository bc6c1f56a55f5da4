"""The sampling stage: a batch of Markov chains into a resumable run directory.

Run directory layout::

    runcard.toml, runcard.json   the card as given and normalized (identity of the run)
    configs.h5                   see :mod:`hpcflow.io.store`: the field (``phi`` or ``links``,
                                 :mod:`hpcflow.workflow.theories`) as (chain, step, ...),
                                 ``observables/<name>`` (chain, step[, ...]),
                                 ``<kind>/<record>`` (chain, update), e.g. ``hmc/dH``, ``nmcmc/log_w``
    checkpoints/<update>/        sampler state and per-chain RNG states
    timing.json                  wall-clock seconds of the updates so far

Order of writes at a checkpoint: buffered rows into ``configs.h5`` (flush, fsync), then the
checkpoint (atomic). A run killed at any moment and restarted with the same command resumes from
the newest complete checkpoint, rewinds the store's row counters to it and regenerates the rows
after it bit for bit, so the file equals that of an uninterrupted run. SIGTERM and SIGINT (a
queue's time limit, Ctrl-C) write a checkpoint at the end of the current update and exit.

Under a launcher with N ranks each rank runs its block of chains and writes it into the store
(:mod:`hpcflow.io.shards`); rank 0 gathers the checkpoints and the progress bar, a signal on any
rank stops all of them at the same update.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from hpcflow.io.atomic import atomic_write_json, atomic_write_text
from hpcflow.io.checkpoint import latest_checkpoint, save_checkpoint
from hpcflow.io.provenance import provenance
from hpcflow.io.shards import BlockWriter, ShardingError, choose_layout, stored_layout
from hpcflow.io.store import ConfigStore
from hpcflow.lattice.rng import chain_seed
from hpcflow.parallel.world import World, chain_blocks, merge_chain_blocks, take_chain_block
from hpcflow.workflow.chains import ChainSampler, chain_sampler
from hpcflow.workflow.runcard import RunCard, RunCardError
from hpcflow.workflow.signals import Interrupted, StopFlag, progress_bar
from hpcflow.workflow.theories import Theory

__all__ = ["STORE", "check_run_dir", "prepare_run_dir", "sample"]

log = logging.getLogger(__name__)

STORE = "configs.h5"


def _identity(data: dict) -> dict:
    """The parts of a card that define a run: everything but how it is parallelized and the
    workflow's HMC baseline (a run of its own)."""
    return {k: v for k, v in data.items() if k not in ("parallel", "baseline")}


def check_run_dir(card: RunCard) -> None:
    """Refuse a run directory that holds the output of a different run card."""
    stored = card.run_dir / "runcard.json"
    if stored.is_file() and _identity(json.loads(stored.read_text(encoding="utf-8"))) != _identity(card.data):
        raise RunCardError(
            card.source,
            [
                f"[output].dir = {str(card.run_dir)!r}: holds a run created by a different card "
                f"(see {stored}); choose another dir or remove that one"
            ],
        )


def prepare_run_dir(card: RunCard) -> Path:
    """Create the run directory and record the card in it (once); returns the directory."""
    check_run_dir(card)
    card.run_dir.mkdir(parents=True, exist_ok=True)
    if not (card.run_dir / "runcard.json").is_file():
        atomic_write_text(card.run_dir / "runcard.toml", card.text)
        atomic_write_json(card.run_dir / "runcard.json", card.data)
    return card.run_dir


def _layout(card: RunCard, theory: Theory, sampler: ChainSampler) -> dict[str, tuple[tuple[int, ...], str]]:
    b = card.sampler["chains"]
    steps = card.updates // card.sampler["measure_every"]
    layout = {theory.field: ((b, steps, *theory.field_shape()), theory.dtype)}
    for name, (shape, dtype) in theory.observables().items():
        layout[f"observables/{name}"] = ((b, steps, *shape), dtype)
    for name, dtype in sampler.measurements.items():
        layout[f"observables/{name}"] = ((b, steps), dtype)
    for name, dtype in sampler.records.items():
        layout[f"{sampler.kind}/{name}"] = ((b, card.updates), dtype)
    return layout


def _measure(state: object, theory: Theory, sampler: ChainSampler) -> dict[str, torch.Tensor]:
    rows = {theory.field: state.phi}
    rows.update({f"observables/{k}": v for k, v in theory.measure(state.phi, state.action).items()})
    rows.update({f"observables/{k}": v for k, v in sampler.measure(state).items()})
    return rows


class _Rows:
    """Rows produced since the last checkpoint, and where each dataset continues."""

    def __init__(self, layout: dict[str, tuple[tuple[int, ...], str]], kind: str, production: int, every: int) -> None:
        self.names = list(layout)
        self.kind = kind
        self.pending: dict[str, list[np.ndarray]] = {}
        self.rewind(production, every)

    def rewind(self, production: int, every: int) -> None:
        """Starting rows after ``production`` post-thermalization updates."""
        production = max(0, production)
        self.starts = {n: production if n.startswith(self.kind + "/") else production // every for n in self.names}

    def add(self, rows: dict[str, torch.Tensor]) -> None:
        for name, value in rows.items():
            self.pending.setdefault(name, []).append(value.detach().cpu().numpy())

    def flush_into(self, store: BlockWriter) -> None:
        for name, rows in self.pending.items():
            store.write(name, self.starts[name], np.stack(rows, axis=1))
            self.starts[name] += len(rows)
        self.pending.clear()
        store.flush()


def _store_attrs(card: RunCard, sampler: ChainSampler, layout: str, blocks: list[range]) -> dict:
    s = card.sampler
    versions = provenance()
    return {
        "run_card": card.text,
        "run_card_normalized": card.canonical(),
        "code_version": versions["hpcflow"],
        "provenance": versions,
        "sampler": sampler.kind,
        "theory": sampler.theory.name,
        "seed": s["seed"],
        "chains": s["chains"],
        "rng": "torch.Generator per chain, seeded by numpy SeedSequence(seed, spawn_key=(chain,))",
        "parallel": _parallel_record(card, layout, blocks),
        "complete": False,
    }


def _parallel_record(card: RunCard, layout: str, blocks: list[range]) -> dict:
    """Ranks, how they talk, store layout, and each rank's chains and their seeds."""
    seed = card.sampler["seed"]
    return {
        "ranks": len(blocks),
        "backend": "mpi4py" if len(blocks) > 1 else "serial",
        "layout": layout,
        "chain_blocks": [[b.start, b.stop] for b in blocks],
        "chain_seeds": [[chain_seed(seed, c) for c in b] for b in blocks],
    }


def _blocks(card: RunCard, world: World) -> list[range]:
    try:
        return chain_blocks(card.sampler["chains"], world.size)
    except ValueError as err:
        raise RunCardError(card.source, [f"[sampler].chains = {card.sampler['chains']}: {err}"]) from None


def sample(card: RunCard, progress: bool = True, world: World | None = None) -> Path:
    """Run (or resume) the sampling stage of ``card``; returns the path of ``configs.h5``.

    With several ranks (``mpiexec``/``srun``) the chains are split in blocks
    (:func:`hpcflow.parallel.world.chain_blocks`); every chain draws from its own stream, so the
    store equals that of a 1-rank run. Checkpoints hold all chains (gathered on rank 0), so a
    ``single``-layout run resumes on any number of ranks; a ``per-rank`` one on the same number.
    """
    world = World.detect() if world is None else world
    check_run_dir(card)
    if world.is_root:
        prepare_run_dir(card)
    world.barrier()
    run_dir = card.run_dir
    s = card.sampler
    therm, every, total = s["thermalization"], s["measure_every"], s["thermalization"] + card.updates
    blocks = _blocks(card, world)
    block = blocks[world.rank]
    sampler = chain_sampler(card, block, world)
    theory = sampler.theory
    store_path, ckpt_dir = run_dir / STORE, run_dir / "checkpoints"
    layout = _layout(card, theory, sampler)

    resumed = latest_checkpoint(ckpt_dir)
    if resumed is None:
        try:
            io = choose_layout(card.data["parallel"]["io"], world.size)
        except ShardingError as err:
            raise RunCardError(card.source, [str(err)]) from None
        if world.is_root:
            attrs = _store_attrs(card, sampler, io, blocks)
            ConfigStore.create(store_path, layout, attrs, blocks=blocks if io == "per-rank" else None)
        world.barrier()
        state, start, seconds = sampler.initial(), 0, 0.0
    else:
        start, payload = resumed
        io = world.bcast(stored_layout(store_path)[0] if world.is_root else None)
        sampler.rng.set_state(payload["rng"][block.start : block.stop])
        state = sampler.restore(take_chain_block(payload["sampler"], sampler.chain_axes, block))
        seconds = float(payload["seconds"])
        if world.is_root:
            log.info("resuming %s at update %d of %d on %d ranks", run_dir, start, total, world.size)

    store = BlockWriter(store_path, world, block, io, blocks)
    with StopFlag() as stop:
        rows = _Rows(layout, sampler.kind, start - therm, every)
        for name, first in rows.starts.items():
            store.truncate(name, first)
        store.flush()
        bar = progress_bar(total, start, f"{sampler.kind} {run_dir.name}", "update", progress and world.is_root)
        t0 = time.perf_counter()
        update = start
        while update < total:
            state, records = sampler.step(state)
            update += 1
            if update <= therm:
                sampler.adapt(records)
            else:
                rows.add({f"{sampler.kind}/{k}": v for k, v in records.items()})
                if (update - therm) % every == 0:
                    rows.add(_measure(state, theory, sampler))
            bar.update(1)
            signum = _signal_on_any_rank(stop, world)
            if update % card.output["checkpoint_every"] == 0 or update == total or signum is not None:
                rows.flush_into(store)
                elapsed = seconds + time.perf_counter() - t0
                parts = world.gather({"sampler": sampler.checkpoint(state), "rng": sampler.rng.get_state()})
                if parts is not None:
                    merged = {
                        "sampler": merge_chain_blocks([p["sampler"] for p in parts], sampler.chain_axes),
                        "rng": [g for p in parts for g in p["rng"]],
                        "seconds": elapsed,
                        "ranks": world.size,
                    }
                    save_checkpoint(ckpt_dir, update, merged)
                    atomic_write_json(run_dir / "timing.json", {"updates": update, "seconds": elapsed})
                world.barrier()
                if signum is not None and update < total:
                    bar.close()
                    store.close()
                    raise Interrupted(signum, f"after update {update}")
        bar.close()
    store.close()
    world.barrier()
    if world.is_root:
        with ConfigStore(store_path, "r+") as final:
            records = {k: final.read(f"{sampler.kind}/{k}") for k in sampler.records}
            final.finalize({**sampler.summary(records), "parallel": _parallel_record(card, io, blocks), "complete": True})
    world.barrier()
    return store_path


def _signal_on_any_rank(stop: StopFlag, world: World) -> int | None:
    """The signal that asked some rank to stop (all ranks stop at the same update), or ``None``."""
    if world.size == 1:
        return stop.signum
    return next((s for s in world.allgather(stop.signum) if s is not None), None)
