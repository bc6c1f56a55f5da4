"""The workflow of ``hpcflow run CARD --system NAME``: train -> sample -> analyze -> report, in Parsl.

Stages (each a Parsl ``bash_app`` running one ``hpcflow`` command; MPI stages with every rank
of the system):

==================  =================================================  ===================
stage               command                                            after
==================  =================================================  ===================
``train``           ``hpcflow train CARD`` (cards with ``[training]``)  -
``nmcmc``           ``hpcflow sample CARD``                             ``train``
``hmc``             ``hpcflow sample`` of the HMC baseline card          -
``analyze_<s>``     ``hpcflow analyze`` of sampler ``s`` (one process)  ``<s>``
report              comparison of the samplers (in this process)       all analyses
==================  =================================================  ===================

An HMC card has only ``hmc`` and its analysis. The HMC baseline of an NMCMC card samples the same
theory with the same number of chains and updates (``[baseline]`` overrides: trajectories,
thermalization, tau, steps, integrator, target_acceptance, seed); its card is written to
``<run>/workflow/baseline_hmc.toml`` and its run to ``<run>/baseline_hmc/``.

Fault tolerance: Parsl retries a failed stage (``retries``); a stage that succeeds leaves
``<run>/workflow/<stage>.done``, and a rerun of the same command skips those stages and starts
the others, which resume from their own checkpoints (a killed ``sample`` continues where its
last checkpoint was; training is not redone). Stage output goes to ``<run>/workflow/<stage>.log``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcflow.analysis.cost import COST_DEFINITION
from hpcflow.analysis.report import pyplot, save_figure
from hpcflow.io.atomic import atomic_write_text
from hpcflow.workflow.jobs import check_card_strings
from hpcflow.workflow.parsl_config import mpi_prefix, parsl_config, resource_spec
from hpcflow.workflow.runcard import RunCard, load_runcard, to_toml
from hpcflow.workflow.systems import System

__all__ = ["Stage", "WorkflowError", "baseline_card", "plan", "run_workflow"]

log = logging.getLogger(__name__)


class WorkflowError(RuntimeError):
    """A stage failed after its retries."""


@dataclass(frozen=True)
class Stage:
    """One step of the workflow: ``hpcflow ARGS``, on all ranks if ``mpi``, after the stages ``after``."""

    name: str
    args: tuple[str, ...]
    mpi: bool
    after: tuple[str, ...] = ()
    run_dir: Path | None = None
    """The run directory a sampling stage fills (for the report)."""


def baseline_card(card: RunCard) -> Path:
    """Write the HMC baseline card of an NMCMC card; returns its path."""
    b = card.data.get("baseline", {})
    sampler = {
        "kind": "hmc",
        "chains": card.sampler["chains"],
        "trajectories": b.get("trajectories", card.updates),
        "thermalization": b.get("thermalization", 100),
        "tau": b.get("tau", 1.0),
        "steps": b.get("steps", 10),
        "integrator": b.get("integrator", "omelyan"),
        "target_acceptance": b.get("target_acceptance", 0.9),
        "seed": b.get("seed", card.sampler["seed"] + 1),
        "measure_every": card.sampler["measure_every"],
    }
    data = {
        "theory": {k: v for k, v in card.theory.items() if v is not None},
        "sampler": sampler,
        "parallel": card.data["parallel"],
        "output": {"dir": str(card.run_dir / "baseline_hmc"), "checkpoint_every": card.output["checkpoint_every"]},
        "analysis": {"t_min": card.analysis["t_min"]},
    }
    path = card.run_dir / "workflow" / "baseline_hmc.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# HMC baseline written by `hpcflow run` (hpcflow.workflow.pipeline)\n" + to_toml(data)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        atomic_write_text(path, text)
    return path


def plan(card: RunCard, card_path: str) -> list[Stage]:
    """The stages of ``card``, in an order that respects ``after``."""
    if card.sampler["kind"] == "hmc":
        return [Stage("hmc", ("sample", card_path), True, run_dir=card.run_dir),
                Stage("analyze_hmc", ("analyze", str(card.run_dir)), False, ("hmc",))]
    stages = []
    if "training" in card.data:
        stages.append(Stage("train", ("train", card_path), True))
    stages.append(Stage("nmcmc", ("sample", card_path), True, ("train",) if stages else (), card.run_dir))
    stages.append(Stage("hmc", ("sample", str(baseline_card(card))), True, run_dir=card.run_dir / "baseline_hmc"))
    stages.append(Stage("analyze_nmcmc", ("analyze", str(card.run_dir)), False, ("nmcmc",)))
    stages.append(Stage("analyze_hmc", ("analyze", str(card.run_dir / "baseline_hmc")), False, ("hmc",)))
    return stages


def _shell(command: str, inputs: list | None = None, stdout: str | None = None, stderr: str | None = None,
           parsl_resource_specification: dict | None = None) -> str:
    """The body of every stage's ``bash_app``: its command line."""
    return command


