"""Chains sharded over MPI ranks: the same store as one rank, in both HDF5 layouts; kill -9 of a
2-rank run and its restart on 2 ranks, or on 1 rank (resharded, or refused for per-rank files)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import (
    assert_same_datasets,
    h5_datasets,
    hpcflow_cmd,
    kill_session,
    mpi_env,
    tiny_flow_card,
    wait_for_checkpoint,
)
from hpcflow.io.shards import choose_layout
from hpcflow.lattice.rng import chain_seed
from hpcflow.parallel.world import chain_blocks

pytestmark = [
    pytest.mark.mpi,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec (Open MPI from scripts/install.sh)"),
]

HMC_CARD = """\
[theory]
name = "phi4"
shape = [6, 6]
beta = 0.5
lam = 0.5

[sampler]
kind = "hmc"
chains = 5
trajectories = {trajectories}
thermalization = 20
tau = 1.0
steps = 8
seed = 7
target_acceptance = 0.8

[parallel]
io = "{io}"

[output]
dir = "{dir}"
checkpoint_every = {every}
"""


def _card(tmp_path: Path, name: str, io: str = "auto", trajectories: int = 60, every: int = 10) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(HMC_CARD.format(io=io, dir=tmp_path / name, trajectories=trajectories, every=every))
    return path


def _sample(card: Path, ranks: int, *extra: str) -> subprocess.CompletedProcess:
    launch = ["mpiexec", "-n", str(ranks)] if ranks > 1 else []
    return subprocess.run([*launch, *hpcflow_cmd("--no-progress", "sample", str(card)), *extra],
                          env=mpi_env(), capture_output=True, text=True, timeout=600)


def _assert_same_data(a: Path, b: Path) -> None:
    assert_same_datasets(a, b)
    with h5py.File(a) as fa, h5py.File(b) as fb:
        for key in ("acceptance", "acceptance_per_chain", "n_steps", "complete"):
            assert fa.attrs[key] == fb.attrs[key], key


def test_chain_blocks_cover_every_chain_once() -> None:
    assert chain_blocks(5, 2) == [range(0, 3), range(3, 5)]
    assert chain_blocks(8, 4) == [range(2 * r, 2 * r + 2) for r in range(4)]
    with pytest.raises(ValueError, match="3 chains cannot be shared by 4 ranks"):
        chain_blocks(3, 4)


def test_auto_layout_is_one_file_when_h5py_has_mpi() -> None:
    assert choose_layout("auto", 1) == "single"
    assert choose_layout("auto", 4) == ("single" if h5py.get_config().mpi else "per-rank")
    assert choose_layout("per-rank", 1) == "per-rank"


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("one_rank")
    res = _sample(_card(tmp, "run"), 1)
    assert res.returncode == 0, res.stderr
    return tmp / "run" / "configs.h5"


@pytest.mark.parametrize("ranks, io", [(2, "auto"), (2, "per-rank"), (4, "auto")])
def test_sharded_hmc_writes_the_store_of_one_rank(reference: Path, tmp_path: Path, ranks: int, io: str) -> None:
    if io == "auto" and not h5py.get_config().mpi:
        pytest.skip("h5py without MPI: the single-file layout needs the parallel build of scripts/install.sh")
    res = _sample(_card(tmp_path, "run", io), ranks)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("configurations:") == 1  # rank 0 alone prints
    store = tmp_path / "run" / "configs.h5"
    _assert_same_data(reference, store)  # includes the step size tuned on every rank's dH
    with h5py.File(store) as f:
        record = json.loads(f.attrs["parallel"])
    blocks = chain_blocks(5, ranks)
    assert record["ranks"] == ranks and record["backend"] == "mpi4py" and record["layout"] == ("per-rank" if io == "per-rank" else "single")
    assert record["chain_blocks"] == [[b.start, b.stop] for b in blocks]
    assert record["chain_seeds"] == [[chain_seed(7, c) for c in b] for b in blocks]
    rank_files = sorted(p.name for p in (tmp_path / "run").glob("configs.rank*.h5"))
    assert rank_files == ([f"configs.rank{r:05d}.h5" for r in range(ranks)] if io == "per-rank" else [])


def _kill_at_two_ranks(card: Path, run: Path, beyond: int, seed: int) -> None:
    launch = ["mpiexec", "-n", "2", *hpcflow_cmd("--no-progress", "sample", str(card))]
    proc = subprocess.Popen(launch, env=mpi_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_for_checkpoint(run / "checkpoints", beyond, proc)
    time.sleep(random.Random(seed).uniform(0.0, 0.2))
    kill_session(proc)
    with h5py.File(run / "configs.h5") as f:  # readable, and not complete
        assert not f.attrs["complete"]


@pytest.fixture(scope="module")
def long_reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("long")
    res = _sample(_card(tmp, "run", trajectories=1500, every=50), 1)
    assert res.returncode == 0, res.stderr
    return tmp / "run" / "configs.h5"


@pytest.mark.parametrize("resume_ranks", [2, 1])
def test_kill_9_at_two_ranks_then_resume(long_reference: Path, tmp_path: Path, resume_ranks: int) -> None:
    """Restarted with the same command, or resharded onto 1 rank (one shared file, mpio)."""
    if not h5py.get_config().mpi:
        pytest.skip("h5py without MPI: the single-file layout needs the parallel build of scripts/install.sh")
    card = _card(tmp_path, "run", trajectories=1500, every=50)
    _kill_at_two_ranks(card, tmp_path / "run", 100, resume_ranks)
    res = _sample(card, resume_ranks)
    assert res.returncode == 0, res.stdout + res.stderr
    _assert_same_data(long_reference, tmp_path / "run" / "configs.h5")


def test_per_rank_files_refuse_another_rank_count(long_reference: Path, tmp_path: Path) -> None:
    card = _card(tmp_path, "run", io="per-rank", trajectories=1500, every=50)
    run = tmp_path / "run"
    _kill_at_two_ranks(card, run, 100, 3)
    before = {p.name: p.read_bytes() for p in run.glob("configs*.h5")}
    res = _sample(card, 1)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "written in per-rank files by 2 ranks; relaunch with that many ranks (1 now)" in res.stderr
    assert {p.name: p.read_bytes() for p in run.glob("configs*.h5")} == before  # nothing touched
    res = _sample(card, 2)
    assert res.returncode == 0, res.stdout + res.stderr
    _assert_same_data(long_reference, run / "configs.h5")


def test_sharded_nmcmc_writes_the_store_of_one_rank(tmp_path: Path) -> None:
    model = tmp_path / "flow" / "model" / "flow.pt"
    train_card = tmp_path / "train.toml"
    train_card.write_text(tiny_flow_card(seed=3, chunk=32, sampler_extra=f'model = "{model}"\n', dir=tmp_path / "flow"))
    res = subprocess.run(hpcflow_cmd("--no-progress", "train", str(train_card)), env=mpi_env(),
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    stores = []
    for ranks in (1, 2):
        card = tmp_path / f"nmcmc{ranks}.toml"
        card.write_text(tiny_flow_card(seed=3, chunk=32, sampler_extra=f'model = "{model}"\n', dir=tmp_path / f"run{ranks}"))
        res = _sample(card, ranks)
        assert res.returncode == 0, res.stdout + res.stderr
        stores.append(tmp_path / f"run{ranks}" / "configs.h5")
    one, two = (h5_datasets(s) for s in stores)
    assert one.keys() == two.keys()
    for key in one:  # the flow is evaluated per chain: batch composition does not enter
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)
    assert 0 < one["nmcmc/accepted"].mean() < 1


def test_a_rank_that_fails_before_a_collective_ends_the_whole_job(tmp_path: Path) -> None:
    """A per-rank store whose rank-1 file is lost: rank 1 fails to open it while rank 0 goes on
    to the next collective. The job must end promptly with rank 1's message (before: rank 0
    waited in the barrier until the walltime), with the non-zero status of the failure."""
    card = _card(tmp_path, "lost", io="per-rank", trajectories=40, every=20)
    assert _sample(card, 2).returncode == 0
    run = tmp_path / "lost"
    shutil.rmtree(run / "checkpoints" / "0000000060")  # resume from 40: the store is reopened for writing
    (run / "configs.rank00001.h5").unlink()
    res = _sample(card, 2)  # a hang ends in the subprocess timeout, and fails the test
    assert res.returncode != 0
    assert "hpcflow: rank 1: error:" in res.stderr and "configs.rank00001.h5" in res.stderr, res.stderr
