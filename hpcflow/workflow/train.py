r"""The training stage: a model (a coupling flow or a gradient-flow map, ``[model].kind``) trained
by reverse KL on the card's action.

Writes into ``RUN_DIR/model/``: ``checkpoints/<step>/`` (model, optimizer, schedule, generator,
step; atomic), ``train_log.jsonl`` (one JSON object per logged step: loss, ESS, acceptance
estimate, ``phi_train`` = batch x steps, learning rate, gradient norm, rollbacks, seconds, and
for a gradient-flow map ``log_q_error``, the spread of the change of log q at doubled
integration steps, with a warning once it passes what NMCMC accepts) and,
at the end, ``flow.pt`` (see :mod:`hpcflow.workflow.model_io`).

Loss: :math:`L = \frac1B\sum_b[\log r(z_b) - \log|\det J(z_b)| + S(f(z_b))]` with the theory's
action (the one HMC uses: :mod:`hpcflow.theories.phi4`, :mod:`hpcflow.theories.gauge`) and the
model's base distribution :math:`r` (Gaussian for flows, Haar for gradient flows). Adam, cosine or constant learning rate,
gradient-norm clipping. A non-finite loss or gradient rolls the model and optimizer back to the
last good state (kept every ``log_every`` steps) and draws a new batch; more than
``max_rollbacks`` in a row stops the run with an error. A killed run restarted with the same
command resumes from the newest complete checkpoint and ends with the same parameters as an
uninterrupted one (CPU, same seed).

A flow whose last layer is a zero-mode map (``[model].zero_mode``) has it fitted after the
training to the target's distribution of :math:`M` by short flow-HMC runs
(:mod:`hpcflow.samplers.zero_mode_calibration`, ``[training].calibration_trajectories`` per round;
its record goes into ``meta["calibration"]`` of ``flow.pt``); reverse KL alone leaves it near the identity.

``[training].init`` starts from the parameters of a trained ``flow.pt`` of the same architecture
instead of the identity map: a flow trained on a smaller lattice (the conditioners do not depend
on the lattice size) or at a nearby coupling is fine-tuned. Its ``meta`` (steps, Phi_train,
seconds, lattice) is kept in the new ``flow.pt`` under ``meta["init"]``, so the cost of a row
counts both stages.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import signal
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hpcflow.io.atomic import atomic_write_text
from hpcflow.io.checkpoint import latest_checkpoint, save_checkpoint
from hpcflow.lattice.rng import chain_seed, seeded_generator
from hpcflow.models.flows.loss import effective_sample_size, imh_acceptance, reverse_kl
from hpcflow.models.registry import build_model
from hpcflow.parallel.device import DeviceUnavailable
from hpcflow.parallel.strategy import STRATEGIES, Strategy, StrategyUnavailable
from hpcflow.samplers.zero_mode_calibration import calibrate_zero_mode
from hpcflow.workflow.model_io import (
    ModelError,
    check_compatible,
    check_flow_inputs,
    model_spec,
    load_parameters,
    read_flow,
    save_flow,
)
from hpcflow.workflow.chains import LOG_Q_DRAWS, LOG_Q_TOLERANCE
from hpcflow.workflow.runcard import RunCard, RunCardError
from hpcflow.workflow.rundir import check_run_dir, lock_run_dir, prepare_run_dir
from hpcflow.analysis.report import plot_training
from hpcflow.workflow.progress import Progress, format_seconds
from hpcflow.workflow.signals import Interrupted, StopFlag
from hpcflow.workflow.theories import theory_of

__all__ = ["TrainingDiverged", "train"]

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """Too many non-finite steps in a row."""


def _schedule(opt: torch.optim.Optimizer, kind: str, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    if kind == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1.0 + math.cos(math.pi * min(k, steps) / max(steps, 1))))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0)


def _logged_step(line: str) -> int | None:
    """The step of a log line, or ``None`` for a line that does not parse (torn by a kill)."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def _rewrite_log(path: Path, last_step: int) -> None:
    """Keep the log lines of steps up to ``last_step`` (those after it will be written again);
    a torn line (the process killed while writing it) is dropped."""
    if not path.is_file():
        return
    kept, torn = [], 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        step = _logged_step(line)
        if step is None:
            torn += bool(line.strip())
        elif step <= last_step:
            kept.append(line)
    if torn:
        log.warning("%s: dropped %d line(s) torn by an interrupted write", path, torn)
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def _state(flow: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
    return {"model": copy.deepcopy(flow.state_dict()), "optimizer": copy.deepcopy(opt.state_dict())}


def _shards(t: dict[str, Any], rank: int) -> range:
    """Latent shards drawn by ``rank``: ``batch / shard`` consecutive shard indices."""
    per_rank = t["batch"] // t.get("shard", t["batch"])
    return range(rank * per_rank, (rank + 1) * per_rank)


def train(card: RunCard, progress: bool = True, strategy: Strategy | None = None) -> Path:
    """Train (or resume training) the flow of ``card``; returns the path of ``flow.pt``.

    Data parallel over the ranks of ``strategy`` (default: ``[parallel].backend``): rank ``r``
    draws latent shards ``r * batch/shard ...`` of ``shard`` samples each (``shard`` defaults to
    ``batch``), shard ``k`` from its own stream seeded by ``SeedSequence(seed, spawn_key=(k,))``,
    so the union of the latent batches depends only on the shard indices: 1 rank with batch
    ``2b`` and shard ``b`` draws what 2 ranks with batch ``b`` draw. Gradients are averaged over
    ranks (global batch = ranks x batch); rank 0 writes checkpoints, the log and the model.
    """
    missing = [s for s in ("model", "training") if s not in card.data]
    if missing:
        raise RunCardError(card.source, [f"[{s}]: missing required section for hpcflow train" for s in missing])
    check_run_dir(card)
    check_flow_inputs(card, will_train=True)
    made_here = strategy is None  # a strategy made here is shut down here (its process group closed)
    if strategy is None:
        strategy = STRATEGIES[card.data["parallel"]["backend"]]()
    if not strategy.initialized:
        try:
            strategy.init(card.data["parallel"]["device"])
        except DeviceUnavailable as err:
            raise RunCardError(card.source, [str(err)]) from None
        except (StrategyUnavailable, ValueError) as err:
            raise RunCardError(card.source, [f"[parallel].backend = {strategy.name!r}: {err}"]) from None
    try:
        with lock_run_dir(card.run_dir) if strategy.env.is_root else nullcontext():
            return _train_ranks(card, progress, strategy)
    finally:
        if made_here:
            strategy.shutdown()


def _read_checkpoint(ckpt_dir: Path, strategy: Strategy) -> tuple[int, dict[str, Any]] | None:
    """The newest checkpoint, read on rank 0 and broadcast (every rank continues from the same one)."""
    return strategy.broadcast_object(latest_checkpoint(ckpt_dir) if strategy.env.is_root else None)


def _train_ranks(card: RunCard, progress: bool, strategy: Strategy) -> Path:
    """The training loop of :func:`train` on the ranks of an initialized ``strategy``."""
    env = strategy.env
    root = env.is_root
    run_dir = prepare_run_dir(card) if root else card.run_dir
    strategy.barrier()
    t = card.data["training"]
    shape = tuple(card.theory["shape"])
    dtype = getattr(torch, t["dtype"])
    shard = t.get("shard", t["batch"])
    action = theory_of(card).action()
    model_dir = run_dir / "model"
    ckpt_dir, log_path, final = model_dir / "checkpoints", model_dir / "train_log.jsonl", model_dir / "flow.pt"
    device = strategy.device
    torch.manual_seed(t["seed"])  # parameter initialization on the CPU, identical on every rank and device
    flow = build_model(model_spec(card), card.theory).to(dtype).to(device)
    if not any(p.requires_grad for p in flow.parameters()):  # nothing to train ([training].steps = 0 by the card)
        _save_model(card, flow, strategy, 0.0, None)
        strategy.barrier()
        return final
    opt = torch.optim.Adam(flow.parameters(), lr=t["lr"])
    sched = _schedule(opt, t["schedule"], t["steps"])
    owned = _shards(t, env.rank)
    gens = {k: seeded_generator(chain_seed(t["seed"], k), device) for k in owned}
    start, seconds, rollbacks_total = 0, 0.0, 0
    resumed = _read_checkpoint(ckpt_dir, strategy)
    if resumed is not None:
        start, ck = resumed
        what = f"checkpoint {ckpt_dir / f'{start:010d}'}"
        if ck.get("device", "cpu") != device.type:
            raise ModelError(f"{what}: written on {ck.get('device', 'cpu')}, whose random streams this run on "
                             f"{device.type} cannot continue; set [parallel].device to match")
        check_compatible(ck["spec"], card, what)
        if list(ck["shape"]) != list(shape):
            raise ModelError(f"checkpoint {ckpt_dir}: trained on lattice {ck['shape']}, the card has {list(shape)}")
        states = ck["generators"] if "generators" in ck else [ck["generator"]]  # single-stream checkpoints
        if len(states) != env.size * len(owned):
            raise ModelError(
                f"checkpoint {ckpt_dir}: {len(states)} latent shards, this run has {env.size} ranks x {len(owned)}; "
                "set [training].batch and shard so that ranks x batch / shard stays the same"
            )
        load_parameters(flow, ck["model"], what)
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["schedule"])
        for k in owned:
            gens[k].set_state(states[k])
        seconds, rollbacks_total = float(ck["seconds"]), int(ck["rollbacks"])
        init_meta = ck.get("init")
        if root:
            log.info("resuming training in %s at step %d of %d", model_dir, start, t["steps"])
    elif "init" in t:
        init_path = Path(t["init"])
        pretrained, stored = read_flow(init_path, card, "[training].init")
        flow.load_state_dict(pretrained.state_dict())
        init_meta = {"path": str(init_path), **stored}
    else:
        init_meta = None
    model, opt = strategy.wrap(flow, opt)
    if root:
        model_dir.mkdir(exist_ok=True)
        _rewrite_log(log_path, start)
    good = _state(flow, opt)
    t0 = time.perf_counter()

    def checkpoint(step: int) -> None:
        states = strategy.gather_objects([gens[k].get_state() for k in owned])
        if root:
            save_checkpoint(ckpt_dir, step, {
                "model": flow.state_dict(), "optimizer": opt.state_dict(), "schedule": sched.state_dict(),
                "generators": [s for rank_states in states for s in rank_states],
                "seconds": seconds + time.perf_counter() - t0, "rollbacks": rollbacks_total,
                "spec": flow.spec.to_dict(), "shape": list(shape), "ranks": env.size, "init": init_meta,
                "device": device.type,
            })
        strategy.barrier()

    bar = Progress(t["steps"], start, f"train {run_dir.name}", "step", root, bar=progress)
    step, in_a_row, warned = start, 0, False
    with StopFlag() as stop, open(log_path, "a", encoding="utf-8") if root else nullcontext() as log_file:
        while step < t["steps"]:
            z = torch.cat([flow.prior.sample(shard, shape, gens[k], dtype) for k in owned])
            loss, log_w = reverse_kl(flow, action, z, forward=model)
            opt.zero_grad()
            # every rank runs backward, even on a non-finite loss: the gradient reduction is
            # collective, and NaN gradients then reach every rank, which all roll back together
            loss.backward()
            strategy.reduce_gradients(opt)
            grad_norm = torch.nn.utils.clip_grad_norm_(flow.parameters(), t["clip"])
            finite = strategy.all_reduce_mean(torch.tensor(float(torch.isfinite(grad_norm)))).item() == 1.0
            if not finite:  # every rank rolls back together
                in_a_row += 1
                rollbacks_total += 1
                if in_a_row > t["max_rollbacks"]:
                    raise TrainingDiverged(f"{in_a_row} non-finite steps in a row at step {step}; lower [training].lr")
                log.warning("non-finite loss or gradient at step %d: rolling back to the last good state", step)
                flow.load_state_dict(good["model"])
                opt.load_state_dict(good["optimizer"])
                continue
            in_a_row = 0
            strategy.step(opt)
            sched.step()
            step += 1
            bar.update(1)
            if step % t["log_every"] == 0 or step == t["steps"]:
                good = _state(flow, opt)
                all_log_w = strategy.all_gather(log_w).double()
                mean_loss = strategy.all_reduce_mean(loss.detach()).item()
                if root:
                    entry = {
                        "step": step, "loss": mean_loss, "ess": effective_sample_size(all_log_w),
                        "acceptance": imh_acceptance(all_log_w, torch.Generator().manual_seed(step)),
                        "phi_train": step * t["batch"] * env.size, "lr": sched.get_last_lr()[0],
                        "grad_norm": grad_norm.item(), "rollbacks": rollbacks_total,
                        "seconds": round(seconds + time.perf_counter() - t0, 3),
                    }
                    if hasattr(flow, "log_q_error"):  # a map that integrates a flow equation
                        entry["log_q_error"] = _integration_error(flow, z, card.run_dir.name, step, warn=not warned)
                        warned = warned or not entry["log_q_error"] <= LOG_Q_TOLERANCE
                    log_file.write(json.dumps(entry) + "\n")
                    log_file.flush()
                    bar.set_postfix(loss=f"{entry['loss']:.3f}", ess=f"{entry['ess']:.3f}")
            stopping = strategy.all_reduce_mean(torch.tensor(float(stop.signum is not None))).item() > 0
            if step % t["checkpoint_every"] == 0 or step == t["steps"] or stopping:
                good = _state(flow, opt)
                checkpoint(step)
                if stopping and step < t["steps"]:
                    bar.close()
                    raise Interrupted(stop.signum or signal.SIGTERM, f"at training step {step}")
    bar.close()
    calibration = None
    if root:  # a zero-mode map is fitted to the target's M by short flow-HMC runs; others return None
        calibration = calibrate_zero_mode(flow, action, shape, seed=t["seed"], trajectories=t["calibration_trajectories"],
                                          device=device)
    # the seconds include the calibration's: the cost of the model
    _save_model(card, flow, strategy, seconds + time.perf_counter() - t0, init_meta, calibration)
    strategy.barrier()
    return final


