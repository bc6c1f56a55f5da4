"""Rank discovery from launcher variables, strategy contracts, DDP gradient averaging at 2 ranks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import hpcflow_cmd, kill_session, mpi_env, wait_for_checkpoint
from hpcflow.parallel import ClusterEnv, HorovodStrategy, SerialStrategy, StrategyNotInitialized, StrategyUnavailable

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    "variables, expected",
    [
        ({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1", "MASTER_ADDR": "x"}, (3, 8, 1, "torchrun")),
        ({"OMPI_COMM_WORLD_RANK": "1", "OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_RANK": "1"}, (1, 4, 1, "openmpi")),
        ({"PALS_RANKID": "5", "PMI_SIZE": "12", "PALS_LOCAL_RANKID": "1", "PMI_RANK": "5"}, (5, 12, 1, "pals")),
        ({"PMI_RANK": "2", "PMI_SIZE": "3", "MPI_LOCALRANKID": "0"}, (2, 3, 0, "mpich")),
        ({"SLURM_PROCID": "7", "SLURM_NTASKS": "16", "SLURM_LOCALID": "3"}, (7, 16, 3, "slurm")),
        ({"SLURM_NTASKS": "16", "SLURM_JOB_ID": "1"}, (0, 1, 0, "serial")),  # the batch script itself
        ({}, (0, 1, 0, "serial")),
    ],
)
def test_launcher_variables(variables: dict[str, str], expected: tuple) -> None:
    env = ClusterEnv.detect(variables)
    assert (env.rank, env.size, env.local_rank, env.launcher) == expected


def test_inconsistent_variables_are_refused() -> None:
    with pytest.raises(ValueError, match="outside"):
        ClusterEnv.detect({"SLURM_PROCID": "4", "SLURM_NTASKS": "4"})


def test_methods_before_init_name_the_method() -> None:
    with pytest.raises(StrategyNotInitialized, match=r"SerialStrategy.wrap\(\) called before SerialStrategy.init\(\)"):
        SerialStrategy().wrap(None, None)
    s = SerialStrategy()
    s.init()
    assert s.env.size == 1 and s.env.is_root


def test_missing_horovod_says_how_to_build_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "horovod.torch", None)  # import fails as if not installed
    with pytest.raises(StrategyUnavailable, match=r"Horovod 0.28.1 must be built with a C\+\+17 patch: run scripts/install.sh"):
        HorovodStrategy().init()


def test_serial_backend_refuses_a_parallel_launch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "1")
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"launched as 2 ranks \(openmpi\): choose \"ddp\" or \"horovod\""):
        SerialStrategy().init()


@pytest.mark.mpi
@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec (Open MPI from scripts/install.sh)")
def test_ddp_gradients_at_two_ranks_equal_the_union_batch() -> None:
    env = mpi_env()
    res = subprocess.run(["mpiexec", "-n", "2", sys.executable, str(REPO / "tests" / "mpi" / "ddp_gradients.py")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {"size": 2, "launcher": "openmpi", "mean_rank": 0.5, "grads_equal": True}


FLOW_HEAD = """\
[theory]
name = "phi4"
shape = [4, 4]
beta = 0.5
lam = 0.5

[model]
coupling = ["affine", "spline"]
layers = 2
hidden = [4]
kernel = 3
bins = 4
"""

GRADFLOW_HEAD = """\
[theory]
name = "u1"
shape = [4, 4]
beta = 1.5

[model]
kind = "gradflow"
loops = ["1x1", "1x2", "2x1"]
steps = 4
init = "zero"
"""

TRAIN_CARD = """\
{head}
[training]
steps = 12
batch = {batch}
shard = 4
lr = 0.01
seed = 3
dtype = "float64"
log_every = 4
checkpoint_every = 4

[sampler]
kind = "nmcmc"
chains = 2
updates = 10
thermalization = 0
seed = 1

