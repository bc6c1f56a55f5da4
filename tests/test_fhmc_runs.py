"""Flow HMC through the command: the store of phi = f(z), kill -9 and resume bitwise at 1 and 2
ranks, the sharded store equal to the one of one rank, and bad cards refused in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import PHI4_6X6_AFFINE, assert_same_datasets, hpcflow_cmd, kill_session, mpi_env, wait_for_checkpoint

pytestmark = pytest.mark.slow

CARD = PHI4_6X6_AFFINE + """\
hidden = {hidden}
kernel = 3
activation = "tanh"
equivariant = false
rescaling = true

[training]
steps = 30
batch = 32
lr = 0.01
seed = 1

[sampler]
kind = "fhmc"
chains = 3
trajectories = {trajectories}
thermalization = 10
tau = 1.0
steps = 6
seed = 4
target_acceptance = 0.85
{sampler_extra}
[output]
dir = "{dir}"
checkpoint_every = {every}
"""


def _card(tmp_path: Path, name: str, trajectories: int = 60, every: int = 10, hidden: str = "[]",
          sampler_extra: str = "", model: Path | None = None) -> Path:
    extra = sampler_extra + (f'model = "{model}"\n' if model else "")
    path = tmp_path / f"{name}.toml"
    path.write_text(CARD.format(dir=tmp_path / name, trajectories=trajectories, every=every, hidden=hidden,
                                sampler_extra=extra))
    return path


def _hpcflow(*args: str, ranks: int = 1) -> subprocess.CompletedProcess:
    launch = ["mpiexec", "-n", str(ranks)] if ranks > 1 else []
    return subprocess.run([*launch, *hpcflow_cmd("--no-progress", *args)], env=mpi_env(), capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The paper's minimal flow (one affine pair of single convolutions, global rescaling), trained."""
    tmp = tmp_path_factory.mktemp("fhmc_flow")
    card = _card(tmp, "flow")
    res = _hpcflow("train", str(card))
    assert res.returncode == 0, res.stderr
    return tmp / "flow" / "model" / "flow.pt"


@pytest.fixture(scope="module")
def reference(trained: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("fhmc_reference")
    res = _hpcflow("sample", str(_card(tmp, "run", trajectories=400, every=20, model=trained)))
    assert res.returncode == 0, res.stderr
    return tmp / "run" / "configs.h5"


def test_flow_hmc_stores_physical_fields_and_reports_the_integration(reference: Path, trained: Path) -> None:
    run = reference.parent
    with h5py.File(reference) as f:
        assert f.attrs["sampler"] == "fhmc" and f.attrs["complete"]
        assert f["phi"].shape == (3, 400, 6, 6) and 0.5 < f.attrs["acceptance"] <= 1.0
        phi, action = f["phi"][()], f["observables/action"][()]
    import torch

    from hpcflow.theories.phi4 import Phi4Action

    s = Phi4Action(0.5, 0.5)(torch.from_numpy(phi.reshape(-1, 6, 6))).numpy().reshape(3, 400)
    np.testing.assert_allclose(action, s, rtol=1e-12)  # the stored fields are phi = f(z), with their action S
    res = _hpcflow("analyze", str(run))
    assert res.returncode == 0, res.stderr
    summary = json.loads((run / "report" / "analysis.json").read_text())
    assert summary["sampler_kind"] == "fhmc" and summary["integration"]["tuned"]
    assert abs(summary["exp_minus_dH"]["value"] - 1) < 4 * summary["exp_minus_dH"]["error"]
    assert "FHMC acceptance" in res.stdout


@pytest.mark.mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_kill_9_then_resume_gives_the_uninterrupted_store(reference: Path, trained: Path, tmp_path: Path,
                                                          ranks: int) -> None:
    if ranks > 1 and not h5py.get_config().mpi:
        pytest.skip("h5py without MPI: the single-file layout needs the parallel build of scripts/install.sh")
    card = _card(tmp_path, "run", trajectories=400, every=20, model=trained)
    launch = (["mpiexec", "-n", str(ranks)] if ranks > 1 else []) + hpcflow_cmd("--no-progress", "sample", str(card))
    proc = subprocess.Popen(launch, env=mpi_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_for_checkpoint(tmp_path / "run" / "checkpoints", 100, proc)
    kill_session(proc)
    res = _hpcflow("sample", str(card), ranks=ranks)
    assert res.returncode == 0, res.stderr
    assert_same_datasets(reference, tmp_path / "run" / "configs.h5")


@pytest.mark.mpi
def test_sharded_flow_hmc_writes_the_store_of_one_rank(reference: Path, trained: Path, tmp_path: Path) -> None:
    res = _hpcflow("sample", str(_card(tmp_path, "run", trajectories=400, every=20, model=trained)), ranks=2)
    assert res.returncode == 0, res.stderr
    assert_same_datasets(reference, tmp_path / "run" / "configs.h5")


def test_bad_flow_hmc_cards_get_one_line_naming_the_key(trained: Path, tmp_path: Path) -> None:
    no_model = _card(tmp_path, "nomodel")
    no_model.write_text(no_model.read_text().split("[model]")[0] + "[sampler]" + no_model.read_text().split("[sampler]")[1])
    other_dim = tmp_path / "flow4d.pt"
    payload = __import__("torch").load(trained, weights_only=True)
    payload["shape"] = [6, 6, 6]
    __import__("torch").save(payload, other_dim)
    cases = [
        (no_model, '[sampler].kind = "fhmc": needs a [model] section (trained by hpcflow train) or [sampler].model'),
        (_card(tmp_path, "dim", model=other_dim), "trained on a 3D lattice [6, 6, 6], the card's lattice is 2D"),
        (_card(tmp_path, "arch", hidden="[4]", model=trained), "another architecture (hidden: [] there, [4] in the card)"),
    ]
    for card, why in cases:
        res = _hpcflow("sample", str(card))
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2 and len(lines) == 1 and why in lines[0], res.stderr
        assert not (tmp_path / card.stem / "configs.h5").exists()
    shutil.rmtree(tmp_path / "dim", ignore_errors=True)
