"""The sampling stage: HMC on phi^4 into a resumable run directory.

Run directory layout::

    runcard.toml, runcard.json   the card as given and normalized (identity of the run)
    configs.h5                   see :mod:`hpcflow.io.store`: ``phi`` (chain, step, L0, L1),
                                 ``observables/{action,M,e,C}`` (chain, step[, L0]),
                                 ``hmc/{dH,accepted}`` (chain, trajectory)
    checkpoints/<trajectory>/    sampler state, per-chain RNG states, step-size tuning
    timing.json                  wall-clock seconds of the trajectories so far

Order of writes at a checkpoint: buffered rows into ``configs.h5`` (flush, fsync), then the
checkpoint (atomic). A run killed at any moment and restarted with the same command resumes from
the newest complete checkpoint, rewinds the store's row counters to it and regenerates the rows
after it bit for bit, so the file equals that of an uninterrupted run. SIGTERM and SIGINT (a
queue's time limit, Ctrl-C) write a checkpoint at the end of the current trajectory and exit.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import numpy as np
import torch
from tqdm import tqdm

from hpcflow.io.atomic import atomic_write_json, atomic_write_text
from hpcflow.io.checkpoint import latest_checkpoint, save_checkpoint
from hpcflow.io.provenance import provenance
from hpcflow.io.store import ConfigStore
from hpcflow.lattice.rng import ChainRNG
from hpcflow.samplers.hmc import HMC, HMCState, StepSizeTuner
from hpcflow.samplers.integrators import INTEGRATORS
from hpcflow.theories.phi4 import energy_density, magnetization, timeslice_correlator
from hpcflow.workflow.runcard import RunCard, RunCardError

__all__ = ["Interrupted", "check_run_dir", "sample"]

log = logging.getLogger(__name__)

STORE = "configs.h5"
MEASUREMENTS = ("phi", "observables/action", "observables/M", "observables/e", "observables/C")
TRAJECTORY_DATA = ("hmc/dH", "hmc/accepted")


class Interrupted(RuntimeError):
    """Raised after a signal-triggered checkpoint; the run resumes when restarted."""

    def __init__(self, signum: int, trajectory: int) -> None:
        self.signum = signum
        super().__init__(f"stopped by signal {signum} after trajectory {trajectory}; rerun to resume")


def check_run_dir(card: RunCard) -> None:
    """Refuse a run directory that holds the output of a different run card."""
    stored = card.run_dir / "runcard.json"
    if stored.is_file() and json.loads(stored.read_text(encoding="utf-8")) != card.data:
        raise RunCardError(
            card.source,
            [
                f"[output].dir = {str(card.run_dir)!r}: holds a run created by a different card "
                f"(see {stored}); choose another dir or remove that one"
            ],
        )


def _layout(card: RunCard) -> dict[str, tuple[tuple[int, ...], str]]:
    b, shape = card.sampler["chains"], tuple(card.theory["shape"])
    steps = card.sampler["trajectories"] // card.sampler["measure_every"]
    trajs = card.sampler["trajectories"]
    return {
        "phi": ((b, steps, *shape), "f8"),
        "observables/action": ((b, steps), "f8"),
        "observables/M": ((b, steps), "f8"),
        "observables/e": ((b, steps), "f8"),
        "observables/C": ((b, steps, shape[0]), "f8"),
        "hmc/dH": ((b, trajs), "f8"),
        "hmc/accepted": ((b, trajs), "i1"),
    }


def _row_starts(production: int, every: int) -> dict[str, int]:
    """Rows already written of each dataset after ``production`` post-thermalization trajectories."""
    production = max(0, production)
    starts = {name: production // every for name in MEASUREMENTS}
    starts.update({name: production for name in TRAJECTORY_DATA})
    return starts


@dataclass
class _Buffer:
    """Rows produced since the last checkpoint, per dataset."""

    rows: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def add(self, name: str, value: torch.Tensor) -> None:
        self.rows.setdefault(name, []).append(value.detach().cpu().numpy())

    def flush_into(self, store: ConfigStore, starts: dict[str, int]) -> None:
        for name, rows in self.rows.items():
            store.write(name, starts[name], np.stack(rows, axis=1))
        self.rows.clear()
        store.flush()


class _StopFlag:
    """Turns SIGTERM/SIGINT into a flag checked between trajectories."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, object] = {}

    def __enter__(self) -> _StopFlag:
        for s in (signal.SIGTERM, signal.SIGINT):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


