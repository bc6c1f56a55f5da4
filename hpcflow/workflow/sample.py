"""The sampling stage: a batch of Markov chains into a resumable run directory.

Run directory layout::

    runcard.toml, runcard.json   the card as given and normalized (identity of the run)
    configs.h5                   see :mod:`hpcflow.workflow.chain_store` and :mod:`hpcflow.io.store`
    checkpoints/<update>/        sampler state and per-chain RNG states (CPU tensors)
    timing.json                  wall-clock seconds of the updates so far

Order of writes at a checkpoint: buffered rows into ``configs.h5`` (flush, fsync), then the
checkpoint (atomic). A run killed at any moment and restarted with the same command resumes from
the newest complete checkpoint, rewinds the store's row counters to it and regenerates the rows
after it bit for bit, so the file equals that of an uninterrupted run. SIGTERM and SIGINT (a
queue's time limit, Ctrl-C) write a checkpoint at the end of the current update and exit. A
store that holds rows is never replaced: without a readable checkpoint the run stops with an
error. One live process at a time works in a run directory (:func:`~hpcflow.workflow.rundir.lock_run_dir`).

Under a launcher with N ranks each rank runs its block of chains and writes it into the store
(:mod:`hpcflow.io.shards`); rank 0 reads the checkpoint and hands each rank its block, gathers
the checkpoints and shows the progress; a signal on any rank stops all of them at the same update.
The chains live on ``[parallel].device`` (:mod:`hpcflow.parallel.device`).
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from hpcflow.io.atomic import atomic_write_json
from hpcflow.io.checkpoint import latest_checkpoint, on_device, save_checkpoint
from hpcflow.io.shards import BlockWriter, ShardingError, choose_layout, stored_layout
from hpcflow.io.store import ConfigStore
from hpcflow.parallel.world import World, chain_blocks, merge_chain_blocks, take_chain_block
from hpcflow.workflow.chain_store import (
    PendingRows,
    check_disk,
    check_fresh_start,
    check_memory,
    create_store,
    parallel_record,
    store_layout,
)
from hpcflow.workflow.chains import ChainSampler, chain_sampler
from hpcflow.workflow.model_io import check_flow_inputs
from hpcflow.workflow.runcard import RunCard, RunCardError
from hpcflow.workflow.rundir import (
    STORE,
    add_extension,
    check_run_dir,
    extended,
    extensions,
    lock_run_dir,
    prepare_run_dir,
)
from hpcflow.workflow.progress import Progress
from hpcflow.workflow.signals import Interrupted, StopFlag

__all__ = ["sample"]

log = logging.getLogger(__name__)


def _measure(state: Any, sampler: ChainSampler) -> dict[str, torch.Tensor]:
    theory = sampler.theory
    field, action = sampler.physical(state)
    rows = {theory.field: field}
    rows.update({f"observables/{k}": v for k, v in theory.measure(field, action).items()})
    rows.update({f"observables/{k}": v for k, v in sampler.measure(state).items()})
    return rows


def _blocks(card: RunCard, world: World) -> list[range]:
    try:
        return chain_blocks(card.sampler["chains"], world.size)
    except ValueError as err:
        raise RunCardError(card.source, [f"[sampler].chains = {card.sampler['chains']}: {err}"]) from None


def _grow_if_extended(card: RunCard, store_path: Path, layout: dict[str, Any]) -> None:
    """An existing store too short for the (extended) run is grown to the run's layout."""
    if not store_path.is_file():
        return
    with ConfigStore(store_path) as store:
        short = any(store.capacity(name) < shape[1] for name, (shape, _) in layout.items())
    if short:
        check_disk(card, layout)
        try:
            ConfigStore.grow(store_path, layout, {"complete": False, "extensions": extensions(card.run_dir)})
        except ValueError as err:
            raise RunCardError(card.source, [f"--extend: {err}"]) from None
        log.info("%s grown for %d updates", store_path, card.updates)


def _checkpoint_parts(card: RunCard, sampler: ChainSampler, blocks: list[range], device: torch.device) -> list[Any]:
    """Rank 0: the newest checkpoint cut into each rank's block (``None`` each for a fresh start)."""
    resumed = latest_checkpoint(card.run_dir / "checkpoints")
    if resumed is None:
        check_fresh_start(card, card.run_dir / STORE)
        return [None] * len(blocks)
    start, payload = resumed
    written_on = payload.get("device", "cpu")
    if written_on != device.type:
        raise RunCardError(card.source, [
            f"[parallel].device: this run was started on {written_on} and its random streams live there; "
            f"it is continued on the same device type (set [parallel].device = {'cpu' if written_on == 'cpu' else 'cuda'!r})"
        ])
    return [{"start": start, "seconds": float(payload["seconds"]), "rng": payload["rng"][b.start : b.stop],
             "sampler": take_chain_block(payload["sampler"], sampler.chain_axes, b)} for b in blocks]


