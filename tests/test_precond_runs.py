"""hpcflow precond train and hpcflow solve with preconditioners on a stored 2D U(1) configuration:
training lowers the cost on held-out vectors, resumes, transfers; every preconditioner reaches the
same solution with fewer iterations; bad input gets one line naming the key."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
import torch

from conftest import cli_env, hpcflow_cmd
from hpcflow.workflow.precond import precond_train
from hpcflow.workflow.runcard import RunCardError, validate_runcard

pytestmark = pytest.mark.slow

U1 = """\
[theory]
name = "u1"
shape = {shape}
beta = 3.0
start = "hot"

[sampler]
kind = "hmc"
chains = 1
trajectories = 20
thermalization = 80
tau = 1.0
steps = 10
seed = 3

[output]
dir = "{dir}"
"""

PRECOND = """\
[precond]
configs = "{configs}"
mass = {mass}
channels = {channels}
steps = {steps}
batch = 4
lr = 0.01
seed = 1
log_every = 10
checkpoint_every = 20
dir = "{dir}"
{extra}"""

SOLVE = """\
[solve]
configs = "{configs}"
masses = [{mass}]
solver = "fgmres"
tol = 1e-8
maxiter = 4000
sources = 1
seed = 2
dir = "{dir}"
{extra}"""


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(hpcflow_cmd("--no-progress", *args), env=cli_env(), capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("u1")
    card = tmp / "u1.toml"
    card.write_text(U1.format(shape=[16, 16], dir=tmp / "u1"))
    assert _cli("sample", str(card)).returncode == 0
    return tmp / "u1" / "configs.h5"


def _write(path: Path, template: str, **kw: object) -> Path:
    path.write_text(template.format(**{"extra": "", **kw}))
    return path


MASS = -0.1


@pytest.fixture(scope="module")
def model(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("precond")
    card = _write(tmp / "p.toml", PRECOND, configs=store, mass=MASS, channels=[1, 1], steps=120, dir=tmp / "model")
    res = _cli("precond", "train", str(card))
    assert res.returncode == 0, res.stderr
    return tmp / "model" / "model.pt"


def test_training_lowers_the_held_out_cost_and_resumes(model: Path, store: Path, tmp_path: Path) -> None:
    meta = torch.load(model, weights_only=True)["meta"]
    assert meta["held_out_cost"]["final"] < 0.7 * meta["held_out_cost"]["initial"], meta["held_out_cost"]
    assert meta["mass"] == MASS and meta["lattice"] == [16, 16]
    log = [json.loads(line) for line in (model.parent / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == list(range(10, 121, 10))
    # killed after step 60 (its checkpoint kept), rerun: the same weights as the uninterrupted run
    card = _write(tmp_path / "p.toml", PRECOND, configs=store, mass=MASS, channels=[1, 1], steps=120, dir=tmp_path / "m")
    assert _cli("precond", "train", str(card)).returncode == 0
    for step in (80, 100, 120):
        __import__("shutil").rmtree(tmp_path / "m" / "checkpoints" / f"{step:010d}", ignore_errors=True)
    (tmp_path / "m" / "model.pt").unlink()
    assert _cli("precond", "train", str(card)).returncode == 0
    a = torch.load(model, weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "m" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_solves_with_every_preconditioner_converge_in_fewer_iterations(model: Path, store: Path,
                                                                                       tmp_path: Path) -> None:
    results = {}
    for name, extra in (("none", ""), ("model", f'precond = "model"\nmodel = "{model}"'),
                        ("multigrid", 'precond = "multigrid"\nblocks = [4, 4]\nbasis = 4')):
        card = _write(tmp_path / f"{name}.toml", SOLVE, configs=store, mass=MASS, dir=tmp_path / name, extra=extra)
        res = _cli("solve", str(card))
        assert res.returncode == 0, res.stderr
        assert "work = applications of D" in res.stdout
        (r,) = json.loads((tmp_path / name / "solve.json").read_text())["results"]
        assert r["converged"]
        results[name] = r
    assert results["model"]["iterations"] * 1.5 < results["none"]["iterations"], {k: r["iterations"] for k, r in results.items()}
    assert results["multigrid"]["iterations"] * 3 < results["none"]["iterations"]
    assert results["model"]["work"] > results["model"]["iterations"] and results["model"]["precond_work"] > 0
    assert results["multigrid"]["precond_work"] > 2  # smoother twice, two D, the coarse solve: counted call by call


def test_a_model_transfers_to_a_larger_volume(model: Path, tmp_path: Path) -> None:
    card = tmp_path / "u1.toml"
    card.write_text(U1.format(shape=[32, 32], dir=tmp_path / "u1"))
    assert _cli("sample", str(card)).returncode == 0
    big = tmp_path / "u1" / "configs.h5"
    its = {}
    for name, extra in (("none", ""), ("model", f'precond = "model"\nmodel = "{model}"')):
        solve = _write(tmp_path / f"{name}.toml", SOLVE, configs=big, mass=MASS, dir=tmp_path / name, extra=extra)
        assert _cli("solve", str(solve)).returncode == 0
        its[name] = json.loads((tmp_path / name / "solve.json").read_text())["results"][0]["iterations"]
    assert its["model"] < its["none"], its


def test_bad_preconditioner_input_is_one_line(model: Path, store: Path, tmp_path: Path) -> None:
    su3 = tmp_path / "su3.pt"
    payload = torch.load(model, weights_only=True)
    payload["spec"]["colours"], payload["spec"]["dim"], payload["spec"]["spin"] = 3, 4, 4
    torch.save(payload, su3)
    hmc = tmp_path / "phi4.h5"
    hmc.write_bytes(b"")
    cases = [
        (f'precond = "model"\nmodel = "{su3}"', "[solve].model = ", "trained for d = 4, spin 4, colour 3"),
        ('precond = "multigrid"\nblocks = [5, 4]', "[solve].blocks = [5, 4]: must divide the lattice [16, 16]", ""),
        ('precond = "model"\nsolver2 = 1', "[solve].solver2: unknown key", ""),
        ('precond = "multigrid"', '[solve].precond = "multigrid": needs [solve].blocks', ""),
    ]
    for extra, why, more in cases:
        card = _write(tmp_path / "bad.toml", SOLVE, configs=store, mass=MASS, dir=tmp_path / "bad", extra=extra)
        res = _cli("solve", str(card))
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and why in res.stderr and more in res.stderr, res.stderr
        assert len(lines) <= 2, res.stderr
    phi4 = tmp_path / "phi4.toml"
    phi4.write_text(U1.format(shape=[8, 8], dir=tmp_path / "phi4").replace('name = "u1"', 'name = "phi4"\nlam = 0.5')
                    .replace('start = "hot"\n', "").replace("beta = 3.0", "beta = 0.5"))
    assert _cli("sample", str(phi4)).returncode == 0
    card = _write(tmp_path / "p.toml", PRECOND, configs=tmp_path / "phi4" / "configs.h5", mass=MASS, channels=[1, 1],
                  steps=10, dir=tmp_path / "nolinks")
    res = _cli("precond", "train", str(card))
    assert res.returncode == 2 and "holds a 'phi4' ensemble without gauge links" in res.stderr


def test_a_model_worse_than_none_is_flagged(store: Path, tmp_path: Path) -> None:
    """One step from the random start leaves the cost above 1 (that of M = 0): the run says so."""
    card = _write(tmp_path / "p.toml", PRECOND, configs=store, mass=MASS, channels=[1, 1], steps=1, dir=tmp_path / "m")
    res = _cli("precond", "train", str(card))
    assert res.returncode == 0, res.stderr
    assert torch.load(tmp_path / "m" / "model.pt", weights_only=True)["meta"]["held_out_cost"]["final"] >= 1.0
    assert "is not below 1" in res.stderr


COARSE = 'level = "coarse"\nkind = "lptc"\nblocks = [4, 4]\nbasis = 4\nlow_modes = 0.5\n'


@pytest.fixture(scope="module")
def coarse_model(store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("coarse")
    card = _write(tmp / "p.toml", PRECOND, configs=store, mass=MASS, channels=[1, 1], steps=200, dir=tmp / "lo",
                  extra=COARSE)
    res = _cli("precond", "train", str(card))
    assert res.returncode == 0, res.stderr
    return tmp / "lo" / "model.pt"


def test_the_neural_two_level_model_beats_both_of_its_parts(model: Path, coarse_model: Path, store: Path,
                                                             tmp_path: Path) -> None:
    """The lo-mode model learns D~^-1 on the 4x4 coarse grid of 8 vectors (4 near-null, chirally split);
    with the hi-mode smoother it needs fewer iterations than the smoother alone, and far fewer than none."""
    payload = torch.load(coarse_model, weights_only=True)
    assert payload["meta"]["level"] == "coarse" and payload["blocks"] == [4, 4]
    assert tuple(payload["vectors"].shape) == (4, 16, 16, 2, 1)
    assert payload["meta"]["held_out_cost"]["final"] < 0.5 * payload["meta"]["held_out_cost"]["initial"]
    its = {}
    for name, extra in (("none", ""), ("model", f'precond = "model"\nmodel = "{model}"'),
                        ("two_level", f'precond = "two_level_model"\nmodel = "{model}"\ncoarse_model = "{coarse_model}"')):
        card = _write(tmp_path / f"{name}.toml", SOLVE, configs=store, mass=MASS, dir=tmp_path / name, extra=extra)
        res = _cli("solve", str(card))
        assert res.returncode == 0, res.stderr
        (r,) = json.loads((tmp_path / name / "solve.json").read_text())["results"]
        assert r["converged"] and r["final_residual"] < 1e-8
        its[name] = r
    assert its["two_level"]["iterations"] * 1.5 < its["model"]["iterations"], {k: r["iterations"] for k, r in its.items()}
    assert its["two_level"]["precond_work"] > its["model"]["precond_work"]


def test_bad_two_level_input_is_one_line(model: Path, coarse_model: Path, store: Path, tmp_path: Path) -> None:
    solve_cases = [
        (f'precond = "two_level_model"\nmodel = "{model}"', '[solve].precond = "two_level_model": needs [solve].coarse_model'),
        (f'precond = "two_level_model"\nmodel = "{model}"\ncoarse_model = "{model}"',
         "[solve].coarse_model = ", "a hi-mode model"),
        (f'precond = "model"\nmodel = "{coarse_model}"', "[solve].model = ", "a lo-mode model"),
    ]
    for extra, *why in solve_cases:
        card = _write(tmp_path / "bad.toml", SOLVE, configs=store, mass=MASS, dir=tmp_path / "bad", extra=extra)
        res = _cli("solve", str(card))
        assert res.returncode == 2 and all(w in res.stderr for w in why), res.stderr
        assert len(res.stderr.strip().splitlines()) <= 2, res.stderr
    train_cases = [
        ('level = "coarse"\nblocks = [4, 4]\n', 'set kind = "lptc"'),
        ('level = "coarse"\nkind = "lptc"\n', "needs [precond].blocks"),
        (COARSE.replace("[4, 4]", "[3, 4]"), "[precond].blocks = [3, 4]: must divide the lattice [16, 16]"),
        (COARSE + f'init = "{coarse_model}"\n', "[precond].init: a lo-mode model belongs to the coarse basis"),
        ('level = "medium"\n', "[precond].level"),
        ("low_modes = 0.5\n", "[precond].low_modes = 0.5: low-mode training vectors need a solve with D"),
    ]
    for extra, why in train_cases:  # in-process: the command's one-line path is tested above
        text = PRECOND.format(configs=store, mass=MASS, channels=[1, 1], steps=5, dir=tmp_path / "bad_train", extra=extra)
        with pytest.raises(RunCardError) as err:
            precond_train(validate_runcard(tomllib.loads(text), source="bad.toml"), progress=False)
        assert any(why in problem for problem in err.value.problems), err.value.problems
    assert not (tmp_path / "bad_train").exists()
