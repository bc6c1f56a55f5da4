"""The workflow of ``hpcflow run CARD --system NAME``: train -> sample -> analyze -> report, in Parsl.

Stages (each a Parsl ``bash_app`` running one ``hpcflow`` command; MPI stages with every rank
of the system):

==================  ====================================================  ===================
stage               command                                               after
==================  ====================================================  ===================
``train``           ``hpcflow train CARD`` (cards with ``[training]``)     -
``<kind>``          ``hpcflow sample`` of the card (``nmcmc``, ``fhmc``)   ``train``
``<other>``         ``hpcflow sample`` of a sampler beside it              ``train`` (flows)
``analyze_<s>``     ``hpcflow analyze`` of sampler ``s`` (one process)     ``<s>``
report              the comparison (:mod:`hpcflow.workflow.comparison`)    all analyses
==================  ====================================================  ===================

``[workflow].samplers`` says which samplers run (default: the card's own and, beside a flow
sampler, the HMC baseline); the samplers beside the card's own are runs of their own, derived
from it (:mod:`hpcflow.workflow.derived`: the HMC baseline in ``<run>/baseline_hmc/``, flow HMC
and NMCMC with the card's flow in ``<run>/fhmc/`` and ``<run>/nmcmc/``). An HMC card has only
``hmc`` and its analysis.

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

import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpcflow.workflow.analyze import analysis_settings
from hpcflow.workflow.comparison import write_report
from hpcflow.workflow.derived import derived_cards, write_card
from hpcflow.workflow.jobs import check_card_strings
from hpcflow.workflow.model_io import check_flow_inputs, flow_path
from hpcflow.workflow.parsl_config import mpi_prefix, parsl_config, resource_spec
from hpcflow.workflow.runcard import RunCard, load_runcard
from hpcflow.workflow.runcard.sections.sampler import FLOW_SAMPLERS
from hpcflow.workflow.rundir import (
    check_run_dir,
    extensions,
    lock_run_dir,
    marker_matches,
    run_identity,
    write_marker,
)
from hpcflow.workflow.signals import Interrupted, StopFlag
from hpcflow.workflow.systems import System

__all__ = ["Stage", "WorkflowError", "plan", "run_workflow"]

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


def _analysis_stage(card: RunCard, run_dir: Path, sampler: str) -> Stage:
    """``hpcflow analyze`` of ``run_dir`` with the settings of ``card`` (those of the card now,
    not of the card that created the run), into ``run_dir/report``."""
    settings = analysis_settings(card.data)
    args = ["analyze", str(run_dir), "--t-min", str(settings["t_min"]), "--t-max", str(settings["t_max"]),
            "--reweight" if settings["reweight"] else "--no-reweight", "--out", str(run_dir / "report")]
    identity = {"run": run_identity(card.data), "extensions": extensions(run_dir), "analysis": settings}
    return Stage(f"analyze_{sampler}", tuple(args), False, identity, (sampler,))


def plan(card: RunCard, card_path: str) -> tuple[list[Stage], list[RunCard]]:
    """The stages of ``card``, in an order that respects ``after``, and the cards of the runs
    they fill (``card`` itself first, then the samplers beside it)."""
    identity = {**run_identity(card.data), "extensions": extensions(card.run_dir)}
    kind = card.sampler["kind"]
    beside = derived_cards(card)
    training = ("train",) if "training" in card.data else ()
    stages = [Stage("train", ("train", card_path), True, identity)] if training else []
    stages.append(Stage(kind, ("sample", card_path), True, identity, training, card.run_dir))
    for other, derived in beside.items():
        after = training if other != "hmc" else ()
        identity_other = {**run_identity(derived.data), "extensions": extensions(derived.run_dir)}
        stages.append(Stage(other, ("sample", derived.source), True, identity_other, after, derived.run_dir))
    stages.append(_analysis_stage(card, card.run_dir, kind))
    stages += [_analysis_stage(derived, derived.run_dir, other) for other, derived in beside.items()]
    return stages, [card, *beside.values()]


def _shell(command: str, inputs: list | None = None, stdout: str | None = None, stderr: str | None = None,
           parsl_resource_specification: dict | None = None) -> str:
    """The body of every stage's ``bash_app``: its command line."""
    return command


def run_workflow(card_path: Path, system: System, retries: int = 1) -> Path:
    """Run (or resume) the workflow of ``card_path`` on ``system``; returns the report path."""
    card = load_runcard(card_path)
    card.refuse_operator_card("the workflow")
    check_card_strings(card, str(card_path))
    check_flow_inputs(card)
    workflow = card.run_dir / "workflow"
    stages, runs = plan(card, str(card_path))
    for run in runs:
        check_run_dir(run)  # a changed physics card is refused before anything runs
    for run in runs[1:]:
        write_card(run)
    with lock_run_dir(workflow):
        _run_stages(stages, system, workflow, retries)
    flow_dir = flow_path(card)[0].parent.parent if card.sampler["kind"] in FLOW_SAMPLERS else None  # holds model/flow.pt
    runs = [(s.run_dir, flow_dir if s.name in FLOW_SAMPLERS else None) for s in stages if s.run_dir is not None]
    return write_report(card, runs, workflow)


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