def sample(card: RunCard, progress: bool = True) -> Path:
    """Run (or resume) the HMC stage of ``card``; returns the path of ``configs.h5``."""
    check_run_dir(card)
    run_dir = card.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    s = card.sampler
    therm, n_traj, every = s["thermalization"], s["trajectories"], s["measure_every"]
    total = therm + n_traj
    shape = tuple(card.theory["shape"])
    rng = ChainRNG(s["seed"], range(s["chains"]))
    hmc = HMC(card.action(), INTEGRATORS[s["integrator"]](), tau=s["tau"], n_steps=s["steps"], rng=rng)
    tuner = None
    if "target_acceptance" in s:
        tuner = StepSizeTuner(target=s["target_acceptance"], log_n=float(np.log(s["steps"])))
    store_path = run_dir / STORE
    ckpt_dir = run_dir / "checkpoints"
    timing_path = run_dir / "timing.json"

    resumed = latest_checkpoint(ckpt_dir)
    if resumed is None:
        atomic_write_text(run_dir / "runcard.toml", card.text)
        atomic_write_json(run_dir / "runcard.json", card.data)
        ConfigStore.create(
            store_path,
            _layout(card),
            {
                "run_card": card.text,
                "run_card_normalized": card.canonical(),
                "code_version": provenance()["hpcflow"],
                "provenance": provenance(),
                "seed": s["seed"],
                "chains": s["chains"],
                "rng": "torch.Generator per chain, seeded by numpy SeedSequence(seed, spawn_key=(chain,))",
                "complete": False,
            },
        )
        state = hmc.init(rng.normal(shape))
        start, seconds = 0, 0.0
    else:
        start, ckpt = resumed
        rng.set_state(ckpt["rng"])
        state = HMCState(phi=ckpt["phi"], action=ckpt["action"])
        hmc.n_steps = int(ckpt["n_steps"])
        if tuner is not None:
            tuner.log_n, tuner.updates = float(ckpt["tuner_log_n"]), int(ckpt["tuner_updates"])
        seconds = float(ckpt["seconds"])
        log.info("resuming %s at trajectory %d of %d", run_dir, start, total)

    with ConfigStore(store_path, "r+") as store, _StopFlag() as stop:
        starts = _row_starts(start - therm, every)
        for name, rows in starts.items():
            store.truncate(name, rows)
        buffer = _Buffer()
        bar = tqdm(
            total=total, initial=start, desc=f"hmc {run_dir.name}", unit="traj", mininterval=1.0,
            disable=not (progress and sys.stderr.isatty()),
        )
        traj = start
        t0 = time.perf_counter()
        while traj < total:
            state, info = hmc.step(state)
            traj += 1
            if traj <= therm:
                if tuner is not None:
                    hmc.n_steps = tuner.update(info)
            else:
                buffer.add("hmc/dH", info.dH)
                buffer.add("hmc/accepted", info.accepted.to(torch.int8))
                if (traj - therm) % every == 0:
                    phi = state.phi
                    buffer.add("phi", phi)
                    buffer.add("observables/action", state.action)
                    buffer.add("observables/M", magnetization(phi))
                    buffer.add("observables/e", energy_density(phi))
                    buffer.add("observables/C", timeslice_correlator(phi))
            bar.update(1)
            if traj % card.output["checkpoint_every"] == 0 or traj == total or stop.signum is not None:
                buffer.flush_into(store, starts)
                starts = _row_starts(traj - therm, every)
                elapsed = seconds + time.perf_counter() - t0
                payload = {
                    "phi": state.phi,
                    "action": state.action,
                    "rng": rng.get_state(),
                    "n_steps": hmc.n_steps,
                    "seconds": elapsed,
                }
                if tuner is not None:
                    payload.update(tuner_log_n=tuner.log_n, tuner_updates=tuner.updates)
                save_checkpoint(ckpt_dir, traj, payload)
                atomic_write_json(timing_path, {"trajectories": traj, "seconds": elapsed, "n_steps": hmc.n_steps})
                if stop.signum is not None and traj < total:
                    bar.close()
                    raise Interrupted(stop.signum, traj)
        bar.close()
        accepted = store.read("hmc/accepted")
        store.finalize(
            {
                "acceptance": float(accepted.mean()),
                "acceptance_per_chain": accepted.mean(1).tolist(),
                "n_steps": hmc.n_steps,
                "complete": True,
            }
        )
    return store_path