def run_workflow(card_path: Path, system: System, retries: int = 1) -> Path:
    """Run (or resume) the workflow of ``card_path`` on ``system``; returns the report path."""
    card = load_runcard(card_path)
    check_card_strings(card, str(card_path))
    workflow = card.run_dir / "workflow"
    workflow.mkdir(parents=True, exist_ok=True)
    stages = plan(card, str(card_path))
    import parsl
    from parsl.app.app import bash_app
    from parsl.app.errors import BashExitFailure

    # stages run with this interpreter; batch workers activate the same environment (jobs/systems)
    os.environ.setdefault("HPCFLOW_VENV", sys.prefix)
    bin_dir = str(Path(sys.executable).parent)  # Parsl starts interchange.py and its workers from PATH
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    logging.getLogger("parsl").setLevel(logging.WARNING)
    config = parsl_config(system, workflow / "parsl", retries)
    log.info("system %s: %r", system.name, system)
    app = bash_app(_shell, executors=[config.executors[0].label])
    futures: dict[str, Any] = {}
    with parsl.load(config):
        for stage in stages:
            marker = workflow / f"{stage.name}.done"
            if marker.is_file():
                log.info("stage %s: completed earlier (%s), skipped", stage.name, marker)
                futures[stage.name] = None
                continue
            words = system.command(*stage.args, interpreter=sys.executable)
            prefix = mpi_prefix(system) if stage.mpi else ""
            command = f"{prefix} {shlex.join(words)} && date -u +%Y-%m-%dT%H:%M:%SZ > {shlex.quote(str(marker))}"
            spec = resource_spec(system)
            if spec and not stage.mpi:
                spec = {**spec, "num_nodes": 1, "ranks_per_node": 1, "num_ranks": 1}
            kwargs = {"parsl_resource_specification": spec} if spec else {}
            deps = [f for f in (futures[a] for a in stage.after) if f is not None]
            logfile = str(workflow / f"{stage.name}.log")
            futures[stage.name] = app(command.strip(), inputs=deps, stdout=(logfile, "a"), stderr=(logfile, "a"), **kwargs)
            log.info("stage %s: %s", stage.name, command.strip())
        for name, future in futures.items():
            if future is None:
                continue
            try:
                future.result()
            except BashExitFailure as err:
                raise WorkflowError(f"stage {name} failed ({err}); see {workflow / f'{name}.log'}") from None
            except Exception as err:  # dependency failures name the stage that failed first
                raise WorkflowError(f"stage {name} did not run: {err}; see the logs in {workflow}") from None
    return write_report(card, [s for s in stages if s.run_dir is not None], workflow)


def _summary(run_dir: Path) -> dict[str, Any]:
    data = json.loads((run_dir / "report" / "analysis.json").read_text(encoding="utf-8"))
    name = "abs_magnetization" if "abs_magnetization" in data["observables"] else next(iter(data["observables"]))
    abs_m = data["observables"][name]
    row = {
        "run_dir": str(run_dir),
        "sampler": data["sampler_kind"],
        "chains": data["chains"],
        "acceptance": data.get("acceptance"),
        "ess": data.get("ess"),
        "tau_int": abs_m["tau_int"],
        "tau_int_error": abs_m["tau_int_error"],
        "seconds_per_independent_config": data["cost_per_independent_config"].get(name),
    }
    model = run_dir / "model" / "flow.pt"
    if model.is_file():
        import torch

        row["training_seconds"] = float(torch.load(model, weights_only=True)["meta"]["seconds"])
    return row


def write_report(card: RunCard, sampled: list[Stage], workflow: Path) -> Path:
    """``workflow/report.md`` and ``comparison.png``: acceptance, tau_int(|M|) and cost per sampler."""
    rows = [_summary(s.run_dir) for s in sampled]
    (workflow / "comparison.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    names = [r["sampler"].upper() for r in rows]
    panels = (("acceptance", "acceptance", None), ("tau_int", "tau_int(|M|) [updates]", "tau_int_error"),
              ("seconds_per_independent_config", "seconds per independent config", None))
    for ax, (key, label, err) in zip(axes, panels):
        values = [r[key] or 0.0 for r in rows]
        ax.bar(names, values, yerr=[r[err] for r in rows] if err else None, color=["C0", "C1", "C2"][: len(rows)])
        ax.set_ylabel(label)
    save_figure(fig, workflow / "comparison.png")
    lines = [
        f"# hpcflow workflow: {card.source}",
        "",
        f"Theory: {json.dumps(card.theory)}",
        "",
        "| sampler | chains | acceptance | ESS | tau_int(abs M) | s per independent config | training s | run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        def fmt(v: Any, spec: str) -> str:
            return "n/a" if v is None else format(v, spec)

        lines.append(
            f"| {r['sampler']} | {r['chains']} | {fmt(r['acceptance'], '.3f')} | {fmt(r['ess'], '.3f')} | "
            f"{r['tau_int']:.2f}({r['tau_int_error']:.2f}) | {fmt(r['seconds_per_independent_config'], '.3g')} | "
            f"{fmt(r.get('training_seconds'), '.0f')} | [{Path(r['run_dir']).name}]"
            f"({os.path.relpath(Path(r['run_dir']) / 'report' / 'report.md', workflow)}) |"
        )
    lines += ["", f"Cost of |M|: {COST_DEFINITION}.", "", "![comparison](comparison.png)", ""]
    path = workflow / "report.md"
    atomic_write_text(path, "\n".join(lines))
    return path
