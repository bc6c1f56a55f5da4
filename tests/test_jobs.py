"""Job scripts: committed examples up to date, card values refused before they reach a shell,
system files validated, and a PBS script run by hand as PBS would start it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from conftest import REPO, hpcflow_cmd, mpi_env, tiny_flow_card
from hpcflow.workflow.jobs import render
from hpcflow.workflow.runcard import RunCardError, load_runcard
from hpcflow.workflow.systems import SystemConfigError, load_system, system_names

EXAMPLE_CARD = "jobs/cards/phi4_flow_32x32.toml"


@pytest.mark.parametrize("name", system_names())
def test_committed_examples_are_what_render_writes(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A system without setup lines runs this machine's interpreter (``sys.executable``); its
    committed example says ``python3`` in its place."""
    monkeypatch.chdir(REPO)
    expected = render(load_runcard(EXAMPLE_CARD), EXAMPLE_CARD, load_system(name)).replace(sys.executable, "python3")
    committed = REPO / "jobs" / "examples" / f"{name}.sh"
    assert committed.read_text() == expected, (
        f"jobs/examples/{name}.sh is stale: hpcflow jobs render {EXAMPLE_CARD} --system {name} -o {committed}"
    )


def test_every_system_maps_to_its_scheduler_and_launcher() -> None:
    shapes = {n: load_system(n) for n in system_names()}
    assert {n: (s.scheduler, s.launcher) for n, s in shapes.items()} == {
        "aurora": ("pbs", "pals"), "frontier": ("slurm", "srun"), "local": ("local", "mpiexec"),
        "pbs": ("pbs", "mpiexec"), "perlmutter": ("slurm", "srun"), "polaris": ("pbs", "pals"), "slurm": ("slurm", "srun"),
    }
    assert shapes["local"].launch() == [] and shapes["local"].launch(2) == ["mpiexec", "-n", "2"]
    assert shapes["aurora"].launch() == ["mpiexec", "-n", "24", "--ppn", "12", "--depth", "8", "--cpu-bind", "depth"]
    assert shapes["perlmutter"].launch()[:5] == ["srun", "-n", "8", "-c", "32"]
    assert shapes["frontier"].command("sample", "c.toml")[:4] == ["apptainer", "exec", "--rocm", "--bind"]


def test_pbs_directives_of_polaris() -> None:
    text = (REPO / "jobs" / "examples" / "polaris.sh").read_text()
    for line in ("#PBS -l select=2:ncpus=32:ngpus=4", "#PBS -l walltime=01:00:00", "#PBS -q debug",
                 "#PBS -A YOUR_ACCOUNT", "#PBS -l filesystems=home:eagle", 'cd "${PBS_O_WORKDIR:-.}"',
                 "mpiexec -n 8 --ppn 4 --depth 8 --cpu-bind depth apptainer exec --nv"):
        assert line in text, line


