"""Devices: the choice of ``[parallel].device``, every kernel kept on the device of its inputs
(checked on PyTorch's ``meta`` device, where any CPU tensor made inside a kernel is an error, as
it would be on a GPU), and, where CUDA exists, the samplers, the trainer and the solver on the GPU."""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest
import torch

from conftest import generator, hpcflow_cmd, mpi_env, tiny_flow_card
from hpcflow.analysis.gamma import gamma_method
from hpcflow.dirac import WilsonDirac
from hpcflow.lattice.rng import ChainRNG
from hpcflow.models.flows import FlowSpec, build_flow
from hpcflow.parallel.device import select_device
from hpcflow.samplers.gauge_hmc import GaugeHMC, wilson_force
from hpcflow.samplers.hmc import HMC
from hpcflow.samplers.integrators import Leapfrog, Omelyan
from hpcflow.theories.gauge import U1Action, WilsonGaugeAction, identity_links, random_su_n, topological_charge
from hpcflow.theories.phi4 import Phi4Action, free_propagator, timeslice_correlator
from hpcflow.workflow.runcard import RunCardError, load_runcard

META = torch.device("meta")
CUDA = torch.cuda.is_available()
requires_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA device (torch.cuda.is_available() is False)")


def test_device_choice() -> None:
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto", local_rank=3) == (torch.device("cuda", 3 % torch.cuda.device_count()) if CUDA else torch.device("cpu"))
    with pytest.raises(ValueError, match="expected one of 'auto', 'cpu', 'cuda'"):
        select_device("gpu")


