"""A real single-node Slurm (started by the fixture, stopped by PID): a rendered job script
submitted with `hpcflow jobs submit` trains and samples on 2 ranks; the Parsl workflow runs
through a SlurmProvider."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch

from conftest import hpcflow_cmd, mpi_env, tiny_flow_card
from slurm_cluster import SlurmCluster, missing

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.skipif(missing() is not None, reason=str(missing()))]

BASELINE = "\n[baseline]\ntrajectories = 200\nthermalization = 20\nsteps = 6\n"


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory):
    cluster = SlurmCluster(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _env(slurm: SlurmCluster) -> dict[str, str]:
    return dict(mpi_env(), SLURM_CONF=str(slurm.conf), HPCFLOW_VENV=sys.prefix)


def test_submitted_job_trains_and_samples_on_two_ranks(slurm: SlurmCluster, tmp_path: Path) -> None:
    """Relative paths, as in the shipped cards: the card given as ``card.toml`` and its run
    directory ``runs/rel``; the script is written under ``runs/`` and the job still finds both."""
    (tmp_path / "card.toml").write_text(tiny_flow_card("runs/rel", extra=BASELINE))
    res = subprocess.run(hpcflow_cmd("jobs", "submit", "card.toml", "--system", "slurm"), env=_env(slurm),
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "job script: runs/rel.slurm.sh" in res.stdout
    job_id = re.search(r"job id: (\d+)", res.stdout).group(1)
    state = slurm.wait(job_id)
    run = tmp_path / "runs" / "rel"
    logs = "".join(p.read_text() for p in tmp_path.rglob("hpcflow-rel-*.out"))
    assert state == "COMPLETED", logs
    meta = torch.load(run / "model" / "flow.pt", weights_only=True)["meta"]
    assert meta["ranks"] == 2 and meta["backend"] == "ddp"
    with h5py.File(run / "configs.h5") as f:
        assert f.attrs["complete"] and f["phi"].shape == (4, 200, 6, 6)
        assert json.loads(f.attrs["parallel"])["ranks"] == 2
    assert (run / "report" / "analysis.json").is_file()


def test_parsl_workflow_through_a_slurm_provider(slurm: SlurmCluster, tmp_path: Path) -> None:
    (tmp_path / "card.toml").write_text(tiny_flow_card(tmp_path / "run", extra=BASELINE))
    res = subprocess.run(hpcflow_cmd("run", "card.toml", "--system", "slurm"), env=_env(slurm),
                         capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    run = tmp_path / "run"
    assert res.stdout.strip().endswith(f"report: {run / 'workflow' / 'report.md'}")
    with h5py.File(run / "configs.h5") as f:  # sampled on the 2 ranks of the slurm system, by srun
        assert f.attrs["complete"] and json.loads(f.attrs["parallel"])["ranks"] == 2
    with h5py.File(run / "baseline_hmc" / "configs.h5") as f:
        assert f.attrs["complete"] and json.loads(f.attrs["parallel"])["ranks"] == 2
    # the stages ran in a block that Parsl's SlurmProvider submitted with sbatch
    scripts = [p for p in (run / "workflow" / "parsl").rglob("parsl.slurm.block-*") if p.suffix not in (".stdout", ".stderr")]
    assert scripts and "#SBATCH" in scripts[0].read_text()
