"""The gauge-equivariant coupling flow through the stages: ``hpcflow train`` on a u1 card, NMCMC
with the trained flow, and with the von Mises plaquette map alone, reproducing the exact torus
plaquette, Wilson loop and topological susceptibility, the flow run on another volume, and the
card errors of the model kind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hpcflow.theories.gauge_exact import u1_plaquette_exact, u1_topological_susceptibility_exact, u1_wilson_loop_exact
from hpcflow.workflow.analyze import analyze
from hpcflow.workflow.runcard import RunCardError, load_runcard
from hpcflow.workflow.sample import sample
from hpcflow.workflow.train import train

BETA = 1.0
CARD = """\
[theory]
name = "{name}"
shape = [{l0}, {l1}]
beta = {beta}

[model]
kind = "gauge_coupling"
layers = 8
hidden = [8]
kernel = 3
bins = 6

[training]
steps = 80
batch = 32
lr = 0.01
seed = 4
log_every = 20
checkpoint_every = 40

[sampler]
kind = "nmcmc"
chains = 8
updates = 600
thermalization = 20
seed = 5
chunk = 40

[output]
dir = "{dir}"
"""


def _card(tmp_path: Path, name: str = "u1", shape: tuple[int, int] = (8, 8), run: str = "run") -> Path:
    path = tmp_path / f"{run}.toml"
    path.write_text(CARD.format(name=name, l0=shape[0], l1=shape[1], beta=BETA, dir=tmp_path / run))
    return path


def _summary(run_dir: Path) -> dict:
    return json.loads((analyze(run_dir) / "analysis.json").read_text())


def _check_exact(summary: dict, beta: float, volume: int) -> None:
    obs = summary["observables"]
    checks = {"plaquette": u1_plaquette_exact(beta, volume), "wilson_2x2": u1_wilson_loop_exact(beta, volume, 4),
              "topological_susceptibility": u1_topological_susceptibility_exact(beta, volume)}
    for name, exact in checks.items():
        assert abs(obs[name]["value"] - exact) < 4 * obs[name]["error"], (name, obs[name], exact)


def test_u1_nmcmc_with_the_trained_coupling_flow_is_exact_and_moves_to_another_volume(tmp_path: Path) -> None:
    card = load_runcard(_card(tmp_path))
    flow_pt = train(card, progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "model" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] < log[0]["loss"]
    sample(card, progress=False)
    summary = _summary(tmp_path / "run")
    _check_exact(summary, BETA, 64)
    assert summary["acceptance"] > 0.3
    # the weights do not depend on the volume: the flow trained on 8x8 samples 12x8
    transfer = tmp_path / "transfer.toml"
    transfer.write_text(f"""[theory]\nname = "u1"\nshape = [12, 8]\nbeta = {BETA}\n\n[sampler]\nkind = "nmcmc"\n"""
                        f"""chains = 8\nupdates = 400\nthermalization = 20\nseed = 6\nmodel = "{flow_pt}"\n\n"""
                        f"""[output]\ndir = "{tmp_path / 'transfer'}"\n""")
    sample(load_runcard(transfer), progress=False)
    moved = _summary(tmp_path / "transfer")
    plaq, exact = moved["observables"]["plaquette"], u1_plaquette_exact(BETA, 96)
    assert abs(plaq["value"] - exact) < 4 * plaq["error"] and moved["acceptance"] > 0.2, (plaq, exact, moved["acceptance"])


def test_u1_nmcmc_with_the_plaquette_map_alone_is_exact_at_weak_coupling(tmp_path: Path) -> None:
    """beta = 4 on 12x8 (not a multiple of 4 along axis 0: the map has no stripes): no training,
    acceptance near the ESS I0(beta)^2 / I0(2 beta) = 0.27 of the one constrained plaquette."""
    text = _card(tmp_path, shape=(12, 8)).read_text().replace("beta = 1.0", "beta = 4.0")
    text = text.replace("layers = 8", "layers = 0\nplaquette_map = true").replace("steps = 80", "steps = 0")
    path = tmp_path / "map.toml"
    path.write_text(text)
    card = load_runcard(path)
    model = torch.load(train(card, progress=False), weights_only=True)
    assert model["state_dict"]["layers.0.beta"].item() == 4.0 and model["meta"]["steps"] == 0
    sample(card, progress=False)
    summary = _summary(tmp_path / "run")
    _check_exact(summary, 4.0, 96)
    assert summary["acceptance"] > 0.15 and summary["ess"] > 0.15, (summary["acceptance"], summary["ess"])


@pytest.mark.parametrize("name, shape, change, message", [
    ("su2", (8, 8), {}, "[model].kind = 'gauge_coupling': the gauge-equivariant coupling flow is for u1, not su2; "
                        "use kind = \"gradflow\""),
    ("u1", (8, 6), {}, "[theory].shape = [8, 6]: the plaquette stripes of the gauge-equivariant coupling flow need "
                       "extents that are multiples of 4"),
    ("u1", (8, 8), {"kernel = 3": "kernel = 4"}, "[model].kernel = 4: must be odd (1, 3, 5, ...)"),
    ("u1", (8, 8), {"layers = 8": "layers = 0\nplaquette_map = true"},
     "[training].steps = 80: the plaquette map alone (layers = 0) has no parameters to train; set steps = 0"),
    ("u1", (8, 8), {"layers = 8": "layers = 0"}, "[model].layers = 0: a flow without layers needs plaquette_map = true"),
])
def test_bad_gauge_coupling_cards_get_one_line_errors(tmp_path: Path, name: str, shape: tuple[int, int],
                                                      change: dict[str, str], message: str) -> None:
    path = _card(tmp_path, name, shape)
    text = path.read_text()
    for old, new in change.items():
        text = text.replace(old, new)
    path.write_text(text)
    with pytest.raises(RunCardError) as info:
        load_runcard(path)
    assert message in str(info.value)
