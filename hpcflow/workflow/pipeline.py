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
``<run>/workflow/<stage>.done`` with the identity of what it computed
(:func:`hpcflow.workflow.rundir.write_marker`), and a rerun of the same command skips those
stages and starts the others, which resume from their own checkpoints (a killed ``sample``
continues where its last checkpoint was; training is not redone). Stage output goes to
``<run>/workflow/<stage>.log``.

A changed card never relabels old results: before any stage starts, a card whose physics differs
from the runs already in its directories is refused (as ``hpcflow sample`` refuses it), and a
stage whose marker records other inputs (e.g. changed ``[analysis]`` settings) runs again. The
inputs every stage needs (a flow file named by the card, an init flow) are checked up front too.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcflow.analysis.cost import COST_DEFINITION
from hpcflow.analysis.report import pyplot, save_figure
from hpcflow.io.atomic import atomic_write_text
from hpcflow.workflow.analyze import analysis_settings
from hpcflow.workflow.jobs import check_card_strings
from hpcflow.workflow.model_io import check_flow_inputs
from hpcflow.workflow.parsl_config import mpi_prefix, parsl_config, resource_spec
from hpcflow.workflow.runcard import RunCard, RunCardError, load_runcard, to_toml, validate_runcard
from hpcflow.workflow.rundir import check_run_dir, lock_run_dir, marker_matches, run_identity, write_marker
from hpcflow.workflow.signals import Interrupted, StopFlag
from hpcflow.workflow.systems import System

__all__ = ["Stage", "WorkflowError", "baseline_card", "plan", "run_workflow", "write_card"]

log = logging.getLogger(__name__)


class WorkflowError(RuntimeError):
    """A stage failed after its retries."""


@dataclass(frozen=True)
class Stage:
    """One step of the workflow: ``hpcflow ARGS``, on all ranks if ``mpi``, after the stages ``after``.

    ``identity`` is what the stage computes (the run identity of its card, plus the analysis
    settings for an analysis); its marker records it."""

    name: str
    args: tuple[str, ...]
    mpi: bool
    identity: dict[str, Any]
    after: tuple[str, ...] = ()
    run_dir: Path | None = None
    """The run directory a sampling stage fills (for the report)."""


def baseline_card(card: RunCard) -> RunCard:
    """The HMC baseline card of a flow-sampler card (validated; written by :func:`write_card`)."""
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
        "analysis": {k: v for k, v in card.analysis.items() if k in ("t_min", "t_max")},
    }
    text = "# HMC baseline written by `hpcflow run` (hpcflow.workflow.pipeline)\n" + to_toml(data)
    path = card.run_dir / "workflow" / "baseline_hmc.toml"
    return validate_runcard(tomllib.loads(text), source=str(path), text=text)


def write_card(card: RunCard) -> Path:
    """Write a derived card to its ``source`` path (unchanged files are not rewritten)."""
    path = Path(card.source)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != card.text:
        atomic_write_text(path, card.text)
    return path


def _analysis_stage(card: RunCard, run_dir: Path, sampler: str) -> Stage:
    """``hpcflow analyze`` of ``run_dir`` with the settings of ``card`` (those of the card now,
    not of the card that created the run), into ``run_dir/report``."""
    settings = analysis_settings(card.data)
    args = ["analyze", str(run_dir), "--t-min", str(settings["t_min"]), "--t-max", str(settings["t_max"]),
            "--reweight" if settings["reweight"] else "--no-reweight", "--out", str(run_dir / "report")]
    identity = {"run": run_identity(card.data), "analysis": settings}
    return Stage(f"analyze_{sampler}", tuple(args), False, identity, (sampler,))


def plan(card: RunCard, card_path: str) -> tuple[list[Stage], list[RunCard]]:
    """The stages of ``card``, in an order that respects ``after``, and the cards of the runs
    they fill (``card`` itself and, for a flow sampler, its HMC baseline)."""
    identity = run_identity(card.data)
    if card.sampler["kind"] == "hmc":
        return [Stage("hmc", ("sample", card_path), True, identity, run_dir=card.run_dir),
                _analysis_stage(card, card.run_dir, "hmc")], [card]
    baseline = baseline_card(card)
    baseline_path = baseline.source
    stages = []
    if "training" in card.data:
        stages.append(Stage("train", ("train", card_path), True, identity))
    stages.append(Stage("nmcmc", ("sample", card_path), True, identity, ("train",) if stages else (), card.run_dir))
    stages.append(Stage("hmc", ("sample", baseline_path), True, run_identity(baseline.data), run_dir=baseline.run_dir))
    stages.append(_analysis_stage(card, card.run_dir, "nmcmc"))
    stages.append(_analysis_stage(baseline, baseline.run_dir, "hmc"))
    return stages, [card, baseline]


def _shell(command: str, inputs: list | None = None, stdout: str | None = None, stderr: str | None = None,
           parsl_resource_specification: dict | None = None) -> str:
    """The body of every stage's ``bash_app``: its command line."""
    return command