def sample(card: RunCard, progress: bool = True, world: World | None = None, extend: int = 0) -> Path:
    """Run (or resume) the sampling stage of ``card``; returns the path of ``configs.h5``.

    ``extend``: go on for that many more updates after the card's (and earlier extensions'):
    recorded in the run directory first, the store grown to hold them, the chains continued from
    the last checkpoint, so the store equals that of a card with the longer run, bit for bit.

    With several ranks (``mpiexec``/``srun``) the chains are split in blocks
    (:func:`hpcflow.parallel.world.chain_blocks`); every chain draws from its own stream, so the
    store equals that of a 1-rank run. Checkpoints hold all chains (gathered on rank 0), so a
    ``single``-layout run resumes on any number of ranks; a ``per-rank`` one on the same number.
    """
    world = World.detect() if world is None else world
    card.refuse_operator_card("hpcflow sample")
    device = card.device()
    check_run_dir(card)
    check_flow_inputs(card, will_train=False)
    with lock_run_dir(card.run_dir) if world.is_root else nullcontext():
        if world.is_root:
            prepare_run_dir(card)
            if extend:
                if not (card.run_dir / STORE).is_file():
                    raise RunCardError(card.source, [f"--extend {extend}: {card.run_dir} has no run to extend yet"])
                add_extension(card, extend)
        world.barrier()
        return _sample_ranks(extended(card), progress, world, device)


def _sample_ranks(card: RunCard, progress: bool, world: World, device: torch.device) -> Path:
    run_dir, s = card.run_dir, card.sampler
    therm, every, total = s["thermalization"], s["measure_every"], s["thermalization"] + card.updates
    blocks = _blocks(card, world)
    block = blocks[world.rank]
    sampler = chain_sampler(card, block, world, device)
    check_memory(card, sampler, device)
    store_path = run_dir / STORE
    layout = store_layout(card, sampler)

    if world.is_root:
        _grow_if_extended(card, store_path, layout)
    mine = world.scatter(_checkpoint_parts(card, sampler, blocks, device) if world.is_root else None)
    if mine is None:
        try:
            io = choose_layout(card.data["parallel"]["io"], world.size)
        except ShardingError as err:
            raise RunCardError(card.source, [str(err)]) from None
        if world.is_root:
            create_store(card, sampler, store_path, layout, io, blocks, device)
        world.barrier()
        state, start, seconds = sampler.initial(), 0, 0.0
    else:
        start, seconds = mine["start"], mine["seconds"]
        io = world.bcast(stored_layout(store_path)[0] if world.is_root else None)
        sampler.rng.set_state(mine["rng"])
        state = sampler.restore(on_device(mine["sampler"], device))
        if world.is_root:
            log.info("resuming %s at update %d of %d on %d ranks", run_dir, start, total, world.size)

    store = BlockWriter(store_path, world, block, io, blocks)
    with StopFlag() as stop:
        rows = PendingRows(layout, sampler.kind, start - therm, every)
        for name, first in rows.starts.items():
            store.truncate(name, first)
        store.flush()
        bar = Progress(total, start, f"{sampler.kind} {run_dir.name}", "update", world.is_root, bar=progress)
        t0 = time.perf_counter()
        update, accepted = start, []
        while update < total:
            state, records = sampler.step(state)
            update += 1
            if update <= therm:
                sampler.adapt(records)
            else:
                rows.add({f"{sampler.kind}/{k}": v for k, v in records.items()})
                if (update - therm) % every == 0:
                    rows.add(_measure(state, sampler))
            accepted.append(float(records["accepted"].double().mean()))
            bar.set_postfix(acceptance=f"{sum(accepted[-100:]) / len(accepted[-100:]):.3f}")
            bar.update(1)
            signum = _signal_on_any_rank(stop, world)
            if update % card.output["checkpoint_every"] == 0 or update == total or signum is not None:
                rows.flush_into(store)
                _checkpoint(card, sampler, state, world, update, seconds + time.perf_counter() - t0, device)
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
            final.finalize({**sampler.summary(records), "parallel": parallel_record(card, io, blocks), "complete": True})
    world.barrier()
    return store_path


def _checkpoint(card: RunCard, sampler: ChainSampler, state: Any, world: World, update: int, elapsed: float,
                device: torch.device) -> None:
    """Every rank's chains gathered on rank 0 (as CPU tensors) and written as one checkpoint."""
    parts = world.gather({"sampler": on_device(sampler.checkpoint(state), "cpu"), "rng": sampler.rng.get_state()})
    if parts is not None:
        merged = {
            "sampler": merge_chain_blocks([p["sampler"] for p in parts], sampler.chain_axes),
            "rng": [g for p in parts for g in p["rng"]],
            "seconds": elapsed,
            "ranks": world.size,
            "device": device.type,
        }
        save_checkpoint(card.run_dir / "checkpoints", update, merged)
        atomic_write_json(card.run_dir / "timing.json", {"updates": update, "seconds": elapsed})
    world.barrier()


def _signal_on_any_rank(stop: StopFlag, world: World) -> int | None:
    """The signal that asked some rank to stop (all ranks stop at the same update), or ``None``."""
    if world.size == 1:
        return stop.signum
    return next((s for s in world.allgather(stop.signum) if s is not None), None)
