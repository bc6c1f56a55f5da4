"""Parsl configuration of a :class:`~hpcflow.workflow.systems.System`.

==========  ==========================================  ========================================
scheduler   executor and provider                       MPI launch prefix of a stage
==========  ==========================================  ========================================
local       ``ThreadPoolExecutor`` (starts in < 1 s)    ``mpiexec -n N`` (Open MPI) or none
slurm       ``MPIExecutor`` + ``SlurmProvider``         ``$PARSL_MPI_PREFIX`` (``srun ...``)
pbs         ``MPIExecutor`` + ``PBSProProvider``        ``$PARSL_MPI_PREFIX`` (PALS ``mpiexec``);
                                                        the system's own ``mpiexec`` line for
                                                        ``launcher = "mpiexec"`` (Open MPI)
==========  ==========================================  ========================================

Blocks ask for what the job scripts ask for: whole nodes (``exclusive``), the GPUs of a node
(Slurm ``--gpus-per-node``, PBS ``ngpus``), and on PBS, whose jobs start in ``$HOME`` with
another environment, the working directory and the variables the stages need (``cd``,
``HPCFLOW_VENV``, ``PATH``) before the system's setup lines. Parsl's own ``mpiexec`` prefix is
MPICH/PALS-style (``-ppn``, ``-hosts``), which Open MPI rejects, so a system that launches with
plain ``mpiexec`` gets its own launch line (with the block's node file on PBS). Parsl is imported
here only, and only when a workflow runs.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from hpcflow.workflow.systems import System

__all__ = ["mpi_prefix", "parsl_config", "resource_spec", "worker_init"]


def parsl_config(system: System, run_dir: Path, retries: int = 1, retry_handler: Any = None) -> Any:
    """A ``parsl.Config`` running the stages of one workflow on ``system``; ``retry_handler``
    (Parsl's: ``(exception, task) -> cost``) decides which failures are worth a retry."""
    try:
        from parsl.config import Config
        from parsl.executors import MPIExecutor, ThreadPoolExecutor
        from parsl.launchers import SimpleLauncher
        from parsl.providers import PBSProProvider, SlurmProvider
    except ImportError as err:
        raise RuntimeError("the workflow needs Parsl: pip install '.[workflow]'") from err
    if system.scheduler == "local":
        executor: Any = ThreadPoolExecutor(label="local", max_threads=2)
    else:
        common = dict(nodes_per_block=system.nodes, walltime=system.walltime, init_blocks=1, min_blocks=0,
                      max_blocks=1, worker_init="\n".join(worker_init(system)), launcher=SimpleLauncher())
        if system.scheduler == "slurm":
            provider: Any = SlurmProvider(
                partition=system.queue or None, account=system.account or None, qos=system.qos or None,
                constraint=system.constraint or None, exclusive=system.exclusive,
                gpus_per_node=system.gpus_per_node or None,
                scheduler_options="\n".join(system.directives), **common,
            )
        else:
            provider = PBSProProvider(
                account=system.account or None, queue=system.queue or None,
                cpus_per_node=system.ranks_per_node * system.cpus_per_rank,
                select_options=f":ngpus={system.gpus_per_node}" if system.gpus_per_node else "",
                scheduler_options="\n".join(system.directives), **common,
            )
        executor = MPIExecutor(
            label=system.name, provider=provider, max_workers_per_block=1,
            mpi_launcher="srun" if system.launcher == "srun" else "mpiexec",
        )
    return Config(executors=[executor], retries=retries, retry_handler=retry_handler, run_dir=str(run_dir),
                  initialize_logging=False)


def worker_init(system: System) -> list[str]:
    """Shell lines that start a block: on PBS the working directory and environment of the
    workflow first (a PBS job starts in ``$HOME`` and exports nothing unless asked), then the
    system's setup lines."""
    if system.scheduler != "pbs":
        return list(system.setup)
    keep = {k: os.environ[k] for k in ("HPCFLOW_VENV", "PATH", "OMP_NUM_THREADS") if k in os.environ}
    return [f"cd {shlex.quote(os.getcwd())}", *(f"export {k}={shlex.quote(v)}" for k, v in keep.items()), *system.setup]


def resource_spec(system: System) -> dict[str, Any]:
    """``parsl_resource_specification`` of an MPI stage (empty on ``local``)."""
    if system.scheduler == "local":
        return {}
    binding = {"srun": ["-c", str(system.cpus_per_rank)],
               "pals": ["--depth", str(system.cpus_per_rank), "--cpu-bind", "depth"]}.get(system.launcher, [])
    options = [*binding, *system.launcher_options]
    return {"num_nodes": system.nodes, "ranks_per_node": system.ranks_per_node, "num_ranks": system.ranks,
            "launcher_options": " ".join(options)}


def mpi_prefix(system: System) -> str:
    """Shell words that start an MPI stage inside a Parsl app on ``system``."""
    if system.scheduler == "local":
        return " ".join(system.launch())
    if system.launcher == "mpiexec":  # Open MPI: Parsl's MPICH-style prefix would be rejected
        hostfile = ["-hostfile", '"$PBS_NODEFILE"'] if system.scheduler == "pbs" else []
        return " ".join([*system.launch()[:3], *hostfile, *system.launch()[3:]])
    return "$PARSL_MPI_PREFIX"
