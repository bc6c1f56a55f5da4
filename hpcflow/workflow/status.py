"""``hpcflow status RUN_DIR``: where a run stands, read from its files alone (no collective, no
lock taken): which stage, update N of M (or training step N of M), the last checkpoint, the
rate and the time left, whether a live process holds the directory, the workflow's finished
stages, and the same for the runs inside it (the HMC baseline, the flow samplers beside it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hpcflow.io.checkpoint import checkpoint_steps
from hpcflow.io.store import open_h5
from hpcflow.workflow.progress import format_seconds
from hpcflow.workflow.runcard.card import UPDATES_KEY
from hpcflow.workflow.rundir import STORE, lock_holder

__all__ = ["StatusError", "status"]


class StatusError(ValueError):
    """Not a run directory."""


def _eta(done: int, total: int, seconds: float) -> str:
    if done <= 0 or seconds <= 0:
        return ""
    rate = done / seconds
    left = f", {format_seconds((total - done) / rate)} left" if done < total else ""
    return f", {rate:.3g}/s{left}"


def _training(run_dir: Path, card: dict[str, Any]) -> str | None:
    if "training" not in card:
        return None
    model = run_dir / "model"
    steps = card["training"]["steps"]
    if (model / "flow.pt").is_file():
        return f"training: done ({steps} steps), {model / 'flow.pt'}"
    log = model / "train_log.jsonl"
    lines = log.read_text(encoding="utf-8").splitlines() if log.is_file() else []
    last = None
    for line in reversed(lines):
        try:
            last = json.loads(line)
            break
        except ValueError:
            continue
    ckpt = checkpoint_steps(model / "checkpoints")
    if last is None:
        return "training: not started" if not ckpt else f"training: checkpoint at step {ckpt[-1]} of {steps}"
    return (f"training: step {last['step']} of {steps}{_eta(last['step'], steps, last['seconds'])}; loss {last['loss']:.5g}, "
            f"ESS {last['ess']:.3f}; last checkpoint {ckpt[-1] if ckpt else 'none'}")


def _sampling(run_dir: Path, card: dict[str, Any]) -> str:
    s = card["sampler"]
    total = s["thermalization"] + s[UPDATES_KEY[s["kind"]]]
    ckpt = checkpoint_steps(run_dir / "checkpoints")
    timing = json.loads((run_dir / "timing.json").read_text()) if (run_dir / "timing.json").is_file() else None
    complete = False
    if (run_dir / STORE).is_file():
        with open_h5(run_dir / STORE, "r") as f:
            complete = bool(f.attrs.get("complete", False))
    if complete:
        state = "done"
    elif timing is None:
        state = "not started" if not ckpt else "started"
    else:
        state = f"update {timing['updates']} of {total}{_eta(timing['updates'], total, timing['seconds'])}"
    return f"sampling ({s['kind']}, {s['chains']} chains): {state}; last checkpoint {ckpt[-1] if ckpt else 'none'}"


def _one(run_dir: Path, indent: str = "") -> list[str]:
    card = json.loads((run_dir / "runcard.json").read_text(encoding="utf-8"))
    th = card["theory"]
    couplings = ", ".join(f"{k} = {th[k]:g}" for k in ("beta", "lam") if k in th)
    holder = lock_holder(run_dir)
    lines = [f"{indent}{run_dir}: {th['name']} on {'x'.join(map(str, th['shape']))}, {couplings}",
             f"{indent}  {'running: ' + holder if holder else 'no live process'}"]
    training = _training(run_dir, card)
    if training:
        lines.append(f"{indent}  {training}")
    lines.append(f"{indent}  {_sampling(run_dir, card)}")
    return lines


def status(run_dir: Path | str) -> list[str]:
    """The lines of ``hpcflow status RUN_DIR``."""
    run_dir = Path(run_dir)
    if not (run_dir / "runcard.json").is_file():
        raise StatusError(f"{run_dir}: not a run directory (no runcard.json); give the [output].dir of a card")
    lines = _one(run_dir)
    workflow = run_dir / "workflow"
    if workflow.is_dir():
        done = sorted(p.stem for p in workflow.glob("*.done"))
        holder = lock_holder(workflow)
        lines.append(f"  workflow: {'running: ' + holder if holder else 'not running'}; "
                     f"stages done: {', '.join(done) if done else 'none'}")
        if (workflow / "report.md").is_file():
            lines.append(f"  report: {workflow / 'report.md'}")
    for inner in sorted(p.parent for p in run_dir.glob("*/runcard.json")):
        lines += _one(inner, indent="  ")
    return lines