[output]
dir = "{dir}"
"""


@pytest.mark.mpi
@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec (Open MPI from scripts/install.sh)")
@pytest.mark.parametrize("head", [FLOW_HEAD, GRADFLOW_HEAD], ids=["flow", "gradflow"])
def test_two_ranks_of_batch_b_train_like_one_rank_of_batch_2b(tmp_path: Path, head: str) -> None:
    import torch

    env = mpi_env()
    one, two = tmp_path / "one.toml", tmp_path / "two.toml"
    one.write_text(TRAIN_CARD.format(head=head, batch=8, dir=tmp_path / "one"))
    two.write_text(TRAIN_CARD.format(head=head, batch=4, dir=tmp_path / "two"))
    cli = [sys.executable, "-m", "hpcflow.cli", "--no-progress", "train"]
    res = subprocess.run([*cli, str(one)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    res = subprocess.run(["mpiexec", "-n", "2", *cli, str(two)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    a = torch.load(tmp_path / "one" / "model" / "flow.pt", weights_only=True)
    b = torch.load(tmp_path / "two" / "model" / "flow.pt", weights_only=True)
    assert b["meta"]["ranks"] == 2 and b["meta"]["phi_train"] == a["meta"]["phi_train"] == 12 * 8
    # the same two latent streams: both on rank 0 of the 1-rank run, one per rank of the 2-rank run
    assert b["meta"]["backend"] == "ddp" and len(b["meta"]["shard_seeds"]) == 2
    assert [s for rank in b["meta"]["shard_seeds"] for s in rank] == a["meta"]["shard_seeds"][0]
    # float64: the two runs sum the batch gradient in a different order (rounding ~1e-16), which
    # Adam's normalization can lift to ~1e-11 on parameters near zero after 12 steps
    for key, value in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][key], value, rtol=1e-8, atol=1e-9)
    moved = max(float((v - torch.zeros_like(v)).abs().max()) for v in a["state_dict"].values())
    assert moved > 0  # training changed the (zero-initialized) last layers
    log_one = (tmp_path / "one" / "model" / "train_log.jsonl").read_text().splitlines()
    log_two = (tmp_path / "two" / "model" / "train_log.jsonl").read_text().splitlines()
    assert len(log_one) == len(log_two) == 3
    # the same card on 1 rank would draw half the latent shards: refused, nothing overwritten
    before = (tmp_path / "two" / "model" / "flow.pt").read_bytes()
    res = subprocess.run([*cli, str(two)], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "2 latent shards, this run has 1 ranks x 1" in res.stderr, res.stderr
    assert (tmp_path / "two" / "model" / "flow.pt").read_bytes() == before


def _train_two_ranks(card: Path, **popen: object) -> subprocess.CompletedProcess:
    cmd = ["mpiexec", "-n", "2", *hpcflow_cmd("--no-progress", "train", str(card))]
    return subprocess.run(cmd, env=mpi_env(), capture_output=True, text=True, timeout=600, **popen)


def _parameters(run: Path) -> dict:
    import torch

    return torch.load(run / "model" / "flow.pt", weights_only=True)["state_dict"]


@pytest.mark.mpi
@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec (Open MPI from scripts/install.sh)")
def test_horovod_and_ddp_train_the_same_parameters_at_two_ranks(tmp_path: Path) -> None:
    pytest.importorskip("horovod.torch", reason="Horovod not built: scripts/install.sh builds it (C++17 patch)")
    import torch

    for backend in ("ddp", "horovod"):
        card = tmp_path / f"{backend}.toml"
        card.write_text(TRAIN_CARD.format(head=FLOW_HEAD, batch=4, dir=tmp_path / backend) + f'\n[parallel]\nbackend = "{backend}"\n')
        res = _train_two_ranks(card)
        assert res.returncode == 0, res.stdout + res.stderr
    ddp, hvd = _parameters(tmp_path / "ddp"), _parameters(tmp_path / "horovod")
    for key, value in ddp.items():  # both average the same two float64 gradients, then clip
        torch.testing.assert_close(hvd[key], value, rtol=1e-12, atol=1e-14)
    assert max(float(v.abs().max()) for v in ddp.values()) > 0


@pytest.mark.mpi
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mpiexec") is None, reason="no mpiexec (Open MPI from scripts/install.sh)")
def test_training_killed_at_two_ranks_resumes_to_the_same_parameters(tmp_path: Path) -> None:
    import torch

    long_card = TRAIN_CARD.replace("steps = 12", "steps = 400").replace("checkpoint_every = 4", "checkpoint_every = 20")
    for name in ("reference", "run"):
        (tmp_path / f"{name}.toml").write_text(long_card.format(head=FLOW_HEAD, batch=4, dir=tmp_path / name))
    res = _train_two_ranks(tmp_path / "reference.toml")
    assert res.returncode == 0, res.stdout + res.stderr
    cmd = ["mpiexec", "-n", "2", *hpcflow_cmd("--no-progress", "train", str(tmp_path / "run.toml"))]
    proc = subprocess.Popen(cmd, env=mpi_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_checkpoint(tmp_path / "run" / "model" / "checkpoints", 99, proc)
    kill_session(proc)
    assert not (tmp_path / "run" / "model" / "flow.pt").exists()
    res = _train_two_ranks(tmp_path / "run.toml")
    assert res.returncode == 0, res.stdout + res.stderr
    reference, resumed = _parameters(tmp_path / "reference"), _parameters(tmp_path / "run")
    for key, value in reference.items():
        torch.testing.assert_close(resumed[key], value, rtol=0, atol=0)


def test_the_rendezvous_address_is_not_a_loopback_one_where_another_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian-style hosts map their own name to 127.0.1.1, which the other nodes cannot reach:
    the address of the interface that routes outwards is taken then; a real address is kept."""
    import socket

    from hpcflow.parallel import strategy

    class Probe:
        def __init__(self, *args: object) -> None:
            pass

        def __enter__(self) -> "Probe":
            return self

        def __exit__(self, *exc: object) -> None:
            pass

        def connect(self, address: tuple[str, int]) -> None:
            assert address[0] == "192.0.2.1"  # a documentation address: nothing is sent

        def getsockname(self) -> tuple[str, int]:
            return ("10.20.30.40", 5555)

    monkeypatch.setattr(strategy.socket, "socket", Probe)
    monkeypatch.setattr(socket, "gethostbyname", lambda name: "127.0.1.1")
    assert strategy.rendezvous_address() == "10.20.30.40"
    monkeypatch.setattr(socket, "gethostbyname", lambda name: "192.168.7.7")
    assert strategy.rendezvous_address() == "192.168.7.7"
