"""Gauge ensembles through the sampling stage: U(1) plaquette against the exact torus result,
SU(3) links stored and kept in the group."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import cli_env, hpcflow_cmd
from hpcflow.theories.gauge_exact import u1_plaquette_exact
from hpcflow.workflow.analyze import analyze
from hpcflow.workflow.runcard import RunCardError, load_runcard
from hpcflow.workflow.sample import sample

U1 = """\
[theory]
name = "u1"
shape = [8, 8]
beta = 2.0
start = "hot"

[sampler]
kind = "hmc"
chains = 16
trajectories = 300
thermalization = 50
tau = 1.0
steps = 8
seed = 3

[output]
dir = "{dir}"
"""

SU3 = """\
[theory]
name = "su3"
shape = [4, 2, 2, 2]
beta = 5.8
start = "hot"

[sampler]
kind = "hmc"
chains = 2
trajectories = 10
thermalization = 2
tau = 0.5
steps = 10
seed = 1

[output]
dir = "{dir}"
checkpoint_every = 4
"""


@pytest.mark.slow
def test_u1_ensemble_matches_the_exact_plaquette(tmp_path: Path) -> None:
    card_path = tmp_path / "u1.toml"
    card_path.write_text(U1.format(dir=tmp_path / "run"))
    store = sample(load_runcard(card_path), progress=False)
    summary = json.loads((analyze(tmp_path / "run") / "analysis.json").read_text())
    plaq = summary["observables"]["plaquette"]
    assert abs(plaq["value"] - u1_plaquette_exact(2.0, 64)) < 4 * plaq["error"]
    with h5py.File(store) as f:
        assert f["links"].shape == (16, 300, 2, 8, 8) and f.attrs["theory"] == "u1"
        q = f["observables/Q"][()]
    np.testing.assert_allclose(q, np.round(q), atol=1e-9)
    assert "topological_susceptibility" in summary["observables"]


def test_su3_links_are_stored_and_stay_in_the_group(tmp_path: Path) -> None:
    card_path = tmp_path / "su3.toml"
    card_path.write_text(SU3.format(dir=tmp_path / "run"))
    store = sample(load_runcard(card_path), progress=False)
    with h5py.File(store) as f:
        links = torch.from_numpy(f["links"][()])
        plaq = f["observables/plaquette"][()]
        acceptance = f.attrs["acceptance"]
    assert links.shape == (2, 10, 4, 4, 2, 2, 2, 3, 3) and links.dtype == torch.complex128
    eye = torch.eye(3, dtype=links.dtype)
    torch.testing.assert_close(links @ links.conj().transpose(-1, -2), eye.expand_as(links), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(links), torch.ones(links.shape[:-2], dtype=links.dtype), rtol=0, atol=1e-12)
    assert np.all((plaq > 0) & (plaq < 1)) and acceptance > 0.3


def test_gauge_cards_are_validated(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(U1.format(dir=tmp_path / "run").replace("shape = [8, 8]", "shape = [8, 8, 8]")
                   .replace('kind = "hmc"', 'kind = "fhmc"'))
    with pytest.raises(RunCardError) as info:
        load_runcard(bad)
    text = str(info.value)
    assert "the U(1) theory is two-dimensional" in text and "flow HMC is implemented for phi4" in text
    for card in ("u1_32x32_b3.toml", "su3_16x8x8x8_b5.8.toml"):
        assert load_runcard(Path(__file__).resolve().parent.parent / "jobs" / "cards" / card).theory["beta"] > 0


def test_solve_stage_on_a_stored_configuration(tmp_path: Path) -> None:
    card_path = tmp_path / "su3.toml"
    card_path.write_text(SU3.format(dir=tmp_path / "run"))
    store = sample(load_runcard(card_path), progress=False)
    solve_card = tmp_path / "solve.toml"
    solve_card.write_text(f"""\
[solve]
configs = "{store}"
masses = [0.2, 0.05]
csw = 1.0
solver = "fgmres"
tol = 1e-9
maxiter = 500
sources = 2
seed = 4
dir = "{tmp_path / 'solve'}"
""")
    res = subprocess.run(hpcflow_cmd("solve", str(solve_card)), env=cli_env(), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "solve" / "solve.json").read_text())
    results = summary["results"]
    assert len(results) == 4 and all(r["converged"] and r["final_residual"] < 1e-9 for r in results)
    heavy = np.mean([r["iterations"] for r in results if r["mass"] == 0.2])
    light = np.mean([r["iterations"] for r in results if r["mass"] == 0.05])
    assert light > heavy  # lighter quarks cost more iterations
    assert (tmp_path / "solve" / "solve.png").stat().st_size > 10_000
    bad = tmp_path / "bad.toml"
    bad.write_text(solve_card.read_text().replace('solver = "fgmres"', 'solver = "gmres"').replace("tol = 1e-9\n", ""))
    res = subprocess.run(hpcflow_cmd("solve", str(bad)), env=cli_env(), capture_output=True, text=True)
    assert res.returncode == 2
    assert "[solve].solver = 'gmres'" in res.stderr and 'missing required key "tol"' in res.stderr


def test_su3_run_interrupted_by_sigterm_resumes_to_identical_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gauge sampler state (links, action, tuned steps, RNG) round-trips through checkpoints."""
    import os
    import signal

    from hpcflow.samplers.gauge_hmc import GaugeHMC
    from hpcflow.workflow.signals import Interrupted

    ref_card = tmp_path / "ref.toml"
    ref_card.write_text(SU3.format(dir=tmp_path / "reference"))
    reference = sample(load_runcard(ref_card), progress=False)
    card_path = tmp_path / "su3.toml"
    card_path.write_text(SU3.format(dir=tmp_path / "reference"))  # the same card, run again in a fresh dir
    (tmp_path / "reference").rename(tmp_path / "done")
    calls = {"n": 0}
    original = GaugeHMC.step

    def step_then_signal(self: GaugeHMC, state):  # noqa: ANN001, ANN202
        calls["n"] += 1
        if calls["n"] == 6:
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, state)

    monkeypatch.setattr(GaugeHMC, "step", step_then_signal)
    with pytest.raises(Interrupted):
        sample(load_runcard(card_path), progress=False)
    monkeypatch.setattr(GaugeHMC, "step", original)
    resumed = sample(load_runcard(card_path), progress=False)
    with h5py.File(tmp_path / "done" / "configs.h5") as a, h5py.File(resumed) as b:
        for name in ("links", "observables/plaquette", "hmc/dH", "hmc/accepted"):
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)
    assert reference.name == "configs.h5"
