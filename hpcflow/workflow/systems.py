"""Where a workflow runs: scheduler, node shape, launcher and environment of one machine.

A system is a small TOML file in ``jobs/systems/`` (or any path given to ``--system``); ``local``
is also built in. Three concerns stay apart: the **scheduler** gets nodes (``local``, ``slurm``,
``pbs``), the **launcher** starts ranks on them (``mpiexec`` for Open MPI/MPICH, ``srun``, or
``pals``: PBS Pro's ``mpiexec`` with ``--ppn``/``--depth``/``--cpu-bind``), and the run card says
what runs. :meth:`System.launch` builds the launch line; :mod:`hpcflow.workflow.jobs` renders job
scripts and :mod:`hpcflow.workflow.parsl_config` the Parsl configuration from the same object.

Every string that reaches a shell is checked against a conservative pattern here (no quotes,
``;``, ``$``, backticks, spaces except where a list of words is meant) and quoted again where
it is used.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["SCHEDULERS", "LAUNCHERS", "System", "SystemConfigError", "load_system", "safe_word", "system_names"]

SCHEDULERS = ("local", "slurm", "pbs")
LAUNCHERS = ("mpiexec", "srun", "pals")
SYSTEMS_DIR = Path(__file__).resolve().parents[2] / "jobs" / "systems"
_WORD = re.compile(r"^[A-Za-z0-9_@%+=:,./-]*$")
_WALLTIME = re.compile(r"^(\d+-)?\d{1,3}:\d{2}:\d{2}$")


class SystemConfigError(ValueError):
    """A system file with bad values; one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def safe_word(value: str, name: str) -> str:
    """``value`` if it is one shell word of harmless characters, else a ``ValueError`` naming ``name``."""
    if not _WORD.match(value):
        raise ValueError(
            f"{name} = {value!r}: only letters, digits and _ @ % + = : , . / - may reach a job script"
        )
    return value


@dataclass(frozen=True)
class System:
    """One machine's settings (see ``jobs/systems/*.toml`` for documented examples)."""

    name: str
    scheduler: str = "local"
    launcher: str = "mpiexec"
    nodes: int = 1
    ranks_per_node: int = 1
    cpus_per_rank: int = 1
    gpus_per_node: int = 0
    exclusive: bool = True
    """Whole nodes for the job (Slurm ``--exclusive``); a shared test partition sets it false."""
    walltime: str = "00:30:00"
    queue: str = ""
    account: str = ""
    qos: str = ""
    constraint: str = ""
    launcher_options: list[str] = field(default_factory=list)
    directives: list[str] = field(default_factory=list)
    setup: list[str] = field(default_factory=list)
    container: str = ""
    container_flags: list[str] = field(default_factory=list)
    python: str = ""

    @property
    def ranks(self) -> int:
        """Ranks of one MPI stage."""
        return self.nodes * self.ranks_per_node

    def launch(self, ranks: int | None = None) -> list[str]:
        """Words that start ``ranks`` (default all) copies of a command."""
        n = self.ranks if ranks is None else ranks
        if n == 1 and self.scheduler == "local":
            return []
        if self.launcher == "srun":
            return ["srun", "-n", str(n), "-c", str(self.cpus_per_rank), *self.launcher_options]
        if self.launcher == "pals":
            ppn = min(n, self.ranks_per_node)
            return ["mpiexec", "-n", str(n), "--ppn", str(ppn), "--depth", str(self.cpus_per_rank),
                    "--cpu-bind", "depth", *self.launcher_options]
        return ["mpiexec", "-n", str(n), *self.launcher_options]

    @property
    def interpreter(self) -> str:
        """The Python that runs hpcflow in this system's jobs: ``python`` if the system names one;
        inside the container the image's ``python3`` (the host's path means nothing there); after
        setup lines (which activate the environment) ``python3``; else the interpreter running this
        hpcflow (``sys.executable``), so that a script without setup runs outside any venv too."""
        if self.python:
            return self.python
        return "python3" if self.container or self.setup else sys.executable

    def command(self, *args: str) -> list[str]:
        """``hpcflow ARGS`` in this system's environment (inside the container if there is one)."""
        inner = [self.interpreter, "-m", "hpcflow.cli", "--no-progress", *args]
        if self.container:
            return ["apptainer", "exec", *self.container_flags, self.container, *inner]
        return inner


