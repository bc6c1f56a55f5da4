"""The zero-mode map of a flow: its exact Jacobian, inverse and symmetry, the maximum-likelihood fit,
and the calibration by flow HMC against the exact free-field distribution of M."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
import torch

from conftest import PHI4_6X6_AFFINE, hpcflow_cmd, mpi_env
from hpcflow.lattice.sublattice import SplitField
from hpcflow.models.flows import FlowSpec, ZeroModeMap, build_flow
from hpcflow.models.flows.zero_mode import sinh_arcsinh, sinh_arcsinh_inverse
from hpcflow.samplers.zero_mode_calibration import calibrate_zero_mode
from hpcflow.theories.phi4 import Phi4Action
from hpcflow.workflow.runcard import load_runcard
from hpcflow.workflow.train import train

PARAMS = (0.7, -0.6, -1.2)  # c, d, sigma: a strongly non-linear map


def _layer(params: tuple[float, float, float] = PARAMS) -> ZeroModeMap:
    layer = ZeroModeMap().double()
    with torch.no_grad():
        for p, value in zip(layer.parameters(), params):
            p.fill_(value)
    return layer


def _apply(layer: ZeroModeMap, phi: torch.Tensor, inverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    out, logdet = (layer.inverse if inverse else layer)(SplitField.split(phi))
    return out.join(), logdet


def test_a_fresh_layer_is_the_identity() -> None:
    phi = torch.randn(3, 4, 6, dtype=torch.float64)
    out, logdet = _apply(ZeroModeMap().double(), phi)
    assert torch.allclose(out, phi, atol=1e-15) and torch.allclose(logdet, torch.zeros(3, dtype=torch.float64), atol=1e-15)


def test_log_det_is_that_of_the_autograd_jacobian() -> None:
    layer = _layer()
    phi = 0.4 * torch.randn(2, 4, 4, dtype=torch.float64) + torch.tensor([0.3, -0.05], dtype=torch.float64)[:, None, None]
    _, logdet = _apply(layer, phi)
    for b in range(2):
        jac = torch.autograd.functional.jacobian(lambda x: _apply(layer, x[None])[0][0], phi[b]).reshape(16, 16)
        assert abs(torch.linalg.slogdet(jac)[1].item() - logdet[b].item()) < 1e-12


def test_inverse_undoes_the_map_and_the_map_is_odd_and_maps_the_mean_by_g() -> None:
    layer = _layer()
    phi = torch.randn(4, 6, 4, dtype=torch.float64) + 0.5
    out, logdet = _apply(layer, phi)
    back, logdet_back = _apply(layer, out, inverse=True)
    assert torch.allclose(back, phi, atol=1e-12) and torch.allclose(logdet_back, -logdet, atol=1e-12)
    assert torch.allclose(_apply(layer, -phi)[0], -out, atol=1e-12)
    g, _ = sinh_arcsinh(phi.mean((1, 2)), *(torch.tensor(p, dtype=torch.float64) for p in PARAMS))
    assert torch.allclose(out.mean((1, 2)), g, atol=1e-12)
    # the fluctuations about the mean are untouched
    assert torch.allclose(out - out.mean((1, 2), keepdim=True), phi - phi.mean((1, 2), keepdim=True), atol=1e-12)


def test_the_fit_recovers_the_map_that_made_the_samples() -> None:
    # the likelihood is flat along a ridge of (c, d, sigma): compare the maps, not the parameters
    generator = torch.Generator().manual_seed(3)
    variance = 0.02
    u = math.sqrt(variance) * torch.randn(40000, generator=generator, dtype=torch.float64)
    truth = tuple(torch.tensor(p, dtype=torch.float64) for p in PARAMS)
    m = sinh_arcsinh(u, *truth)[0]
    grid = math.sqrt(variance) * torch.linspace(-2.5, 2.5, 11, dtype=torch.float64)
    expected = sinh_arcsinh(grid, *truth)[0]
    layer = ZeroModeMap().double()
    layer.fit(variance, m)
    with torch.no_grad():
        fitted = sinh_arcsinh(grid, *layer.parameters())[0]
        recovered = sinh_arcsinh_inverse(m, *layer.parameters())
    assert ((fitted - expected).abs() / expected.abs().max()).max() < 0.02  # 0.003 measured; 0.26 with 2v
    assert abs(recovered.var().item() / variance - 1) < 4 * math.sqrt(2 / len(m))


def test_calibration_by_flow_hmc_gives_the_free_field_distribution_of_m() -> None:
    # lam = 0: S = sum_x [-beta sum_mu phi_{x+mu} phi_x + phi_x^2], so the zero mode has weight
    # exp(-V (1 - 2 beta) m^2) and <m^2> = 1 / (2 V (1 - 2 beta)): 2.5 / V at beta = 0.4
    shape, beta = (8, 8), 0.4
    volume = shape[0] * shape[1]
    exact = 1.0 / (2 * volume * (1 - 2 * beta))
    flow = build_flow(FlowSpec(coupling="affine", layers=2, hidden=(), kernel=3, rescaling=True, fourier=True,
                               zero_mode=True)).double()
    with torch.no_grad():
        flow.layers[3].log_scale.fill_(0.3)  # the rescaling: the mean enters the map with variance e^0.6 / V
    record = calibrate_zero_mode(flow, Phi4Action(beta=beta, lam=0.0), shape, seed=5, trajectories=300, rounds=2)
    assert record is not None and len(record["rounds"]) == 2
    z = torch.randn(20000, *shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    with torch.no_grad():
        phi, _ = flow(z)
    # the flow's own <m^2> against the exact one; the chain behind the fit had about 16 x 600 / 3
    # independent means, so the variance is known to sqrt(2 / 3200) = 2.5 %; 4 sigma
    assert abs((phi.mean((1, 2)) ** 2).mean().item() / exact - 1) < 0.10
    identity = build_flow(FlowSpec(coupling="affine", layers=2, hidden=(), kernel=3)).double()
    assert calibrate_zero_mode(identity, Phi4Action(beta=beta, lam=0.0), shape, seed=5, trajectories=10) is None


CARD = PHI4_6X6_AFFINE + """\
hidden = []
kernel = 3
fourier = true
equivariant = {equivariant}
zero_mode = true

[training]
steps = 10
batch = 16
lr = 0.01
seed = 1
calibration_trajectories = 20

[sampler]
kind = "fhmc"
chains = 2
trajectories = 10
thermalization = 0
tau = 1.0
steps = 6
seed = 2

[output]
dir = "{dir}"
"""


@pytest.mark.slow
def test_training_calibrates_the_zero_mode_and_a_non_equivariant_one_is_refused(tmp_path: Path) -> None:
    card = tmp_path / "zm.toml"
    card.write_text(CARD.format(equivariant="true", dir=tmp_path / "zm"))
    stored = torch.load(train(load_runcard(card), progress=False), weights_only=True)
    rounds = stored["meta"]["calibration"]["rounds"]
    assert len(rounds) == 3 and stored["state_dict"]["layers.3.log_scale"].item() == pytest.approx(rounds[-1]["log_scale"])
    assert stored["state_dict"]["layers.3.log_scale"].item() != 0.0
    card.write_text(CARD.format(equivariant="false", dir=tmp_path / "bad"))
    res = subprocess.run(hpcflow_cmd("--no-progress", "train", str(card)), env=mpi_env(), capture_output=True,
                         text=True, timeout=600)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "[model].zero_mode = true" in lines[0] and "equivariant" in lines[0]
    assert not (tmp_path / "bad").exists()
