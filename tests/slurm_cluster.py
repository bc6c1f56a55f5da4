"""A single-node Slurm (munged, slurmctld, slurmd) for the tests, started from files in a temporary
directory and stopped by PID (recipe: shared/ENVIRONMENT.md). Needs root and Debian's slurm-wlm
and munge (scripts/install.sh installs them)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "scontrol")


def missing() -> str | None:
    """Why a local Slurm cannot start here, or ``None``."""
    absent = [d for d in DAEMONS if shutil.which(d) is None and not Path("/usr/sbin", d).is_file()]
    if absent:
        return f"no {', '.join(absent)} (Debian slurm-wlm and munge, installed by scripts/install.sh)"
    if os.geteuid() != 0:
        return "the test Slurm runs its daemons as root"
    return None


CONF = """\
ClusterName=ci
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CryptoType=crypto/munge
AuthInfo=socket={root}/munge/munge.socket.2
SlurmUser=root
SlurmdUser=root
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
SlurmdParameters=config_overrides
MinJobAge=3600
NodeName={host} NodeAddr=127.0.0.1 CPUs=8 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SlurmCluster:
    """Start with :meth:`start`, stop with :meth:`stop`; ``env`` has ``SLURM_CONF`` for clients."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "slurm.conf"
        self.env = dict(os.environ, SLURM_CONF=str(self.conf))
        self.pid_files = [root / "slurmd.pid", root / "slurmctld.pid", root / "munge" / "munged.pid"]

    def start(self) -> None:
        r = self.root
        for sub in ("munge", "state", "spool"):
            (r / sub).mkdir(parents=True, exist_ok=True)
        (r / "munge").chmod(0o700)
        subprocess.run(["mungekey", "-c", "-k", str(r / "munge" / "munge.key")], check=True, capture_output=True)
        subprocess.run(["munged", "--force", f"--socket={r}/munge/munge.socket.2", f"--key-file={r}/munge/munge.key",
                        f"--log-file={r}/munge/munged.log", f"--pid-file={r}/munge/munged.pid",
                        f"--seed-file={r}/munge/munged.seed"], check=True, capture_output=True)
        host = socket.gethostname().split(".")[0]
        self.conf.write_text(CONF.format(host=host, root=r, ctld_port=_free_port(), d_port=_free_port()))
        subprocess.run(["slurmctld", "-f", str(self.conf)], check=True, env=self.env, capture_output=True)
        subprocess.run(["slurmd", "-f", str(self.conf)], check=True, env=self.env, capture_output=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(["sinfo", "-h", "-o", "%t"], env=self.env, capture_output=True, text=True).stdout
            if out.strip() in ("idle", "mix", "alloc"):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the test Slurm did not come up: see {r}/slurmctld.log and {r}/slurmd.log")

    def stop(self) -> None:
        for pid_file in self.pid_files:
            try:
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGTERM)
            except (OSError, ValueError):
                pass
        time.sleep(0.5)

    def wait(self, job_id: str, timeout: float = 600) -> str:
        """Poll ``scontrol show job`` until the job ends; returns its final state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = subprocess.run(["scontrol", "show", "job", job_id], env=self.env, capture_output=True, text=True).stdout
            state = next((w.split("=", 1)[1] for w in out.split() if w.startswith("JobState=")), "")
            if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
                return state
            time.sleep(1)
        raise TimeoutError(f"job {job_id} still running after {timeout} s")