def run_workflow(card_path: Path, system: System, retries: int = 1) -> Path:
    """Run (or resume) the workflow of ``card_path`` on ``system``; returns the report path."""
    card = load_runcard(card_path)
    if card.is_solve:
        raise RunCardError(card.source, ["[solve]: a solve card runs with 'hpcflow solve CARD', not as a workflow"])
    check_card_strings(card, str(card_path))
    check_flow_inputs(card)
    workflow = card.run_dir / "workflow"
    stages, runs = plan(card, str(card_path))
    for run in runs:
        check_run_dir(run)  # a changed physics card is refused before anything runs
    for run in runs[1:]:
        write_card(run)
    lock = lock_run_dir(workflow)
    try:
        _run_stages(stages, system, workflow, retries)
    finally:
        lock.close()
    return write_report(card, [s for s in stages if s.run_dir is not None], workflow)


def _retry_cost(stop: StopFlag, retries: int) -> Any:
    """Parsl's retry handler: a stage stopped by a signal, or refused with exit status 2 (bad
    input), is not retried (cost above the budget); any other failure costs one retry."""

    def cost(err: Exception, task: Any) -> float:
        from parsl.app.errors import BashExitFailure

        final = stop.signum is not None or (isinstance(err, BashExitFailure) and (err.exitcode == 2 or err.exitcode > 128))
        return float(retries + 1) if final else 1.0

    return cost


def _run_stages(stages: list[Stage], system: System, workflow: Path, retries: int) -> None:
    """Submit the stages whose markers do not match to Parsl and wait for all of them.

    SIGINT/SIGTERM (Ctrl-C reaches the stages too: the terminal signals its whole foreground
    group) do not interrupt the wait: the running stages checkpoint and stop, nothing is retried,
    and :class:`~hpcflow.workflow.signals.Interrupted` is raised once they have.
    """
    with StopFlag() as stop:
        _submit_and_wait(stages, system, workflow, retries, stop)
        if stop.signum is not None:
            raise Interrupted(stop.signum, "while the stages ran (each checkpointed)")


def _submit_and_wait(stages: list[Stage], system: System, workflow: Path, retries: int, stop: StopFlag) -> None:
    import parsl
    from parsl.app.app import bash_app
    from parsl.app.errors import BashExitFailure

    # stages run with this interpreter; batch workers activate the same environment (jobs/systems)
    os.environ.setdefault("HPCFLOW_VENV", sys.prefix)
    bin_dir = str(Path(sys.executable).parent)  # Parsl starts interchange.py and its workers from PATH
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    logging.getLogger("parsl").setLevel(logging.CRITICAL)  # failures are reported below, with the stage's log
    config = parsl_config(system, workflow / "parsl", retries, _retry_cost(stop, retries))
    log.info("system %s: %r", system.name, system)
    app = bash_app(_shell, executors=[config.executors[0].label])
    futures: dict[str, Any] = {}
    with parsl.load(config):
        for stage in stages:
            marker = workflow / f"{stage.name}.done"
            if marker_matches(marker, stage.identity):
                log.info("stage %s: completed earlier (%s), skipped", stage.name, marker)
                futures[stage.name] = None
                continue
            words = system.command(*stage.args)
            prefix = mpi_prefix(system) if stage.mpi else ""
            command = f"{prefix} {shlex.join(words)}".strip()
            spec = resource_spec(system)
            if spec and not stage.mpi:
                spec = {**spec, "num_nodes": 1, "ranks_per_node": 1, "num_ranks": 1}
            kwargs = {"parsl_resource_specification": spec} if spec else {}
            deps = [f for f in (futures[a] for a in stage.after) if f is not None]
            logfile = str(workflow / f"{stage.name}.log")
            future = app(command, inputs=deps, stdout=(logfile, "a"), stderr=(logfile, "a"), **kwargs)
            future.add_done_callback(_marker_writer(stage, marker))
            futures[stage.name] = future
            log.info("stage %s: started: %s", stage.name, command)
        for name, future in futures.items():
            if future is None:
                continue
            try:
                future.result()
            except Exception as err:
                if stop.signum is not None:
                    continue  # stopped by the signal (or after it): reported once every stage has stopped
                if isinstance(err, BashExitFailure):
                    raise WorkflowError(f"stage {name} failed ({err}); see {workflow / f'{name}.log'}") from None
                # dependency failures name the stage that failed first
                raise WorkflowError(f"stage {name} did not run: {err}; see the logs in {workflow}") from None


def _marker_writer(stage: Stage, marker: Path) -> Any:
    """A done-callback that records a stage's success (with its identity and duration)."""
    started = time.monotonic()

    def done(future: Any) -> None:
        if future.exception() is None:
            write_marker(marker, stage.name, stage.identity)
            log.info("stage %s: done in %.1f s", stage.name, time.monotonic() - started)
        else:
            log.info("stage %s: failed after %.1f s", stage.name, time.monotonic() - started)

    return done


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