def _check(raw: dict[str, Any], source: str) -> System:
    problems: list[str] = []
    known = {f.name: f for f in fields(System)}
    for key in raw:
        if key not in known:
            problems.append(f"{key}: unknown setting; expected one of {', '.join(known)}")
    for key, value in raw.items():
        if key not in known:
            continue
        kind = known[key].type
        if kind == "int" and (not isinstance(value, int) or isinstance(value, bool) or value < (0 if "gpus" in key else 1)):
            problems.append(f"{key} = {value!r}: expected an integer >= {0 if 'gpus' in key else 1}")
        elif kind == "str" and not isinstance(value, str):
            problems.append(f"{key} = {value!r}: expected a string")
        elif kind == "bool" and not isinstance(value, bool):
            problems.append(f"{key} = {value!r}: expected true or false")
        elif kind == "list[str]" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(f"{key} = {value!r}: expected a list of strings")
    if problems:
        raise SystemConfigError(source, problems)
    if raw.get("scheduler", "local") not in SCHEDULERS:
        problems.append(f"scheduler = {raw['scheduler']!r}: expected one of {', '.join(SCHEDULERS)}")
    if raw.get("launcher", "mpiexec") not in LAUNCHERS:
        problems.append(f"launcher = {raw['launcher']!r}: expected one of {', '.join(LAUNCHERS)}")
    if not _WALLTIME.match(raw.get("walltime", "00:30:00")):
        problems.append(f"walltime = {raw['walltime']!r}: expected [D-]HH:MM:SS")
    for key in ("name", "queue", "account", "qos", "constraint", "container", "python"):
        try:
            safe_word(raw.get(key, ""), key)
        except ValueError as err:
            problems.append(str(err))
    for key in ("launcher_options", "container_flags"):
        for word in raw.get(key, []):
            try:
                safe_word(word, key)
            except ValueError as err:
                problems.append(str(err))
    # directives and setup lines are the site's own shell by design (module loads, #SBATCH
    # extras): they come from the system file, never from a run card
    if problems:
        raise SystemConfigError(source, problems)
    return System(**raw)


def system_names() -> list[str]:
    """Systems in ``jobs/systems/`` (and the built-in ``local``)."""
    found = {p.stem for p in SYSTEMS_DIR.glob("*.toml")} if SYSTEMS_DIR.is_dir() else set()
    return sorted(found | {"local"})


def load_system(name: str) -> System:
    """The system ``name`` (``jobs/systems/<name>.toml``, ``$HPCFLOW_SYSTEMS/<name>.toml``, a path,
    or the built-in ``local``)."""
    candidates = [Path(name)] if name.endswith(".toml") else []
    if "HPCFLOW_SYSTEMS" in os.environ:
        candidates.append(Path(os.environ["HPCFLOW_SYSTEMS"]) / f"{name}.toml")
    candidates.append(SYSTEMS_DIR / f"{name}.toml")
    for path in candidates:
        if path.is_file():
            try:
                raw = tomllib.loads(path.read_text(encoding="utf-8")).get("system", {})
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
                raise SystemConfigError(str(path), [f"not valid TOML: {err}"]) from None
            if not isinstance(raw, dict):
                raise SystemConfigError(str(path), ["system = ...: expected a [system] table"])
            return _check({"name": path.stem, **raw}, str(path))
    if name == "local":
        return System(name="local")
    raise SystemConfigError(name, [f"--system {name!r}: no such system; known: {', '.join(system_names())}"])
