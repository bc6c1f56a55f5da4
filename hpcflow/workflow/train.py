r"""The training stage: a flow trained by reverse KL on the card's action.

Writes into ``RUN_DIR/model/``: ``checkpoints/<step>/`` (model, optimizer, schedule, generator,
step; atomic), ``train_log.jsonl`` (one JSON object per logged step: loss, ESS, acceptance
estimate, ``phi_train`` = batch x steps, learning rate, gradient norm, rollbacks, seconds) and,
at the end, ``flow.pt`` (see :mod:`hpcflow.workflow.model_io`).

Loss: :math:`L = \frac1B\sum_b[\log r(z_b) - \log|\det J(z_b)| + S(f(z_b))]` with the action of
:mod:`hpcflow.theories.phi4` (the one HMC uses). Adam, cosine or constant learning rate,
gradient-norm clipping. A non-finite loss or gradient rolls the model and optimizer back to the
last good state (kept every ``log_every`` steps) and draws a new batch; more than
``max_rollbacks`` in a row stops the run with an error. A killed run restarted with the same
command resumes from the newest complete checkpoint and ends with the same parameters as an
uninterrupted one (CPU, same seed).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch

from hpcflow.io.atomic import atomic_write_text
from hpcflow.io.checkpoint import latest_checkpoint, save_checkpoint
from hpcflow.lattice.rng import chain_seed
from hpcflow.models.flows.flow import Flow, build_flow
from hpcflow.models.flows.loss import effective_sample_size, imh_acceptance, reverse_kl
from hpcflow.workflow.model_io import ModelError, check_compatible, flow_spec, save_flow
from hpcflow.workflow.runcard import RunCard, RunCardError
from hpcflow.workflow.sample import prepare_run_dir
from hpcflow.workflow.signals import Interrupted, StopFlag, progress_bar

__all__ = ["TrainingDiverged", "train"]

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """Too many non-finite steps in a row."""


def _schedule(opt: torch.optim.Optimizer, kind: str, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    if kind == "cosine":
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1.0 + math.cos(math.pi * min(k, steps) / steps)))
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1.0)


def _rewrite_log(path: Path, last_step: int) -> None:
    """Keep the log lines of steps up to ``last_step`` (those after it will be written again)."""
    if path.is_file():
        lines = [ln for ln in path.read_text().splitlines() if ln and json.loads(ln)["step"] <= last_step]
        atomic_write_text(path, "".join(ln + "\n" for ln in lines))


def _state(flow: Flow, opt: torch.optim.Optimizer) -> dict[str, Any]:
    return {"model": copy.deepcopy(flow.state_dict()), "optimizer": copy.deepcopy(opt.state_dict())}


def train(card: RunCard, progress: bool = True) -> Path:
    """Train (or resume training) the flow of ``card``; returns the path of ``flow.pt``."""
    missing = [s for s in ("model", "training") if s not in card.data]
    if missing:
        raise RunCardError(card.source, [f"[{s}]: missing required section for hpcflow train" for s in missing])
    run_dir = prepare_run_dir(card)
    t = card.data["training"]
    shape = tuple(card.theory["shape"])
    dtype = getattr(torch, t["dtype"])
    action = card.action()
    model_dir = run_dir / "model"
    ckpt_dir, log_path, final = model_dir / "checkpoints", model_dir / "train_log.jsonl", model_dir / "flow.pt"
    torch.manual_seed(t["seed"])  # parameter initialization
    flow = build_flow(flow_spec(card)).to(dtype)
    opt = torch.optim.Adam(flow.parameters(), lr=t["lr"])
    sched = _schedule(opt, t["schedule"], t["steps"])
    gen = torch.Generator().manual_seed(chain_seed(t["seed"], 0))
    start, seconds, rollbacks_total = 0, 0.0, 0
    resumed = latest_checkpoint(ckpt_dir)
    if resumed is not None:
        start, ck = resumed
        check_compatible(ck["spec"], card, f"checkpoint {ckpt_dir / f'{start:010d}'}")
        if list(ck["shape"]) != list(shape):
            raise ModelError(f"checkpoint {ckpt_dir}: trained on lattice {ck['shape']}, the card has {list(shape)}")
        flow.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        sched.load_state_dict(ck["schedule"])
        gen.set_state(ck["generator"])
        seconds, rollbacks_total = float(ck["seconds"]), int(ck["rollbacks"])
        log.info("resuming training in %s at step %d of %d", model_dir, start, t["steps"])
    model_dir.mkdir(exist_ok=True)
    _rewrite_log(log_path, start)
    good = _state(flow, opt)
    t0 = time.perf_counter()

    def checkpoint(step: int) -> None:
        save_checkpoint(ckpt_dir, step, {
            "model": flow.state_dict(), "optimizer": opt.state_dict(), "schedule": sched.state_dict(),
            "generator": gen.get_state(), "seconds": seconds + time.perf_counter() - t0,
            "rollbacks": rollbacks_total, "spec": flow.spec.to_dict(), "shape": list(shape),
        })

    bar = progress_bar(t["steps"], start, f"train {run_dir.name}", "step", progress)
    step, in_a_row = start, 0
    with StopFlag() as stop, open(log_path, "a", encoding="utf-8") as log_file:
        while step < t["steps"]:
            z = flow.prior.sample(t["batch"], shape, gen, dtype)
            loss, log_w = reverse_kl(flow, action, z)
            opt.zero_grad(set_to_none=True)
            grad_norm = torch.tensor(math.nan)
            if torch.isfinite(loss):
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(flow.parameters(), t["clip"])
            if not torch.isfinite(grad_norm):
                in_a_row += 1
                rollbacks_total += 1
                if in_a_row > t["max_rollbacks"]:
                    raise TrainingDiverged(f"{in_a_row} non-finite steps in a row at step {step}; lower [training].lr")
                log.warning("non-finite loss or gradient at step %d: rolling back to the last good state", step)
                flow.load_state_dict(good["model"])
                opt.load_state_dict(good["optimizer"])
                continue
            in_a_row = 0
            opt.step()
            sched.step()
            step += 1
            bar.update(1)
            if step % t["log_every"] == 0 or step == t["steps"]:
                good = _state(flow, opt)
                entry = {
                    "step": step, "loss": loss.item(), "ess": effective_sample_size(log_w.double()),
                    "acceptance": imh_acceptance(log_w.double(), torch.Generator().manual_seed(step)),
                    "phi_train": step * t["batch"], "lr": sched.get_last_lr()[0], "grad_norm": grad_norm.item(),
                    "rollbacks": rollbacks_total, "seconds": round(seconds + time.perf_counter() - t0, 3),
                }
                log_file.write(json.dumps(entry) + "\n")
                log_file.flush()
                bar.set_postfix(loss=f"{entry['loss']:.3f}", ess=f"{entry['ess']:.3f}")
            if step % t["checkpoint_every"] == 0 or step == t["steps"] or stop.signum is not None:
                log_file.flush()
                good = _state(flow, opt)
                checkpoint(step)
                if stop.signum is not None and step < t["steps"]:
                    bar.close()
                    raise Interrupted(stop.signum, f"at training step {step}")
    bar.close()
    save_flow(final, flow, shape, {"steps": t["steps"], "batch": t["batch"], "phi_train": t["steps"] * t["batch"],
                                  "seconds": seconds + time.perf_counter() - t0})
    return final
