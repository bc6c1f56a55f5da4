"""The workflow end to end on --system local (Parsl): stages, report, and a rerun after a kill
during sampling that resumes without training again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import PHI4_6X6_AFFINE, hpcflow_cmd, kill_session, mpi_env, tiny_flow_card, wait_for_checkpoint

pytestmark = pytest.mark.slow
pytest.importorskip("parsl", reason="the workflow needs Parsl (pip install '.[workflow]')")

CARD = PHI4_6X6_AFFINE + """\
hidden = [4]
kernel = 3
activation = "tanh"

[training]
steps = 40
batch = 32
lr = 0.01
seed = 1
checkpoint_every = 10

[sampler]
kind = "nmcmc"
chains = 2
updates = {updates}
thermalization = 10
seed = 2
chunk = 50

[baseline]
trajectories = 300
thermalization = 20
steps = 6
{extra}
[output]
dir = "{dir}"
checkpoint_every = 100
"""


def _card(tmp_path: Path, updates: int, extra: str = "") -> Path:
    path = tmp_path / "card.toml"
    path.write_text(CARD.format(updates=updates, dir=tmp_path / "run", extra=extra))
    return path


THREE = """
[fhmc]
trajectories = 200
thermalization = 20
steps = 6

[workflow]
samplers = ["nmcmc", "fhmc", "hmc"]
"""


def test_local_workflow_runs_every_stage_and_compares_the_samplers(tmp_path: Path) -> None:
    """NMCMC, flow HMC with the same flow and the HMC baseline side by side: every stage, one row
    per sampler, the observables in value(error) with z against HMC, the flags, the cost stated."""
    card = _card(tmp_path, 400, THREE)
    res = subprocess.run(hpcflow_cmd("run", str(card), "--system", "local"), env=mpi_env(), capture_output=True,
                         text=True, timeout=900, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    run = tmp_path / "run"
    report = run / "workflow" / "report.md"
    assert res.stdout.strip().endswith(f"report: {report}")
    stages = ("train", "nmcmc", "fhmc", "hmc", "analyze_nmcmc", "analyze_fhmc", "analyze_hmc")
    for stage in stages:
        assert (run / "workflow" / f"{stage}.done").is_file(), stage
    comparison = json.loads((run / "workflow" / "comparison.json").read_text())
    rows = {r["sampler"]: r for r in comparison["rows"]}
    assert list(rows) == ["nmcmc", "fhmc", "hmc"]
    for r in rows.values():
        assert 0 < r["acceptance"] <= 1 and r["tau_int"]["magnetization"][0] > 0 and r["seconds_per_independent_config"] > 0
    assert rows["nmcmc"]["training"]["seconds"] > 0 and rows["fhmc"]["training"] == rows["nmcmc"]["training"]
    assert rows["hmc"]["training"] is None and 0 < rows["nmcmc"]["ess"] <= 1
    assert rows["fhmc"]["updates"] == 200 and rows["fhmc"]["run_dir"] == str(run / "fhmc")
    text = report.read_text()
    assert "| nmcmc | 2 x 400 |" in text and "| fhmc | 2 x 200 |" in text and "| hmc | 2 x 300 |" in text
    assert "| observable | NMCMC | z | FHMC | z | HMC |" in text and "| <|M|>/V |" in text and "## Flags" in text
    assert "/ chains" in text and "Training of the flow of NMCMC" in text
    assert (run / "workflow" / "comparison.png").stat().st_size > 10_000
    assert (run / "baseline_hmc" / "configs.h5").is_file()
    # a rerun finds every stage done and only rewrites the report
    again = subprocess.run(hpcflow_cmd("run", str(card)), env=mpi_env(), capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert again.returncode == 0 and again.stderr.count("completed earlier") == len(stages), again.stderr


def test_kill_during_sampling_then_rerun_resumes_without_training_again(tmp_path: Path) -> None:
    card = _card(tmp_path, 20000)
    run = tmp_path / "run"
    proc = subprocess.Popen(hpcflow_cmd("run", str(card)), env=mpi_env(), cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_checkpoint(run / "checkpoints", 299, proc, timeout=600)
    kill_session(proc)
    assert (run / "workflow" / "train.done").is_file() and not (run / "workflow" / "nmcmc.done").exists()
    flow = run / "model" / "flow.pt"
    trained = flow.stat().st_mtime_ns
    res = subprocess.run(hpcflow_cmd("run", str(card)), env=mpi_env(), capture_output=True, text=True,
                         timeout=900, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "stage train: completed earlier" in res.stderr
    assert flow.stat().st_mtime_ns == trained  # not trained again
    log = (run / "workflow" / "nmcmc.log").read_text()
    assert "resuming" in log and "at update" in log  # the sample stage continued from its checkpoint
    assert (run / "workflow" / "nmcmc.done").is_file() and (run / "workflow" / "report.md").is_file()


def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_a_changed_card_is_refused_or_rerun_never_relabelled(write_card, tmp_path: Path) -> None:
    """Physics changed (beta): refused before any stage runs, nothing written; analysis settings
    changed: the sampling stage is skipped, the analysis runs again with the new settings."""
    card = write_card(shape=[8, 8], beta=0.5, trajectories=60, thermalization=10, chains=2)
    first = subprocess.run(hpcflow_cmd("run", str(card)), env=mpi_env(), capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    run = tmp_path / "run"
    before = _tree(run)
    card.write_text(card.read_text().replace("beta = 0.5", "beta = 0.55"))
    changed = subprocess.run(hpcflow_cmd("run", str(card)), env=mpi_env(), capture_output=True, text=True,
                             timeout=300, cwd=tmp_path)
    assert changed.returncode == 2, changed.stderr
    assert "holds a run created by a different card ([theory].beta: 0.5 there, 0.55 in the card" in changed.stderr
    assert "stage" not in changed.stderr and _tree(run) == before
    card.write_text(card.read_text().replace("beta = 0.55", "beta = 0.5") + "\n[analysis]\nt_min = 2\n")
    again = subprocess.run(hpcflow_cmd("run", str(card)), env=mpi_env(), capture_output=True, text=True,
                           timeout=300, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "stage hmc: completed earlier" in again.stderr and "stage analyze_hmc: started" in again.stderr
    summary = json.loads((run / "report" / "analysis.json").read_text())
    assert summary["settings"]["t_min"] == 2 and summary["correlator"]["fit"]["t_range"] == [2, 4]


def test_a_missing_flow_is_reported_before_any_stage_runs(tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text(tiny_flow_card(dir=tmp_path / "run", sampler_extra='model = "nowhere/flow.pt"'))
    res = subprocess.run(hpcflow_cmd("run", str(card)), env=mpi_env(), capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "hpcflow: error: [sampler].model = 'nowhere/flow.pt': no trained flow there; run 'hpcflow train' on the card that makes it"
    ]
    assert not (tmp_path / "run").exists()


def test_ctrl_c_stops_the_workflow_and_its_stages_without_a_traceback(write_card, tmp_path: Path) -> None:
    card = write_card(shape=[8, 8], trajectories=100_000, thermalization=10, chains=2, checkpoint_every=20)
    run = tmp_path / "run"
    proc = subprocess.Popen(hpcflow_cmd("run", str(card)), env=mpi_env(), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for_checkpoint(run / "checkpoints", 40, proc, timeout=300)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C at the terminal does: the whole foreground group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert "stopped by signal 2" in err and "rerun the same command to resume" in err
    assert not (run / "workflow" / "hmc.done").exists()
    assert "rerun the same command to resume" in (run / "workflow" / "hmc.log").read_text()