@pytest.mark.skipif(CUDA, reason="this machine has CUDA: the refusal is for machines without it")
def test_a_card_that_asks_for_cuda_where_there_is_none_is_refused(write_card) -> None:
    card = load_runcard(write_card(extra='\n[parallel]\ndevice = "cuda"\n'))
    with pytest.raises(RunCardError, match=r"\[parallel\].device = 'cuda': no CUDA device visible here"):
        card.device()
    res = subprocess.run(hpcflow_cmd("sample", str(card.source)), env=mpi_env(), capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "no CUDA device visible here" in res.stderr and not card.run_dir.exists()


# ---- kernels on the meta device: shapes and devices only, no values -------------------------

def test_phi4_kernels_stay_on_the_device() -> None:
    phi = torch.empty(3, 8, 6, dtype=torch.float64, device=META)
    action = Phi4Action(0.5, 0.5)
    for integrator in (Leapfrog(), Omelyan()):
        out, pi = integrator(phi, phi, action.force, 0.1, 2)
        assert out.device == META and pi.device == META
    assert action(phi).device == META and timeslice_correlator(phi).device == META


def test_gauge_kernels_stay_on_the_device() -> None:
    theta = torch.empty(2, 2, 4, 4, dtype=torch.float64, device=META)
    assert U1Action(1.0).force(theta).device == META and topological_charge(theta).device == META
    u = torch.empty(2, 4, 3, 3, 3, 3, 3, 3, dtype=torch.complex128, device=META)
    action = WilsonGaugeAction(5.0)
    assert wilson_force(action, u).device == META and WilsonGaugeAction.mean_plaquette(u).device == META
    hmc = GaugeHMC(action, tau=0.2, n_steps=2, rng=ChainRNG(0, range(2)))
    u_new, p_new = hmc.trajectory(u, torch.empty_like(u))
    assert u_new.device == META and hmc.kinetic(p_new).device == META
    assert identity_links(2, (4, 4), 3, device=META).device == META


@pytest.mark.parametrize("csw", [0.0, 1.0])
def test_wilson_clover_stays_on_the_device(csw: float) -> None:
    links = torch.empty(4, 4, 2, 2, 4, 3, 3, dtype=torch.complex64, device=META)
    op = WilsonDirac(links, mass=-0.3, csw=csw, antiperiodic_time=True)
    psi = torch.empty(2, 4, 2, 2, 4, 4, 3, dtype=torch.complex64, device=META)
    assert op(psi).device == META and op.dagger(psi).device == META


@pytest.mark.parametrize("coupling, fourier", [("affine", False), ("spline", True)])
def test_flows_stay_on_the_device(coupling: str, fourier: bool) -> None:
    flow = build_flow(FlowSpec(coupling=coupling, layers=2, hidden=(4,), kernel=3, rescaling=True, fourier=fourier))
    flow = flow.double().to(META)
    phi, logdet = flow(torch.empty(3, 8, 8, dtype=torch.float64, device=META))
    assert phi.device == META and logdet.device == META and flow.prior.log_prob(phi).device == META


# ---- on a GPU ----------------------------------------------------------------------------------

@pytest.mark.gpu
@requires_cuda
def test_cuda_streams_are_reproducible_and_differ_from_the_cpu_streams() -> None:
    a, b = ChainRNG(5, range(4), "cuda"), ChainRNG(5, range(4), "cuda")
    x, y = a.normal((8, 8)), b.normal((8, 8))
    assert x.is_cuda and torch.equal(x, y)
    assert not torch.equal(x.cpu(), ChainRNG(5, range(4)).normal((8, 8)))
    state = a.get_state()
    first = a.uniform((3,))
    a.set_state(state)
    assert torch.equal(a.uniform((3,)), first)
    with pytest.raises(ValueError, match="another device type"):
        ChainRNG(5, range(4)).set_state(state)


@pytest.mark.gpu
@requires_cuda
def test_hmc_on_the_gpu_reproduces_the_free_propagator() -> None:
    """Free theory beta = 0.2 on 8x8: <phi_x phi_0> within 4 sigma of the exact propagator
    (the CPU tests check the same on the CPU: equal within errors, not bitwise)."""
    action = Phi4Action(beta=0.2, lam=0.0)
    rng = ChainRNG(3, range(64), "cuda")
    hmc = HMC(action, Omelyan(), tau=1.0, n_steps=5, rng=rng)
    state = hmc.init(rng.normal((8, 8)))
    fields = []
    for t in range(300):
        state, _ = hmc.step(state)
        if t >= 50:
            fields.append(state.phi)
    phi = torch.stack(fields, 1)
    exact = free_propagator((8, 8), 0.2)
    for x in [(0, 0), (1, 0), (2, 1)]:
        two_point = (torch.roll(phi, (-x[0], -x[1]), (2, 3)) * phi).mean((2, 3)).cpu().numpy()
        r = gamma_method(two_point)
        assert abs(r.value - exact[x].item()) < 4 * r.error


@pytest.mark.gpu
@requires_cuda
def test_su3_gauge_hmc_on_the_gpu_keeps_the_group() -> None:
    u = random_su_n((4, 4, 4, 4, 4, 4), 3, generator(1)).cuda()
    hmc = GaugeHMC(WilsonGaugeAction(beta=5.5), tau=0.5, n_steps=5, rng=ChainRNG(2, range(4), "cuda"))
    state = hmc.init(u)
    for _ in range(3):
        state, info = hmc.step(state)
    v = state.phi
    assert v.is_cuda and info.dH.is_cuda
    torch.testing.assert_close(v @ v.conj().transpose(-1, -2), torch.eye(3, dtype=v.dtype, device=v.device).expand_as(v),
                               rtol=0, atol=1e-12)


@pytest.mark.gpu
@requires_cuda
def test_wilson_clover_on_the_gpu_equals_the_cpu_operator() -> None:
    links = random_su_n((4, 4, 4, 4, 8), 3, generator(4))
    psi = torch.view_as_complex(torch.randn(2, 4, 4, 4, 8, 4, 3, 2, generator=generator(5), dtype=torch.float64))
    cpu = WilsonDirac(links, mass=-0.4, csw=1.0, antiperiodic_time=True, backend="torch")(psi)
    gpu = WilsonDirac(links.cuda(), mass=-0.4, csw=1.0, antiperiodic_time=True, backend="torch")(psi.cuda())
    assert math.isclose(((gpu.cpu() - cpu).abs().max() / cpu.abs().max()).item(), 0.0, abs_tol=1e-13)


@pytest.mark.gpu
@requires_cuda
@pytest.mark.slow
def test_train_and_sample_on_the_gpu_from_the_command_line(tmp_path) -> None:  # noqa: ANN001
    """The tiny flow card with device = "cuda": training and NMCMC run, the store records the
    device, and a second run of the same card gives the same store bitwise (same device type)."""
    stores = []
    for name in ("a", "b"):
        card = tmp_path / f"{name}.toml"
        card.write_text(tiny_flow_card(tmp_path / name, extra='\n[parallel]\ndevice = "cuda"\n'))
        for command in ("train", "sample"):
            res = subprocess.run(hpcflow_cmd("--no-progress", command, str(card)), env=mpi_env(), capture_output=True,
                                 text=True, timeout=600)
            assert res.returncode == 0, res.stderr
        import h5py

        with h5py.File(tmp_path / name / "configs.h5") as f:
            assert f.attrs["device"] == "cuda" and f.attrs["complete"]
            stores.append(np.asarray(f["phi"][()]))
    np.testing.assert_array_equal(stores[0], stores[1])


@pytest.mark.skipif(CUDA, reason="this machine has CUDA: run the check itself")
def test_the_gpu_check_says_plainly_that_there_is_no_gpu(tmp_path) -> None:  # noqa: ANN001
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.sh"
    res = subprocess.run(["bash", str(script), str(tmp_path / "out")], env={**mpi_env(), "PYTHON": sys.executable},
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 3 and "no CUDA device visible to torch" in res.stdout
    assert (tmp_path / "out" / "gpu.txt").is_file()
