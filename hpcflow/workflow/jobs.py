"""Batch job scripts from a run card and a system: ``hpcflow jobs render`` and ``hpcflow jobs submit``.

The templates in ``jobs/templates/`` (``string.Template``: ``slurm.sh``, ``pbs.sh``, ``local.sh``)
receive the scheduler directives, the system's setup lines (modules, environments), and the
stages: ``hpcflow train`` (when the card has ``[training]``) and ``hpcflow sample`` under the
system's launcher with all ranks, then ``hpcflow analyze`` as one process. Values from the run
card reach the script only after :func:`check_card_strings` (every string in the card must be
one harmless shell word) and are quoted with :func:`shlex.quote` as well.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from string import Template
from typing import Any

from hpcflow.workflow.runcard import RunCard, RunCardError
from hpcflow.workflow.systems import System, safe_word

__all__ = ["TEMPLATES", "JobError", "check_card_strings", "render", "stage_commands", "submit"]

TEMPLATES = Path(__file__).resolve().parents[2] / "jobs" / "templates"
_JOB_ID = re.compile(r"(\d+(\.[A-Za-z0-9_.-]+)?)")


class JobError(RuntimeError):
    """A job script cannot be submitted."""


def check_card_strings(card: RunCard, card_path: str) -> None:
    """Refuse a card whose path or any string value could do more than name a thing in a shell."""
    problems = []
    try:
        safe_word(card_path, "card path")
    except ValueError as err:
        problems.append(str(err))

    def walk(value: Any, name: str) -> None:
        if isinstance(value, str):
            try:
                safe_word(value, name)
            except ValueError as err:
                problems.append(str(err))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{name}[{i}]")

    for section, keys in card.data.items():
        for key, value in keys.items():
            walk(value, f"[{section}].{key}")
    if problems:
        raise RunCardError(card.source, [f"{p} (the card goes into a job script)" for p in problems])


def stage_commands(card: RunCard, card_path: str, system: System) -> list[list[str]]:
    """The job's command lines: train (if any) and sample on every rank, then analyze."""
    launch = system.launch()
    out = []
    if "training" in card.data:
        out.append([*launch, *system.command("train", card_path)])
    out.append([*launch, *system.command("sample", card_path)])
    out.append(system.command("analyze", str(card.run_dir)))
    return out


def _directives(system: System) -> list[str]:
    if system.scheduler == "slurm":
        lines = [f"#SBATCH --{key}={value}" for key, value in (
            ("partition", system.queue), ("account", system.account), ("qos", system.qos),
            ("constraint", system.constraint)) if value]
        if system.gpus_per_node:
            lines.append(f"#SBATCH --gpus-per-node={system.gpus_per_node}")
        if system.exclusive:
            lines.append("#SBATCH --exclusive")
    elif system.scheduler == "pbs":
        lines = [f"#PBS -{flag} {value}" for flag, value in (("q", system.queue), ("A", system.account)) if value]
    else:
        lines = []
    return lines + list(system.directives)


def render(card: RunCard, card_path: str, system: System) -> str:
    """The complete job script for ``card`` (read from ``card_path``, as the job will see it)."""
    card.refuse_operator_card("job scripts (it has no sampling stages; put its command in a job script of your own)")
    check_card_strings(card, card_path)
    if card.sampler["chains"] < system.ranks:
        raise RunCardError(card.source, [
            f"[sampler].chains = {card.sampler['chains']}: fewer than the {system.ranks} ranks of system "
            f"{system.name!r} ({system.nodes} nodes x {system.ranks_per_node}); sampling needs one chain per rank"
        ])
    job_name = safe_word(f"hpcflow-{card.run_dir.name}"[:64], "job name")
    log = {"slurm": f"{job_name}-%j.out", "pbs": f"{job_name}.out"}.get(system.scheduler, "")
    values = {
        "card": card_path,
        "system": system.name,
        "job_name": job_name,
        "nodes": system.nodes,
        "ranks_per_node": system.ranks_per_node,
        "cpus_per_rank": system.cpus_per_rank,
        "cpus_per_node": system.ranks_per_node * system.cpus_per_rank,
        "gpu_select": f":ngpus={system.gpus_per_node}" if system.gpus_per_node else "",
        "walltime": system.walltime,
        "log": log,
        "directives": "\n".join(_directives(system)),
        "setup": "\n".join(system.setup),
        "stages": "\n".join(shlex.join(c) for c in stage_commands(card, card_path, system)),
    }
    text = Template((TEMPLATES / f"{system.scheduler}.sh").read_text(encoding="utf-8")).substitute(values)
    return re.sub(r"\n{2,}", "\n", text).replace("\nset -euo", "\n\nset -euo")


def submit(script: Path, system: System) -> str:
    """Submit ``script`` with sbatch or qsub; returns the job id."""
    if system.scheduler == "slurm":
        cmd = ["sbatch", "--parsable", str(script.resolve())]
    elif system.scheduler == "pbs":
        cmd = ["qsub", str(script.resolve())]
    else:
        raise JobError(f"system {system.name!r} has scheduler = 'local': run the script with bash, nothing to submit")
    # submitted from the caller's directory, so that the job's working directory (the templates
    # cd to SLURM_SUBMIT_DIR / PBS_O_WORKDIR) is where the card's relative paths were written from
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise JobError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    found = _JOB_ID.search(res.stdout)
    if not found:
        raise JobError(f"{' '.join(cmd)}: no job id in {res.stdout!r}")
    return found.group(1)
