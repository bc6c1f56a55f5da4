"""hpcflow export and hpcflow import: a stored SU(3) ensemble out to ILDG, NERSC and openQCD files
and back into a new store, bitwise; a solve on the imported configuration takes the iterations it
takes on the original; bad input is one line and writes nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import cli_env, hpcflow_cmd, mpi_env
from hpcflow.io.formats import GaugeFileError
from hpcflow.theories.gauge import WilsonGaugeAction
from hpcflow.workflow.interchange import InterchangeError, export_run, import_files

pytestmark = pytest.mark.slow

SU3 = """\
[theory]
name = "su3"
shape = [4, 4, 4, 4]
beta = 5.8
start = "hot"

[sampler]
kind = "hmc"
chains = 2
trajectories = 3
thermalization = 2
tau = 0.5
steps = 10
seed = 5

[output]
dir = "{dir}"
"""

SOLVE = """\
[solve]
configs = "{configs}"
chain = {chain}
step = {step}
masses = [0.1]
csw = 1.0
solver = "fgmres"
tol = 1e-8
maxiter = 500
sources = 1
seed = 2
dir = "{dir}"
"""


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(hpcflow_cmd("--no-progress", *args), env=cli_env(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("su3")
    (tmp / "su3.toml").write_text(SU3.format(dir=tmp / "su3"))
    res = _cli("sample", str(tmp / "su3.toml"))
    assert res.returncode == 0, res.stderr
    return tmp / "su3"


def _solve(tmp_path: Path, name: str, configs: Path, chain: int, step: int) -> dict:
    (tmp_path / f"{name}.toml").write_text(SOLVE.format(configs=configs, chain=chain, step=step, dir=tmp_path / name))
    res = _cli("solve", str(tmp_path / f"{name}.toml"))
    assert res.returncode == 0, res.stderr
    return json.loads((tmp_path / name / "solve.json").read_text())["results"][0]


def test_export_then_import_on_the_command_line_solves_alike(run_dir: Path, tmp_path: Path) -> None:
    res = _cli("export", str(run_dir), "--format", "ildg", "--steps", "0", "-1", "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    files = sorted(tmp_path / "out" / e["file"] for e in manifest["files"])
    assert len(files) == 4 and {(e["chain"], e["step"]) for e in manifest["files"]} == {(0, 0), (0, 2), (1, 0), (1, 2)}
    res = _cli("import", *map(str, files), "--to", str(tmp_path / "imported.h5"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("(ildg, checksum") == 4
    row = files.index(tmp_path / "out" / "su3_c1_s00002.lime")
    a = _solve(tmp_path, "original", run_dir / "configs.h5", 1, 2)
    b = _solve(tmp_path, "imported", tmp_path / "imported.h5", 0, row)
    assert a["iterations"] == b["iterations"] and a["converged"] and a["final_residual"] == b["final_residual"]


@pytest.mark.parametrize("fmt", ["ildg", "nersc", "openqcd"])
def test_export_then_import_is_bitwise(fmt: str, run_dir: Path, tmp_path: Path) -> None:
    files = export_run(run_dir, fmt, steps=[0, -1], out=tmp_path / "out")
    row = files.index(tmp_path / "out" / f"su3_c1_s00002.{files[0].suffix[1:]}")
    import_files(files, tmp_path / "imported.h5")
    with h5py.File(run_dir / "configs.h5") as f:
        original = f["links"][1, 2]
    with h5py.File(tmp_path / "imported.h5") as f:
        imported = f["links"][0, row]
        records = json.loads(f.attrs["imported"])
        assert f.attrs["theory"] == "su3" and {r["format"] for r in records} == {fmt}
        assert [r["source"] for r in records] == [str(p.resolve()) for p in files]
        plaquettes = f["observables/plaquette"][0]
    assert np.array_equal(imported, original)
    assert plaquettes[row] == pytest.approx(WilsonGaugeAction.mean_plaquette(torch.from_numpy(original)[None]).item(), abs=1e-14)


def test_bad_interchange_input_is_one_line_and_writes_nothing(run_dir: Path, tmp_path: Path) -> None:
    (good,) = export_run(run_dir, "nersc", steps=[-1], chains=[0], out=tmp_path / "out")
    bad = tmp_path / "bad.nersc"
    data = bytearray(good.read_bytes())
    data[-1000] ^= 0x01
    bad.write_bytes(bytes(data))
    res = _cli("import", str(good), str(bad), "--to", str(tmp_path / "new.h5"))  # the command: status 2, one line
    assert res.returncode == 2 and f"{bad}: checksum mismatch" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    u1 = tmp_path / "u1"
    u1.mkdir()
    (u1 / "u1.toml").write_text(SU3.format(dir=u1 / "run").replace('name = "su3"', 'name = "u1"')
                                .replace("[4, 4, 4, 4]", "[4, 4]").replace("beta = 5.8", "beta = 2.0"))
    assert _cli("sample", str(u1 / "u1.toml")).returncode == 0
    cases = [
        (lambda: import_files([tmp_path / "missing.lime"], tmp_path / "new.h5"), "missing.lime: no such file"),
        (lambda: import_files([good], run_dir / "configs.h5"), "exists; nothing already written is replaced"),
        (lambda: export_run(u1 / "run", "ildg"), "a 'u1' ensemble"),
        (lambda: export_run(run_dir, "ildg", steps=[7]), "--steps 7: the store holds steps 0..2"),
        (lambda: export_run(run_dir, "openqcd", precision=32), "openQCD files are double precision"),
    ]
    for call, why in cases:
        with pytest.raises((InterchangeError, GaugeFileError)) as err:
            call()
        assert why in str(err.value) and "\n" not in str(err.value), err.value
    assert not (tmp_path / "new.h5").exists() and not list(tmp_path.glob(".new.h5*"))
    assert not (u1 / "run" / "export").exists()


@pytest.mark.mpi
def test_a_parallel_import_reads_time_blocks_and_equals_the_serial_one(run_dir: Path, tmp_path: Path) -> None:
    """Three ranks read the 4 time slices of each ILDG and NERSC file in blocks 2, 1, 1, combine
    the checksums and gather the slabs: the store of one rank, bitwise. A corrupted file stops
    every rank with the checksum error, nothing written."""
    files = []
    for fmt in ("ildg", "nersc"):
        assert _cli("export", str(run_dir), "--format", fmt, "--steps", "-1", "--out", str(tmp_path / fmt)).returncode == 0
        files += sorted((tmp_path / fmt).glob("su3_*"))
    assert _cli("import", *map(str, files), "--to", str(tmp_path / "serial.h5")).returncode == 0
    parallel = ["mpiexec", "-n", "3", *hpcflow_cmd("--no-progress", "import", *map(str, files), "--to", str(tmp_path / "par.h5"))]
    res = subprocess.run(parallel, env=mpi_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("store:") == 1  # rank 0 reports
    with h5py.File(tmp_path / "serial.h5") as a, h5py.File(tmp_path / "par.h5") as b:
        assert np.array_equal(a["links"][()], b["links"][()])
        assert json.loads(a.attrs["imported"]) == json.loads(b.attrs["imported"])
    bad = tmp_path / "bad.lime"
    data = bytearray(files[0].read_bytes())
    data[len(data) // 2] ^= 0x01  # inside the time slices of rank 1
    bad.write_bytes(bytes(data))
    parallel[-3:] = [str(bad), "--to", str(tmp_path / "bad.h5")]
    res = subprocess.run(parallel, env=mpi_env(), capture_output=True, text=True, timeout=600)
    assert res.returncode == 2 and f"{bad}: SciDAC checksum mismatch" in res.stderr, res.stderr
    assert not (tmp_path / "bad.h5").exists()
