"""Shared fixtures: device/dtype options, a fixed seed per test, markers, run-card helpers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent

from hpcflow.kernels import compiled, why_not_compiled  # noqa: E402

needs_kernels = pytest.mark.skipif(compiled() is None, reason=f"compiled CPU kernels: {why_not_compiled()}")
DIRAC_BACKENDS = ["torch", pytest.param("compiled", marks=needs_kernels)]
"""The CPU operator paths a physics test runs on: the torch reference and the compiled kernel."""
collect_ignore_glob = ["mpi/*"]  # scripts that tests start under mpiexec, not tests themselves


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="torch device for tests that honour it (default cpu)")
    parser.addoption("--dtype", default="float64", choices=("float32", "float64"), help="default float dtype")


def pytest_configure(config: pytest.Config) -> None:
    for marker, text in {
        "gpu": "needs a CUDA GPU (skipped without one)",
        "mpi": "spawns mpiexec with several ranks",
        "slurm": "needs the local Slurm that the fixtures start",
        "slow": "takes more than a few seconds",
    }.items():
        config.addinivalue_line("markers", f"{marker}: {text}")


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    return torch.device(request.config.getoption("--device"))


@pytest.fixture
def dtype(request: pytest.FixtureRequest) -> torch.dtype:
    return getattr(torch, request.config.getoption("--dtype"))


@pytest.fixture(autouse=True)
def _fixed_seed() -> None:
    """Every test starts from the same global RNG state (seed 0) and leaves others untouched."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


CARD = """\
[theory]
name = "phi4"
shape = {shape}
beta = {beta}
lam = {lam}

[sampler]
kind = "hmc"
chains = {chains}
trajectories = {trajectories}
thermalization = {thermalization}
tau = 1.0
steps = {steps}
seed = {seed}

[output]
dir = "{dir}"
checkpoint_every = {checkpoint_every}
"""


@pytest.fixture
def write_card(tmp_path: Path):
    """Write a run card into ``tmp_path``; keyword arguments override the defaults."""

    def write(name: str = "card.toml", extra: str = "", **kw: object) -> Path:
        values = dict(
            shape=[6, 6], beta=0.5, lam=0.5, chains=4, trajectories=40, thermalization=10,
            steps=8, seed=7, dir=str(tmp_path / "run"), checkpoint_every=10,
        )
        values.update(kw)
        path = tmp_path / name
        path.write_text(CARD.format(**values) + textwrap.dedent(extra))
        return path

    return write


def generator(seed: int = 0) -> torch.Generator:
    """A CPU generator with a fixed seed, for test data."""
    return torch.Generator().manual_seed(seed)


def hpcflow_cmd(*args: str) -> list[str]:
    """Command line that runs the CLI of this checkout with this interpreter."""
    return [sys.executable, "-m", "hpcflow.cli", *args]


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def mpi_env() -> dict[str, str]:
    """:func:`cli_env` for mpiexec as root on a small machine (more ranks than cores allowed)."""
    return dict(cli_env(), OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                OMPI_MCA_rmaps_base_oversubscribe="1", OMP_NUM_THREADS="1")


def kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL every process of ``proc``'s session (started with ``start_new_session=True``):
    mpiexec and its ranks, which run in process groups of their own."""
    pids = subprocess.run(["ps", "-o", "pid=", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # ranks exit (and drop their file locks) asynchronously
        if not subprocess.run(["ps", "-o", "pid=", "-s", str(proc.pid)], capture_output=True, text=True).stdout.strip():
            return
        time.sleep(0.05)
    raise TimeoutError(f"processes of session {proc.pid} survived SIGKILL")


def wait_for_checkpoint(checkpoints: Path, beyond: int, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    """Wait until ``checkpoints`` holds a checkpoint after update ``beyond`` while ``proc`` runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        steps = [int(p.name) for p in checkpoints.glob("[0-9]*")] if checkpoints.is_dir() else []
        if steps and max(steps) > beyond:
            return
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.01)
    raise TimeoutError(f"no checkpoint after {beyond} in {checkpoints}")


# the 6x6 phi^4 theory and the start of a two-coupling affine flow, shared by the tiny test cards
PHI4_6X6_AFFINE = """\
[theory]
name = "phi4"
shape = [6, 6]
beta = 0.5
lam = 0.5

[model]
coupling = "affine"
layers = 2
"""

TINY_FLOW_CARD = PHI4_6X6_AFFINE + """\
hidden = [4]
kernel = 3

[training]
steps = 20
batch = 16
lr = 0.01
seed = 1

[sampler]
kind = "nmcmc"
chains = {chains}
updates = {updates}
thermalization = 10
seed = {seed}
chunk = {chunk}
{sampler_extra}
[output]
dir = "{dir}"
checkpoint_every = {checkpoint_every}
{extra}"""


def tiny_flow_card(dir: object, chains: int = 4, updates: int = 200, seed: int = 2, chunk: int = 50,
                   sampler_extra: str = "", extra: str = "", checkpoint_every: int = 50) -> str:
    """A flow + NMCMC card on 6x6 that trains in seconds (``sampler_extra``: more [sampler] lines,
    ``extra``: more sections)."""
    return TINY_FLOW_CARD.format(dir=dir, chains=chains, updates=updates, seed=seed, chunk=chunk,
                                 sampler_extra=sampler_extra, extra=extra, checkpoint_every=checkpoint_every)


def h5_datasets(path: Path) -> dict[str, object]:
    """Every dataset of an HDF5 file by name (its attributes apart)."""
    import h5py

    out: dict[str, object] = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_datasets(a: Path, b: Path) -> None:
    """Two stores hold the same datasets, bit for bit."""
    import numpy as np

    da, db = h5_datasets(a), h5_datasets(b)
    assert da.keys() == db.keys()
    for key in da:
        np.testing.assert_array_equal(da[key], db[key], err_msg=key)
