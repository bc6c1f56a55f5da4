"""Gradient-flow maps through the stages: ``hpcflow train`` on gauge cards, NMCMC of U(1) and
SU(2) with the trained (or Luscher's) map reproducing the exact torus plaquettes, resume of the
training, and the card errors of gauge models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pytest
import torch

from hpcflow.theories.gauge_exact import (
    su2_plaquette_exact,
    u1_plaquette_exact,
    u1_topological_susceptibility_exact,
    u1_wilson_loop_exact,
)
from hpcflow.workflow.analyze import analyze
from hpcflow.workflow.model_io import ModelError, read_flow
from hpcflow.workflow.runcard import RunCardError, load_runcard
from hpcflow.workflow.sample import sample
from hpcflow.workflow.train import train

CARD = """\
[theory]
name = "{name}"
shape = [{l0}, {l1}]
beta = {beta}

[model]
kind = "gradflow"
loops = {loops}
coefficients = "{coefficients}"
steps = 8
init = "{init}"

[training]
steps = {train_steps}
batch = 16
lr = 0.01
seed = 4
dtype = "float64"
log_every = 5
checkpoint_every = 5

[sampler]
kind = "nmcmc"
chains = 8
updates = {updates}
thermalization = 20
seed = 5
chunk = 40

[output]
dir = "{dir}"
"""

U1_LOOPS = '["1x1", "1x2", "2x1", "1x1_twice", "fig8_0", "fig8_1"]'


def _card(tmp_path: Path, name: str = "u1", shape: tuple[int, int] = (6, 6), beta: float = 2.0, loops: str = U1_LOOPS,
          coefficients: str = "affine", init: str = "luscher_nlo", train_steps: int = 10, updates: int = 800,
          run: str = "run") -> Path:
    path = tmp_path / f"{run}.toml"
    path.write_text(CARD.format(name=name, l0=shape[0], l1=shape[1], beta=beta, loops=loops, coefficients=coefficients,
                                init=init, train_steps=train_steps, updates=updates, dir=tmp_path / run))
    return path


def _plaquette(run_dir: Path) -> dict:
    return json.loads((analyze(run_dir) / "analysis.json").read_text())


def test_u1_nmcmc_with_a_trained_map_reproduces_the_exact_plaquette(tmp_path: Path) -> None:
    card = load_runcard(_card(tmp_path))
    flow_pt = train(card, progress=False)
    store = sample(card, progress=False)
    summary = _plaquette(tmp_path / "run")
    plaq = summary["observables"]["plaquette"]
    exact = u1_plaquette_exact(2.0, 36)
    assert abs(plaq["value"] - exact) < 4 * plaq["error"], (plaq, exact)
    chi, chi_exact = summary["observables"]["topological_susceptibility"], u1_topological_susceptibility_exact(2.0, 36)
    assert abs(chi["value"] - chi_exact) < 4 * chi["error"], (chi, chi_exact)
    for name, area in (("wilson_1x2", 2), ("wilson_2x2", 4)):
        loop, loop_exact = summary["observables"][name], u1_wilson_loop_exact(2.0, 36, area)
        assert abs(loop["value"] - loop_exact) < 4 * loop["error"], (name, loop, loop_exact)
    assert summary["acceptance"] > 0.3
    with h5py.File(store) as f:
        assert f["links"].shape == (8, 800, 2, 6, 6) and "nmcmc/proposal_Q" in f
    model, meta = read_flow(flow_pt, card)
    assert meta["steps"] == 10 and model.spec.group == "u1"
    # the coefficients do not depend on the volume: the map trained on 6x6 samples 8x6
    transfer = tmp_path / "transfer.toml"
    transfer.write_text(f"""[theory]\nname = "u1"\nshape = [8, 6]\nbeta = 2.0\n\n[sampler]\nkind = "nmcmc"\n"""
                        f"""chains = 8\nupdates = 400\nthermalization = 20\nseed = 6\nmodel = "{flow_pt}"\n\n"""
                        f"""[output]\ndir = "{tmp_path / 'transfer'}"\n""")
    sample(load_runcard(transfer), progress=False)
    moved = _plaquette(tmp_path / "transfer")
    plaq, exact = moved["observables"]["plaquette"], u1_plaquette_exact(2.0, 48)
    assert abs(plaq["value"] - exact) < 4 * plaq["error"] and moved["acceptance"] > 0.2, (plaq, exact, moved["acceptance"])


def test_su2_nmcmc_with_luscher_lo_map_reproduces_the_exact_plaquette(tmp_path: Path) -> None:
    """Luscher's map, untrained ([training].steps = 0), as an NMCMC proposal for SU(2) on 4x4."""
    card = load_runcard(_card(tmp_path, name="su2", shape=(4, 4), beta=1.5, loops='["1x1"]', init="luscher_lo",
                              train_steps=0, updates=600))
    train(card, progress=False)
    sample(card, progress=False)
    summary = _plaquette(tmp_path / "run")
    plaq, exact = summary["observables"]["plaquette"], su2_plaquette_exact(1.5, 16)
    assert abs(plaq["value"] - exact) < 4 * plaq["error"], (plaq, exact)
    assert set(summary["observables"]) >= {"wilson_1x2", "wilson_2x2"}
    assert summary["acceptance"] > 0.3
    assert 0 < summary["log_q_integration_error"] < 0.05


