"""NMCMC: exactness with an imperfect flow, and the free theory learned and sampled end to end."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from hpcflow.analysis.gamma import gamma_method
from hpcflow.analysis.observables import phi4_reweighted
from hpcflow.io.store import ConfigStore
from hpcflow.lattice.rng import ChainRNG
from hpcflow.models.flows import FlowSpec, NormalPrior, build_flow, effective_sample_size
from hpcflow.models.flows.loss import imh_acceptance
from hpcflow.samplers.nmcmc import NMCMC, NonFiniteWeights
from hpcflow.theories.phi4 import Phi4Action, energy_density, free_propagator, magnetization
from hpcflow.workflow.runcard import load_runcard
from hpcflow.workflow.sample import sample
from hpcflow.workflow.train import train

FREE = Phi4Action(beta=0.2, lam=0.0)


def _two_point(phi: torch.Tensor, x: tuple[int, int]) -> np.ndarray:
    """Per-configuration (1/V) sum_y phi_{y+x} phi_y of fields (chain, step, L0, L1)."""
    return (torch.roll(phi, (-x[0], -x[1]), (2, 3)) * phi).mean((2, 3)).numpy()


def _check_free_propagator(phi: torch.Tensor, beta: float) -> None:
    exact = free_propagator(tuple(phi.shape[2:]), beta)
    for x in [(0, 0), (1, 0), (0, 1), (1, 1), (2, 2)]:
        r = gamma_method(_two_point(phi, x))
        assert abs(r.value - exact[x].item()) < 4 * r.error, (x, r.value, exact[x].item(), r.error)


def test_independence_metropolis_is_exact_with_an_imperfect_flow() -> None:
    """A flow with random weights is a poor proposal; the chain must still sample exp(-S)."""
    torch.manual_seed(5)
    flow = build_flow(FlowSpec(coupling="affine", layers=2, hidden=(4,), kernel=3))
    with torch.no_grad():
        for p in flow.parameters():
            p.normal_(0.0, 0.1)
    sampler = NMCMC(flow, FREE, (4, 4), ChainRNG(3, range(64)), chunk=50)
    state = sampler.init()
    fields, accepted, log_w, prop_m, prop_e = [], [], [], [], []
    for _ in range(400):
        state, info = sampler.step(state)
        fields.append(state.phi)
        accepted.append(info.accepted.double())
        log_w.append(info.log_w)
        prop_m.append(magnetization(info.proposal))
        prop_e.append(energy_density(info.proposal))
    acceptance = torch.stack(accepted).mean().item()
    assert 0.05 < acceptance < 0.9  # a visibly imperfect proposal: the Metropolis test matters
    assert effective_sample_size(torch.stack(log_w).flatten()) < 0.9
    phi = torch.stack(fields, 1)
    _check_free_propagator(phi, FREE.beta)
    s = FREE(phi.flatten(0, 1)).view(64, -1).numpy() / 16
    r = gamma_method(s)
    assert abs(r.value - 0.5) < 4 * r.error  # equipartition of the Gaussian action
    # importance reweighting of the same proposals is exact too
    rw = phi4_reweighted(*(torch.stack(x, 1).numpy() for x in (log_w, prop_m, prop_e)), volume=16)
    chi_exact = 1.0 / (2.0 - 2.0 * FREE.beta * 2)
    assert abs(rw["susceptibility"].value - chi_exact) < 4 * rw["susceptibility"].error
    e_exact = free_propagator((4, 4), FREE.beta)[1, 0].item()
    assert abs(rw["energy"].value - e_exact) < 4 * rw["energy"].error


class _HoleyFlow(torch.nn.Module):
    """The identity map with log q = log r(z), except a NaN log q wherever z[0, 0] > 0.5: a flow
    with a numerical hole, for the rejection of non-finite weights."""

    prior = NormalPrior()

    def push(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_r = -0.5 * z.pow(2).flatten(1).sum(1) - 0.5 * z[0].numel() * math.log(2 * math.pi)
        return z.clone(), torch.where(z[:, 0, 0] > 0.5, torch.full_like(log_r, math.nan), log_r)


def test_non_finite_weights_are_rejected_and_a_chain_starts_at_its_first_finite_proposal() -> None:
    chains = 16
    sampler = NMCMC(_HoleyFlow(), FREE, (4, 4), ChainRNG(11, range(chains)), chunk=7)
    state = sampler.init()
    started_bad = ~torch.isfinite(state.log_w)
    assert started_bad.any() and not started_bad.all()  # both kinds of start occur with this seed
    first_finite = torch.full((chains,), -1)
    for t in range(30):
        state, info = sampler.step(state)
        finite = torch.isfinite(info.log_w)
        assert not (info.accepted & ~finite).any()  # a NaN weight is never accepted
        newly = finite & (first_finite < 0)
        # a chain that started on a non-finite weight accepts its first finite proposal
        assert bool(info.accepted[newly & started_bad].all())
        first_finite[newly] = t
    assert torch.isfinite(state.log_w).all() and torch.isfinite(state.phi).all()
    sampler.check_started(state, list(range(chains)))


def test_a_chain_without_any_finite_weight_stops_with_a_clear_error() -> None:
    class NaNFlow(_HoleyFlow):
        def push(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return z.clone(), torch.full((z.shape[0],), math.nan, dtype=z.dtype)

    sampler = NMCMC(NaNFlow(), FREE, (4, 4), ChainRNG(1, range(3)), chunk=4)
    state = sampler.init()
    for _ in range(5):
        state, info = sampler.step(state)
        assert not info.accepted.any()
    with pytest.raises(NonFiniteWeights, match=r"chains \[5, 6, 7\]: every proposal"):
        sampler.check_started(state, [5, 6, 7])


def test_weight_diagnostics_count_non_finite_weights_as_zero() -> None:
    """p_i = min(1, w_i / w_current) with w = 0 for NaN and -inf: for log w = [0, nan, 0, -inf, 0]
    the proposals after the first have p = 0, 1, 0, 1 (mean 1/2); NaN counted as accepted gave 3/4."""
    log_w = torch.tensor([0.0, math.nan, 0.0, -math.inf, 0.0], dtype=torch.float64)
    assert imh_acceptance(log_w, torch.Generator().manual_seed(0)) == pytest.approx(0.5)
    # a chain that starts on a NaN weight accepts the first finite proposal
    assert imh_acceptance(torch.tensor([math.nan, 0.0, 0.0]), torch.Generator().manual_seed(0)) == pytest.approx(1.0)
    assert effective_sample_size(log_w) == pytest.approx(3.0 / 5.0)  # three equal weights of five
    assert effective_sample_size(torch.tensor([math.nan, math.inf])) == 0.0
    rw = phi4_reweighted(np.array([[0.0, np.nan, 0.0, -np.inf] * 4]), np.array([[1.0, 99.0, 1.0, 99.0] * 4]),
                         np.ones((1, 16)), volume=1)
    assert rw["abs_magnetization"].value == pytest.approx(1.0)


def test_chunking_does_not_change_the_chain() -> None:
    flow = build_flow(FlowSpec(coupling="affine", layers=2, hidden=(4,), kernel=3))
    runs = []
    for chunk in (1, 7):
        sampler = NMCMC(flow, FREE, (4, 4), ChainRNG(9, range(3)), chunk=chunk)
        state = sampler.init()
        for _ in range(10):
            state, _ = sampler.step(state)
        runs.append(state.phi)
    assert torch.equal(runs[0], runs[1])


FREE_CARD = """\
[theory]
name = "phi4"
shape = [4, 4]
beta = 0.2
lam = 0.0

[model]
coupling = "affine"
layers = 4
hidden = [8]
kernel = 3
rescaling = true

[training]
steps = 400
batch = 256
lr = 0.01
seed = 1
checkpoint_every = 100

[sampler]
kind = "nmcmc"
chains = 32
updates = 300
thermalization = 0
seed = 2
chunk = 100

[output]
dir = "{dir}"
"""


@pytest.mark.slow
def test_free_theory_is_learned_and_sampled_exactly(tmp_path: Path) -> None:
    path = tmp_path / "free.toml"
    path.write_text(FREE_CARD.format(dir=tmp_path / "run"))
    card = load_runcard(path)
    train(card, progress=False)
    store_path = sample(card, progress=False)
    with ConfigStore(store_path) as store:
        phi = torch.from_numpy(store.read("phi"))
        log_w = torch.from_numpy(store.read("nmcmc/log_w")).flatten()
        acceptance = store.attrs["acceptance"]
    ess = effective_sample_size(log_w)
    assert ess > 0.99, ess
    assert acceptance > 0.9
    _check_free_propagator(phi, FREE.beta)
    assert math.isfinite(float(log_w.mean()))