@pytest.mark.parametrize("line, why", [
    ('dir = "runs/x; rm -rf ~"', "[output].dir = 'runs/x; rm -rf ~': only letters"),
    ('model = "flow.pt`touch pwned`"', "[sampler].model = 'flow.pt`touch pwned`': only letters"),
    ('name = "phi4$(id)"', "[theory].name = 'phi4$(id)'"),  # not a theory at all: refused by validation
])
def test_card_strings_that_could_reach_a_shell_are_refused(tmp_path: Path, line: str, why: str) -> None:
    text = tiny_flow_card(chains=2, updates=100, dir="run")
    key = line.split(" = ")[0]
    old = {"dir": 'dir = "run"', "model": "chunk = 50", "name": 'name = "phi4"'}[key]
    card = tmp_path / "card.toml"
    card.write_text(text.replace(old, line if key != "model" else f"{old}\n{line}"))
    res = subprocess.run(hpcflow_cmd("jobs", "render", str(card), "--system", "slurm"), env=mpi_env(),
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 2 and res.stdout == "", res.stdout + res.stderr
    assert "hpcflow: error:" in res.stderr and why in res.stderr, res.stderr
    assert not (Path.home() / "pwned").exists() and not (tmp_path / "pwned").exists()


def test_bad_system_files_name_the_setting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[system]\nscheduler = "lsf"\nnodes = 0\nwalltime = "1h"\naccount = "a b"\nlaunchers = "srun"\n')
    with pytest.raises(SystemConfigError) as err:
        load_system(str(bad))
    text = str(err.value)
    assert "launchers: unknown setting" in text and "nodes = 0: expected an integer >= 1" in text
    bad.write_text('[system]\nscheduler = "lsf"\nwalltime = "1h"\naccount = "a;b"\n')
    with pytest.raises(SystemConfigError) as err:
        load_system(str(bad))
    text = str(err.value)
    assert "scheduler = 'lsf': expected one of local, slurm, pbs" in text and "walltime = '1h'" in text
    assert "account = 'a;b'" in text
    with pytest.raises(SystemConfigError, match="no such system; known: aurora"):
        load_system("nowhere")


def test_too_few_chains_for_the_ranks_are_refused(tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text(tiny_flow_card(chains=2, updates=100, dir=tmp_path / "run"))
    with pytest.raises(RunCardError, match="fewer than the 8 ranks of system 'perlmutter'"):
        render(load_runcard(card), str(card), load_system("perlmutter"))


def test_submit_on_local_says_there_is_nothing_to_submit(tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text(tiny_flow_card(chains=2, updates=100, dir=tmp_path / "run"))
    res = subprocess.run(hpcflow_cmd("jobs", "submit", str(card), "--system", "local"), env=mpi_env(),
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 2 and "run the script with bash, nothing to submit" in res.stderr


@pytest.mark.mpi
@pytest.mark.slow
def test_pbs_script_run_by_hand_as_pbs_would(tmp_path: Path) -> None:
    """The rendered PBS script, started with the variables PBS sets (PBS_O_WORKDIR, PBS_NODEFILE)."""
    (tmp_path / "card.toml").write_text(tiny_flow_card(chains=2, updates=100, dir="run"))
    script = tmp_path / "job.sh"
    res = subprocess.run(hpcflow_cmd("jobs", "render", "card.toml", "--system", "pbs", "-o", str(script)),
                         env=mpi_env(), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    nodefile = tmp_path / "nodefile"
    nodefile.write_text("localhost\nlocalhost\n")
    env = dict(mpi_env(), PBS_O_WORKDIR=str(tmp_path), PBS_NODEFILE=str(nodefile), PBS_JOBID="1.test",
               HPCFLOW_VENV=sys.prefix)
    res = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=600, cwd="/")
    assert res.returncode == 0, res.stdout + res.stderr
    with h5py.File(tmp_path / "run" / "configs.h5") as f:
        assert f.attrs["complete"] and json.loads(f.attrs["parallel"])["ranks"] == 2
    assert (tmp_path / "run" / "report" / "analysis.json").is_file()
    assert os.access(script, os.R_OK)


def test_the_local_script_runs_outside_the_virtual_environment(write_card, tmp_path: Path) -> None:
    """The rendered local script names this hpcflow's interpreter, so it runs from a shell that
    has no virtual environment on its PATH (a bare ``python3`` gave 'No module named hpcflow')."""
    card = write_card(trajectories=20, thermalization=5, chains=2)
    script = tmp_path / "local.sh"
    res = subprocess.run(hpcflow_cmd("jobs", "render", str(card), "--system", "local", "-o", str(script)),
                         env=mpi_env(), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert f"{sys.executable} -m hpcflow.cli" in script.read_text()
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(["bash", str(script)], env=bare, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (tmp_path / "run" / "report" / "analysis.json").is_file()


def test_parsl_blocks_ask_for_what_the_job_scripts_ask_for(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Whole nodes and the GPUs of a node on Slurm; on PBS the GPUs, the working directory and the
    environment of the workflow before the setup lines; Open MPI's own launch line on generic PBS."""
    pytest.importorskip("parsl", reason="the workflow needs Parsl (pip install '.[workflow]')")
    from hpcflow.workflow.parsl_config import mpi_prefix, parsl_config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HPCFLOW_VENV", "/opt/venv")
    perlmutter = parsl_config(load_system("perlmutter"), tmp_path / "p").executors[0].provider
    assert perlmutter.exclusive and perlmutter.gpus_per_node == 4 and perlmutter.nodes_per_block == 2
    assert not parsl_config(load_system("slurm"), tmp_path / "s").executors[0].provider.exclusive
    polaris = parsl_config(load_system("polaris"), tmp_path / "q").executors[0].provider
    assert polaris.select_options == ":ngpus=4"
    lines = polaris.worker_init.splitlines()
    assert lines[0] == f"cd {tmp_path}" and "export HPCFLOW_VENV=/opt/venv" in lines and any(x.startswith("export PATH=") for x in lines)
    assert lines.index("export HPCFLOW_VENV=/opt/venv") < lines.index("module use /soft/modulefiles")
    assert mpi_prefix(load_system("polaris")) == "$PARSL_MPI_PREFIX"
    assert mpi_prefix(load_system("pbs")) == 'mpiexec -n 2 -hostfile "$PBS_NODEFILE"'
    assert "-ppn" not in mpi_prefix(load_system("pbs"))


def test_a_solve_card_or_a_broken_system_file_is_one_line(tmp_path: Path) -> None:
    solve = tmp_path / "solve.toml"
    solve.write_text('[solve]\nconfigs = "x.h5"\nmasses = [0.1]\nsolver = "fgmres"\ntol = 1e-8\nmaxiter = 10\nseed = 1\n'
                     f'dir = "{tmp_path / "out"}"\n')
    broken = tmp_path / "broken.toml"
    broken.write_text("[system\nscheduler = 'slurm'\n")
    for args, why in ((("jobs", "render", str(solve), "--system", "local"), "[solve]: a solve card is not for job scripts"),
                      (("run", str(solve)), "[solve]: a solve card is not for the workflow; run 'hpcflow solve CARD'"),
                      (("jobs", "render", EXAMPLE_CARD, "--system", str(broken)), f"{broken}: not valid TOML")):
        res = subprocess.run(hpcflow_cmd(*args), env=mpi_env(), capture_output=True, text=True, timeout=120, cwd=REPO)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and why in lines[0], res.stderr