def test_nmcmc_refuses_a_map_whose_log_q_the_integrator_does_not_resolve(tmp_path: Path) -> None:
    """Luscher's LO coefficient at beta = 60 (-10 on the plaquette) with the card's 8 RK3 steps:
    log q moves by far more than the tolerance when the steps are doubled."""
    card = load_runcard(_card(tmp_path, name="su2", shape=(4, 4), beta=60.0, loops='["1x1"]', init="luscher_lo",
                              train_steps=0, updates=10))
    train(card, progress=False)
    with pytest.raises(ModelError, match=r"when its 8 integration steps are doubled \(tolerance 0.05\)"):
        sample(card, progress=False)


def test_training_logs_the_integration_error_and_warns_past_the_nmcmc_tolerance(tmp_path: Path, caplog) -> None:
    """The same unresolved map, trained for 10 steps (two logged): the log carries log_q_error
    above the tolerance at both and the training warns once."""
    card = load_runcard(_card(tmp_path, name="su2", shape=(4, 4), beta=60.0, loops='["1x1"]', init="luscher_lo",
                              train_steps=10))
    with caplog.at_level("WARNING", logger="hpcflow.workflow.train"):
        train(card, progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "model" / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and all(e["log_q_error"] > 0.05 for e in log)
    assert sum("exploiting the integration error" in r.getMessage() for r in caplog.records) == 1


def test_training_lowers_the_loss_from_luscher_and_resumes(tmp_path: Path) -> None:
    """Spline coefficients (model B) from Luscher's LO map: the reverse-KL loss falls; a training
    resumed from its step-5 checkpoint ends with the parameters of the uninterrupted one."""
    card = load_runcard(_card(tmp_path, name="su2", shape=(4, 4), beta=2.5, loops='["1x1", "1x2", "2x1"]',
                              coefficients="spline", init="luscher_lo", train_steps=10))
    flow_pt = train(card, progress=False)
    model = tmp_path / "run" / "model"
    log = [json.loads(line) for line in (model / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    assert all(0 < e["log_q_error"] < 0.05 for e in log)  # resolved by the integrator
    reference = torch.load(flow_pt, weights_only=True)["state_dict"]
    assert reference["coefficients.values"].shape == (3, 10)
    flow_pt.unlink()
    shutil.rmtree(model / "checkpoints" / f"{10:010d}")
    train(card, progress=False)
    resumed = torch.load(flow_pt, weights_only=True)["state_dict"]
    assert reference.keys() == resumed.keys() and all(torch.equal(reference[k], resumed[k]) for k in reference)


def test_a_map_of_another_group_is_refused(tmp_path: Path) -> None:
    card = load_runcard(_card(tmp_path, name="su2", shape=(4, 4), loops='["1x1"]', init="luscher_lo", train_steps=0))
    flow_pt = train(card, progress=False)
    other = load_runcard(_card(tmp_path, name="su3", shape=(4, 4), loops='["1x1"]', init="luscher_lo", run="other"))
    with pytest.raises(ModelError, match="group: 'su2' there, 'su3' in the card"):
        read_flow(flow_pt, other)


@pytest.mark.parametrize("change, message", [
    ('loops = ["1x1", "5x5"]', "[model].loops: loops ['5x5']: unknown; allowed: ['1x1', "),
    ('loops = "hexagons"', "[model].loops: loops = 'hexagons': unknown family; allowed: ['luscher_nlo', 'perimeter10', "),
    ('loops = ["1x1", "1x1@spin2"]', "[model].loops: loops ['1x1@spin2']: unknown representation; allowed: ['sym', 'anti', 'adj']"),
    ('loops = ["1x1", "1x1*1x1_0@adj"]', "[model].loops: loops ['1x1*1x1_0@adj']: a product of traces is taken in the fundamental"),
    ('init = "luscher_nlo"', "[model].init = 'luscher_nlo': Luscher's NLO map needs the loops ['1x1*1x1_0', '1x1*1x1_1', "),
    ('coefficients = "cubic"', "[model].coefficients = 'cubic': expected 'affine' or 'spline'"),
])
def test_bad_gauge_model_cards_get_one_line_errors(tmp_path: Path, change: str, message: str) -> None:
    text = _card(tmp_path, name="su3", shape=(8, 8), loops='["1x1"]', init="luscher_lo").read_text()
    key = change.split(" = ")[0]
    lines = [change if line.startswith(f"{key} = ") else line for line in text.splitlines()]
    bad = tmp_path / "bad.toml"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(RunCardError) as info:
        load_runcard(bad)
    assert message in str(info.value)


def test_gauge_model_kind_and_loops_fit_the_theory(tmp_path: Path) -> None:
    often = _card(tmp_path, name="su2", shape=(2, 2), loops='["1x1", "2x1", "2x3"]', init="zero").read_text()
    (tmp_path / "often.toml").write_text(often)
    with pytest.raises(RunCardError, match=r"\['2x3'\] run over a link more than twice on the 2x2 lattice"):
        load_runcard(tmp_path / "often.toml")
    wrapped = _card(tmp_path, name="su3", shape=(2, 4), loops='["1x1", "2x1@adj"]', init="zero", run="wrapped")
    with pytest.raises(RunCardError, match=r"\['2x1@adj'\] run over a link twice on the 2x4 lattice; a loop in "
                                           "another representation and each factor of a product"):
        load_runcard(wrapped)
    u1_products = _card(tmp_path, loops='["1x1", "1x1*1x1bar_0"]', init="zero", run="u1_products")
    with pytest.raises(RunCardError, match=r"\['1x1\*1x1bar_0'\]: in u1 a product of traces is the loop of the summed"):
        load_runcard(u1_products)
    u1_reps = _card(tmp_path, loops='["1x1", "1x1@adj"]', init="zero", run="u1_reps")
    with pytest.raises(RunCardError, match=r"\['1x1@adj'\]: u1 has no representations beyond the charge"):
        load_runcard(u1_reps)
    flow_card = _card(tmp_path, init="zero").read_text().replace('kind = "gradflow"', 'kind = "flow"')
    (tmp_path / "flow.toml").write_text(flow_card)
    with pytest.raises(RunCardError, match="coupling flows are for phi4; for u1 use kind = \"gradflow\""):
        load_runcard(tmp_path / "flow.toml")