def _integration_error(flow: nn.Module, z: torch.Tensor, name: str, step: int, warn: bool) -> float:
    """The spread of the change of log q when the map's integration steps are doubled, over the
    first :data:`~hpcflow.workflow.chains.LOG_Q_DRAWS` draws of the batch; with ``warn``, a warning
    when it passes the tolerance NMCMC refuses above (reverse KL can learn to exploit the integration error)."""
    spread = float(flow.log_q_error(z[:LOG_Q_DRAWS].detach()).std())
    if warn and not spread <= LOG_Q_TOLERANCE:
        log.warning("%s, step %d: log q changes by %.3g when the map's %d integration steps are doubled (NMCMC "
                    "refuses above %g): the training is exploiting the integration error; raise [model].steps",
                    name, step, spread, flow.steps, LOG_Q_TOLERANCE)
    return spread


def _save_model(card: RunCard, flow: nn.Module, strategy: Strategy, seconds: float, init_meta: dict | None,
                calibration: dict | None = None) -> None:
    """Rank 0 writes ``model/flow.pt`` with the training's provenance (and the record of a
    zero-mode calibration), and summarizes the log."""
    if not strategy.env.is_root:
        return
    t, size, model_dir = card.data["training"], strategy.env.size, card.run_dir / "model"
    model_dir.mkdir(exist_ok=True)
    save_flow(model_dir / "flow.pt", flow, tuple(card.theory["shape"]), {
        "steps": t["steps"], "batch": t["batch"] * size, "phi_train": t["steps"] * t["batch"] * size, "ranks": size,
        "backend": strategy.name, "shard_seeds": [[chain_seed(t["seed"], k) for k in _shards(t, r)] for r in range(size)],
        "seconds": seconds, **({"init": init_meta} if init_meta else {}),
        **({"calibration": calibration} if calibration else {})})
    if (model_dir / "train_log.jsonl").exists():
        _summarize(card, model_dir / "train_log.jsonl", model_dir / "training.png")


def _summarize(card: RunCard, log_path: Path, plot: Path) -> None:
    """The last logged state of the training as one log line, and the training curves."""
    entries = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines() if _logged_step(line)]
    if not entries:
        return
    last = entries[-1]
    log.info("trained %s: %d steps, loss %.5g, ESS %.3f, acceptance %.3f, Phi_train %d, %s", card.run_dir.name,
             last["step"], last["loss"], last["ess"], last["acceptance"], last["phi_train"], format_seconds(last["seconds"]))
    th = card.theory
    lam = f", lam = {th['lam']:g}" if "lam" in th else ""
    plot_training(plot, entries, f"{th['name']} {'x'.join(map(str, th['shape']))}, beta = {th['beta']:g}"
                                 f"{lam}: training ({model_spec(card).describe()})")
