"""The compiled CPU kernels against the torch reference they implement: the Wilson(-clover)
operator to 1e-13 (complex128) and 1e-5 (complex64), the parallel transports and their gradients,
solves, preconditioner models, the phi^4 molecular dynamics bit for bit, and the SU(N) gauge
force and drift of gauge HMC.

Physics through the compiled path (gamma5-hermiticity, the free-field spectrum) is in
test_dirac.py, parametrized over both backends; the HMC tests of test_hmc.py run the compiled
phi^4 dynamics wherever the kernels are built (checked here)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from conftest import REPO, generator, needs_kernels
from hpcflow.dirac import GAMMA_4D, WilsonDirac, cg_normal, fgmres
from hpcflow.dirac.transport import Transporter, paths_up_to
from hpcflow.kernels.dirac import spin_tables
from hpcflow.lattice.rng import ChainRNG
from hpcflow.samplers.gauge_hmc import GaugeHMC, WilsonMoves, wilson_force
from hpcflow.samplers.hmc import HMC
from hpcflow.samplers.integrators import INTEGRATORS, ForceMoves, molecular_dynamics
from hpcflow.theories.gauge import WilsonGaugeAction, random_su_n, u1_links
from hpcflow.theories.phi4 import Phi4Action

pytestmark = needs_kernels

# (dimension, colours, lattice): 2D U(1) and SU(3), 4D SU(3) and SU(2), odd extents among them
CASES = [(2, 1, (6, 5)), (2, 3, (3, 5)), (4, 3, (4, 3, 5, 2)), (4, 2, (2, 3, 2, 3))]
TOL = {torch.complex128: 1e-13, torch.complex64: 1e-5}


def _links(dim: int, colours: int, shape: tuple[int, ...], dtype: torch.dtype, seed: int = 2) -> torch.Tensor:
    if colours == 1:
        theta = torch.empty(dim, *shape, dtype=torch.float64).uniform_(-3.1, 3.1, generator=generator(seed))
        return u1_links(theta[None])[0].to(dtype)
    return random_su_n((dim, *shape), colours, generator(seed), dtype)


def _field(lead: tuple[int, ...], shape: tuple[int, ...], spin: int, colours: int, dtype: torch.dtype, seed: int = 3):
    real = torch.randn((*lead, *shape, spin, colours, 2), generator=generator(seed), dtype=torch.float64)
    return torch.view_as_complex(real).to(dtype)


def _close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype) -> None:
    assert ((a - b).abs().max() / b.abs().max()).item() < TOL[dtype]


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("csw, antiperiodic", [(0.0, False), (0.0, True), (1.0, False), (1.0, True)])
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("dim, colours, shape", CASES)
def test_compiled_operator_equals_the_reference(dim, colours, shape, dtype, csw, antiperiodic, batch) -> None:
    links = _links(dim, colours, shape, dtype)
    psi = _field((batch,), shape, 2 if dim == 2 else 4, colours, dtype)
    reference = WilsonDirac(links, -0.3, csw, antiperiodic, backend="torch")
    compiled = WilsonDirac(links, -0.3, csw, antiperiodic, backend="compiled")
    assert compiled.kernel is not None and reference.kernel is None
    _close(compiled(psi), reference(psi), dtype)
    _close(compiled.dagger(psi), reference.dagger(psi), dtype)


@pytest.mark.parametrize("spin", [None, 3])
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("dim, colours, shape", CASES)
def test_compiled_hops_and_paths_equal_the_reference(dim, colours, shape, dtype, spin) -> None:
    """Spinors, and fields with an odd number of components (coarse grids carry K of them)."""
    links = _links(dim, colours, shape, dtype)
    spin = spin or (2 if dim == 2 else 4)
    psi = _field((2, 3), shape, spin, colours, dtype)  # (batch, channels, *L, S, N)
    fast, slow = Transporter(links), Transporter(links, backend="torch")
    assert fast.kernel is not None and slow.kernel is None
    paths = paths_up_to(dim, 2)
    for path, a, b in zip(paths, fast.transport(psi, paths), slow.transport(psi, paths)):
        _close(a, b, dtype) if path else torch.testing.assert_close(a, b)


@pytest.mark.parametrize("dim, colours, shape", CASES[::2])
def test_gradients_through_the_compiled_path_equal_the_reference(dim, colours, shape) -> None:
    """T_{+mu}^dagger = T_{-mu} and D^dagger = gamma5 D gamma5 as the backward maps."""
    links = _links(dim, colours, shape, torch.complex128)
    spin = 2 if dim == 2 else 4
    weight = _field((2,), shape, spin, colours, torch.complex128, seed=5)
    grads = []
    for backend in ("auto", "torch"):
        psi = _field((2,), shape, spin, colours, torch.complex128).requires_grad_()
        op = WilsonDirac(links, -0.2, 1.0, backend=backend)
        hop = op.transporter.hop(psi, -dim) + op.transporter.hop(psi, 1)
        loss = (weight.conj() * op(psi)).sum().abs() ** 2 + (weight.conj() * hop).sum().real
        loss.backward()
        grads.append(psi.grad)
    _close(*grads, torch.complex128)


def test_a_solve_takes_the_same_iterations_on_both_paths() -> None:
    links = _links(2, 1, (16, 16), torch.complex128)
    b = _field((1,), (16, 16), 2, 1, torch.complex128)
    counts = []
    for backend in ("compiled", "torch"):
        op = WilsonDirac(links, 0.05, backend=backend)
        gm, cg = fgmres(op, b, 1e-10, 2000, restart=30), cg_normal(op, op.dagger, b, 1e-10, 2000)
        assert gm.converged and cg.converged
        counts.append((gm.iterations, cg.iterations))
    assert counts[0] == counts[1]


def test_a_preconditioner_model_is_the_same_on_both_paths() -> None:
    from hpcflow.models.precond.layers import PTC, Sequence, TransportCache
    from hpcflow.dirac.transport import one_hop_paths

    links = _links(2, 1, (8, 6), torch.complex128)
    model = Sequence([PTC(1, 2, one_hop_paths(2), 2), PTC(2, 1, paths_up_to(2, 2), 2)])
    v = _field((3, 1), (8, 6), 2, 1, torch.complex128)
    outs, grads = [], []
    for backend in ("auto", "torch"):
        model.zero_grad()
        out = model(v, TransportCache(Transporter(links, backend=backend)))
        out.abs().pow(2).sum().backward()
        outs.append(out.detach())
        grads.append(model.layers[0].weight.grad.clone())
    _close(*outs, torch.complex128)
    _close(*grads, torch.complex128)


def test_the_kernel_refuses_a_basis_it_does_not_implement() -> None:
    """The Dirac (non-chiral) basis has a diagonal gamma_4: spin projection as coded does not apply."""
    dirac_basis = GAMMA_4D.clone()
    dirac_basis[0] = torch.diag(torch.tensor([1, 1, -1, -1], dtype=torch.complex128))
    with pytest.raises(ValueError, match="gamma_0 is not block off-diagonal"):
        spin_tables(dirac_basis)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("shape", [(64, 64), (3, 5), (4, 6, 5), (2, 3, 4, 3)])
@pytest.mark.parametrize("integrator", sorted(INTEGRATORS))
def test_compiled_phi4_dynamics_is_bitwise_the_torch_path(integrator: str, shape: tuple[int, ...], dtype) -> None:
    action = Phi4Action(beta=0.576, lam=0.5)
    gen = generator(7)
    phi = torch.randn((5, *shape), generator=gen, dtype=torch.float64).to(dtype)
    pi = torch.randn((5, *shape), generator=gen, dtype=torch.float64).to(dtype)
    schedule = INTEGRATORS[integrator]().schedule(0.1, 7)
    compiled = molecular_dynamics(action)
    assert compiled.accepts(phi)
    fast, slow = compiled.run(phi, pi, *schedule), ForceMoves(action.force).run(phi, pi, *schedule)
    assert (fast[0] - phi).abs().max() > 0.1  # the trajectory went somewhere
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])


@pytest.mark.parametrize("steps", [6, 7])
def test_compiled_phi4_results_are_the_callers(steps: int) -> None:
    """The kernel keeps a scratch pair between trajectories: a result it returned must survive the
    next trajectories (even and odd numbers of moves put the end point in either pair)."""
    action = Phi4Action(beta=0.576, lam=0.5)
    dynamics = molecular_dynamics(action)
    phi, pi = torch.randn(4, 8, 8, dtype=torch.float64), torch.randn(4, 8, 8, dtype=torch.float64)
    schedule = INTEGRATORS["leapfrog"]().schedule(0.1, steps)
    first = dynamics.run(phi, pi, *schedule)
    kept = [t.clone() for t in first]
    back = dynamics.run(first[0], -first[1], *schedule)  # reversibility, reading a returned pair
    dynamics.run(back[0], back[1], *schedule)
    assert all(torch.equal(a, b) for a, b in zip(first, kept))
    torch.testing.assert_close(back[0], phi, rtol=0, atol=1e-12)


def test_hmc_chains_are_bitwise_the_same_on_both_paths() -> None:
    """So every HMC test (reversibility, dH ~ eps^2, <exp(-dH)> = 1, the free propagator) holds for
    both; those of test_hmc.py run the compiled one."""
    action = Phi4Action(beta=0.576, lam=0.5)
    states, runs, accepted = [], [], []
    for compiled in (True, False):
        hmc = HMC(action, INTEGRATORS["omelyan"](), tau=1.0, n_steps=4, rng=ChainRNG(5, range(8)))
        if not compiled:
            hmc.dynamics = ForceMoves(action.force)
        state = hmc.init(hmc.rng.normal((8, 8)))
        assert hmc.dynamics.accepts(state.phi) if compiled else True
        dh, acc = [], []
        for _ in range(20):
            state, info = hmc.step(state)
            dh.append(info.dH)
            acc.append(info.accepted)
        states.append(state.phi)
        runs.append(torch.stack(dh))
        accepted.append(torch.stack(acc))
    assert torch.equal(*states) and torch.equal(*runs) and torch.equal(*accepted)
    assert 0.2 < accepted[0].double().mean() < 1  # the Metropolis test had work to do


def test_without_the_kernels_the_reference_runs_and_the_reason_is_given() -> None:
    code = (
        "import torch\n"
        "from hpcflow.kernels import compiled, why_not_compiled\n"
        "from hpcflow.dirac import WilsonDirac\n"
        "assert compiled() is None and 'HPCFLOW_KERNELS=0' in why_not_compiled()\n"
        "links = torch.eye(1, dtype=torch.complex128).expand(2, 4, 4, 1, 1).clone()\n"
        "op = WilsonDirac(links, 0.1)\n"
        "assert op.kernel is None and op.transporter.kernel is None\n"
        "op(torch.ones(1, 4, 4, 2, 1, dtype=torch.complex128))\n"
        "try:\n"
        "    WilsonDirac(links, 0.1, backend='compiled')\n"
        "except RuntimeError as err:\n"
        "    print(err)\n"
    )
    env = {**os.environ, "HPCFLOW_KERNELS": "0", "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert "backend = 'compiled': HPCFLOW_KERNELS=0 selects the torch reference" in out


def test_the_binding_refuses_tensors_it_cannot_pass_on() -> None:
    from hpcflow.kernels import binding

    links = _links(2, 1, (4, 4), torch.complex128).movedim(0, -3).reshape(16, 2, 1, 1).contiguous()
    nbr = torch.zeros(16, 4, dtype=torch.int64)
    psi = torch.zeros(1, 16, 2, 1, dtype=torch.complex64)
    with pytest.raises(ValueError, match="psi: expected a contiguous CPU tensor of torch.complex128, got torch.complex64"):
        binding.wilson(psi, links, nbr, torch.empty(0, dtype=torch.complex128), 2.0)
    with pytest.raises(ValueError, match=r"psi \(1, 15, 2, 1\), direction 0 do not fit links"):
        binding.hop(torch.zeros(1, 15, 2, 1, dtype=torch.complex128), links, nbr, 0, True)
    phi = torch.zeros(2, 16, dtype=torch.float64)
    with pytest.raises(ValueError, match="four distinct buffers"):
        binding.phi4_md(phi, phi.clone(), nbr[:4, :2].contiguous(), 0.5, 2.0, 0.1, [], [phi] * 4)
    gauge = torch.zeros(1, 2, 16, 3, 3, dtype=torch.complex128)
    with pytest.raises(ValueError, match=r"neighbours \(16, 3\): expected \(B, d, V, N, N\) and \(V, 2d\)"):
        binding.gauge_force(gauge, nbr[:, :3].contiguous(), 1.0)
    with pytest.raises(ValueError, match="momenta: expected a contiguous CPU tensor of torch.complex128"):
        binding.su_n_drift(gauge.to(torch.complex64), gauge, 0.1)


GAUGE_CASES = [(2, 3, (4, 6)), (4, 3, (4, 3, 2, 5)), (4, 2, (2, 3, 4, 2)), (3, 2, (3, 4, 5))]


@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64])
@pytest.mark.parametrize("dim, colours, shape", GAUGE_CASES)
def test_compiled_gauge_force_and_drift_equal_the_reference(dim, colours, shape, dtype) -> None:
    """The force against wilson_force (the staple sum in torch) and the drift against
    matrix_exp(i eps P) U, with momenta large enough that the kernel scales and squares."""
    action = WilsonGaugeAction(beta=5.5)
    u = random_su_n((2, dim, *shape), colours, generator(4)).to(dtype)
    moves = WilsonMoves(action)
    assert moves.accepts(u)
    _close(moves.force(u), wilson_force(action, u), dtype)
    hmc = GaugeHMC(action, tau=1.0, n_steps=1, rng=ChainRNG(3, range(2)))
    p = 3.0 * hmc.momenta(u)
    for eps in (0.02, 1.0):
        _close(moves.drift(p, u, eps), torch.linalg.matrix_exp(1j * eps * p) @ u, dtype)
    back = moves.drift(-p, moves.drift(p, u, 1.0), 1.0)
    _close(back, u, dtype)


def test_gauge_hmc_chains_agree_on_both_paths() -> None:
    """4D SU(3) chains through the compiled kernels and through torch: the same accept decisions
    and links within rounding after 6 trajectories (the HMC physics tests of test_gauge_hmc.py run
    the compiled path)."""
    action = WilsonGaugeAction(beta=5.0)
    start = random_su_n((3, 4, 2, 2, 2, 4), 3, generator(6))
    runs = []
    for compiled in (True, False):
        hmc = GaugeHMC(action, tau=1.0, n_steps=3, rng=ChainRNG(8, range(3)))
        hmc.moves = WilsonMoves(action, compiled=compiled)
        assert hmc.moves.accepts(start) == compiled
        state, accepted = hmc.init(start), []
        for _ in range(6):
            state, info = hmc.step(state)
            accepted.append(info.accepted)
        runs.append((state.phi, torch.stack(accepted)))
    assert torch.equal(runs[0][1], runs[1][1]) and 0 < runs[0][1].double().mean() < 1
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=0, atol=1e-11)
