"""Flow layers: exact log-dets, inverses, Z2 equivariance, sublattice geometry (packing, locality,
translations), spline properties, volume transfer."""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd.functional import jacobian

from hpcflow.lattice.sublattice import SplitField, sublattice_frame
from hpcflow.models.flows import (
    LAYERS,
    CouplingLayer,
    Flow,
    FlowSpec,
    GlobalRescaling,
    MomentumScaling,
    build_flow,
    effective_sample_size,
    rational_quadratic_spline,
)
from hpcflow.theories.phi4 import Phi4Action, free_propagator


def _randomize(module: torch.nn.Module, scale: float = 0.5) -> torch.nn.Module:
    """Random parameters everywhere (a fresh layer is the identity, which would test nothing)."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def _layer(name: str, equivariant: bool) -> CouplingLayer:
    kwargs = dict(parity=1, hidden=[4, 4], kernel=3, equivariant=equivariant)
    if name == "spline":
        kwargs.update(bins=5, bound=2.0)
    # Weights of 0.3 give conditioner outputs (spline logits) up to about 10; much larger ones pin
    # bins at their minimal size, where the inverse's conditioning (1 / (dy/dx) ~ 1e6) and not
    # the algebra limits inverse(forward(x)) - x in float64.
    return _randomize(LAYERS[name](**kwargs), 0.3).double()


def _apply(layer: torch.nn.Module, x: torch.Tensor, inverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """A layer on full-lattice fields ``(B, L0, L1)``."""
    field, ld = (layer.inverse if inverse else layer)(SplitField.split(x))
    return field.join(), ld


def all_subclasses(cls: type) -> set[type]:
    return set(cls.__subclasses__()).union(*(all_subclasses(c) for c in cls.__subclasses__()))


def test_every_layer_is_registered() -> None:
    assert all_subclasses(CouplingLayer) <= set(LAYERS.values())


@pytest.mark.parametrize("equivariant", [False, True])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_is_bijective_with_exact_logdet(name: str, equivariant: bool) -> None:
    layer = _layer(name, equivariant)
    x = 1.5 * torch.randn(2, 4, 4, dtype=torch.float64)  # some sites beyond the spline bound
    y, ladj = _apply(layer, x)
    assert (y - x).abs().max() > 1e-3
    x_back, ladj_inv = _apply(layer, y, inverse=True)
    torch.testing.assert_close(x_back, x, rtol=0.0, atol=1e-10)
    torch.testing.assert_close(ladj_inv, -ladj, rtol=1e-10, atol=1e-10)
    for b in range(2):
        jac = jacobian(lambda v: _apply(layer, v[None])[0][0], x[b]).reshape(16, 16)
        torch.testing.assert_close(ladj[b], torch.linalg.slogdet(jac).logabsdet, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_equivariant_layers_are_odd(name: str) -> None:
    layer = _layer(name, equivariant=True)
    x = torch.randn(3, 6, 6, dtype=torch.float64)
    y, ladj = _apply(layer, x)
    y_neg, ladj_neg = _apply(layer, -x)
    torch.testing.assert_close(y_neg, -y, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ladj_neg, ladj, rtol=1e-12, atol=1e-12)
    plain = _layer(name, equivariant=False)
    assert not torch.allclose(_apply(plain, -x)[0], -_apply(plain, x)[0])  # the test can tell


@pytest.mark.parametrize("spec", [
    FlowSpec(coupling="affine", layers=4, hidden=(4,), kernel=3, rescaling=True),
    FlowSpec(coupling=("affine", "spline", "affine", "spline"), layers=4, hidden=(4,), kernel=3, bins=4, bound=3.0),
    FlowSpec(coupling="spline", layers=2, hidden=(4,), kernel=3, bins=4, bound=3.0, fourier=True, rescaling=True),
])
def test_whole_flow_logdet_and_inverse(spec: FlowSpec) -> None:
    flow = _randomize(build_flow(spec), 0.3).double()
    z = torch.randn(2, 4, 4, dtype=torch.float64)
    phi, logdet = flow(z)
    z_back, logdet_inv = flow.inverse(phi)
    torch.testing.assert_close(z_back, z, rtol=0.0, atol=1e-10)
    torch.testing.assert_close(logdet_inv, -logdet, rtol=1e-10, atol=1e-10)
    jac = jacobian(lambda v: flow(v[None])[0][0], z[0]).reshape(16, 16)
    torch.testing.assert_close(logdet[0], torch.linalg.slogdet(jac).logabsdet, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(flow.log_prob(phi), flow.push(z)[1], rtol=1e-10, atol=1e-10)


def test_global_rescaling_logdet() -> None:
    layer = GlobalRescaling().double()
    with torch.no_grad():
        layer.log_scale.fill_(0.3)
    x = torch.randn(2, 4, 6, dtype=torch.float64)
    y, ld = _apply(layer, x)
    torch.testing.assert_close(y, x * torch.exp(torch.tensor(0.3, dtype=torch.float64)))
    torch.testing.assert_close(ld, torch.full((2,), 0.3 * 24, dtype=torch.float64))


def _momentum_scaling(power: float = 0.7, log_mass2: float = -1.2) -> MomentumScaling:
    layer = MomentumScaling().double()
    with torch.no_grad():
        layer.poly.copy_(torch.tensor([0.1, -0.4, 0.3, 0.2]))
        layer.power.fill_(power)
        layer.log_mass2.fill_(log_mass2)
    return layer


def test_momentum_scaling_is_bijective_odd_translation_invariant_with_exact_logdet() -> None:
    layer = _momentum_scaling()
    x = torch.randn(2, 4, 6, dtype=torch.float64)
    y, ld = _apply(layer, x)
    x_back, ld_inv = _apply(layer, y, inverse=True)
    torch.testing.assert_close(x_back, x, rtol=0.0, atol=1e-12)
    torch.testing.assert_close(ld_inv, -ld, rtol=1e-12, atol=1e-12)
    jac = jacobian(lambda v: _apply(layer, v[None])[0][0], x[0]).reshape(24, 24)
    torch.testing.assert_close(jac, jac.T, rtol=1e-12, atol=1e-12)  # a(k) = a(-k): real and symmetric
    torch.testing.assert_close(ld[0], torch.linalg.slogdet(jac).logabsdet, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(_apply(layer, -x)[0], -y, rtol=1e-12, atol=1e-12)
    for shift in ((0, 1), (1, 0), (3, 5)):  # every translation, odd ones included
        torch.testing.assert_close(_apply(layer, torch.roll(x, shift, (1, 2)))[0], torch.roll(y, shift, (1, 2)))


@pytest.mark.parametrize("shape", [(4, 4), (6, 8)])
def test_momentum_scaling_makes_a_free_field_from_unit_gaussians(shape: tuple[int, int]) -> None:
    """At power 1 and c_n = 0 the covariance M M^T is (4d + m^2) (-Laplacian + m^2)^{-1}, exactly."""
    m2 = 0.3
    layer = _momentum_scaling(power=1.0, log_mass2=math.log(m2))
    with torch.no_grad():
        layer.poly.zero_()
    volume = shape[0] * shape[1]
    eye = torch.eye(volume, dtype=torch.float64).reshape(volume, *shape)
    cols = _apply(layer, eye)[0].reshape(volume, volume)  # the linear map's matrix (symmetric)
    laplacian = sum(torch.roll(eye, s, d) + torch.roll(eye, -s, d) for s, d in ((1, 1), (1, 2))) - 4 * eye
    kinetic = (-laplacian + m2 * eye).reshape(volume, volume)
    torch.testing.assert_close(kinetic @ cols @ cols.T, (8 + m2) * torch.eye(volume, dtype=torch.float64),
                               rtol=1e-10, atol=1e-10)


def test_fresh_momentum_scaling_is_the_identity() -> None:
    x = torch.randn(2, 4, 6)
    y, ld = _apply(MomentumScaling(), x)
    torch.testing.assert_close(y, x)
    assert torch.equal(ld, torch.zeros(2))


@pytest.mark.parametrize("shape", [(4, 4), (8, 8), (6, 4), (4, 10), (8, 12)])
def test_sublattice_packing_is_a_bijection_onto_each_parity(shape: tuple[int, int]) -> None:
    frame = sublattice_frame(shape)
    t, x = torch.meshgrid(torch.arange(shape[0]), torch.arange(shape[1]), indexing="ij")
    parity = ((t + x) % 2).flatten()
    for s in (0, 1):
        assert sorted(frame.sites[s].tolist()) == torch.nonzero(parity == s).flatten().tolist()
    phi = torch.randn(3, *shape, dtype=torch.float64)
    torch.testing.assert_close(frame.unpack(*frame.pack(phi)), phi, rtol=0, atol=0)
    with pytest.raises(ValueError, match="two even extents"):
        sublattice_frame((6, 5))


def _taxicab(shape: tuple[int, int], a: tuple[int, int]) -> torch.Tensor:
    """Periodic taxicab distance of every site from ``a``."""
    t, x = torch.meshgrid(torch.arange(shape[0]), torch.arange(shape[1]), indexing="ij")
    dt, dx = (t - a[0]) % shape[0], (x - a[1]) % shape[1]
    return torch.minimum(dt, shape[0] - dt) + torch.minimum(dx, shape[1] - dx)


@pytest.mark.parametrize("hidden, kernel, reach", [([], 3, 1), ([3], 3, 3), ([3, 3], 3, 5), ([], 5, 3), ([3], 5, 7)])
@pytest.mark.parametrize("parity", [0, 1])
def test_conditioner_sees_exactly_the_frozen_sites_within_its_reach(hidden: list[int], kernel: int, reach: int, parity: int) -> None:
    """The first layer reaches taxicab distance k - 2 from the frozen to the active sites, each
    further k x k layer k - 1 on the active sublattice: perturbing one frozen site moves exactly
    the active sites within the sum."""
    shape, site = (16, 18), (7, 6 + parity)  # the perturbed site is frozen: parity 1 - parity
    layer = _randomize(LAYERS["affine"](parity=parity, hidden=hidden, kernel=kernel, equivariant=False)).double()
    x = torch.randn(1, *shape, dtype=torch.float64)
    bumped = x.clone()
    bumped[0, site[0], site[1]] += 1.0
    moved = (_apply(layer, bumped)[0] - _apply(layer, x)[0])[0].abs() > 1e-12
    moved[site] = False
    distance = _taxicab(shape, site)
    assert torch.equal(moved, (distance <= reach) & (distance % 2 == 1))  # odd distance: active sites


@pytest.mark.parametrize("shift", [(1, 1), (1, -1), (2, 0), (0, 2), (3, 5)])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_commute_with_parity_preserving_translations(name: str, shift: tuple[int, int]) -> None:
    layer = _layer(name, equivariant=False)
    x = torch.randn(2, 6, 8, dtype=torch.float64)
    y, ld = _apply(layer, x)
    y_shifted, ld_shifted = _apply(layer, torch.roll(x, shift, (1, 2)))
    torch.testing.assert_close(y_shifted, torch.roll(y, shift, (1, 2)), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ld_shifted, ld, rtol=1e-12, atol=1e-12)
    y_odd = _apply(layer, torch.roll(x, (0, 1), (1, 2)))[0]  # the test can tell: odd shifts swap parities
    assert not torch.allclose(y_odd, torch.roll(y, (0, 1), (1, 2)))


def _spline_params(n: int, k: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return tuple(2 * torch.randn(n, m, generator=g, dtype=torch.float64) for m in (k, k, k - 1))


def test_spline_is_monotone_continuous_and_identity_outside() -> None:
    bound, k = 2.0, 6
    w, h, d = _spline_params(1, k)
    x = torch.linspace(-4, 4, 20001, dtype=torch.float64)
    y, logd = rational_quadratic_spline(x, w.expand(x.numel(), k), h.expand(x.numel(), k), d.expand(x.numel(), k - 1), bound)
    assert torch.all(torch.diff(y) > 0)  # strictly monotone
    slope = torch.exp(logd)
    # no jumps at the knots: every increment is bounded by the analytic derivative nearby
    assert torch.all(torch.diff(y) <= 1.1 * torch.maximum(slope[:-1], slope[1:]) * torch.diff(x))
    outside = x.abs() > bound
    torch.testing.assert_close(y[outside], x[outside])
    assert torch.all(logd[outside] == 0)
    # log-derivative against central differences at random points inside and outside
    pts = torch.empty(200, dtype=torch.float64).uniform_(-3, 3, generator=torch.Generator().manual_seed(1))
    args = (w.expand(200, k), h.expand(200, k), d.expand(200, k - 1), bound)
    eps = 1e-6
    fd = (rational_quadratic_spline(pts + eps, *args)[0] - rational_quadratic_spline(pts - eps, *args)[0]) / (2 * eps)
    torch.testing.assert_close(fd, torch.exp(rational_quadratic_spline(pts, *args)[1]), rtol=1e-4, atol=1e-8)
    # the endpoints map to themselves with slope 1: continuous derivative at +-B
    ends = torch.tensor([-bound, bound], dtype=torch.float64)
    ye, le = rational_quadratic_spline(ends, w.expand(2, k), h.expand(2, k), d.expand(2, k - 1), bound)
    torch.testing.assert_close(ye, ends)
    torch.testing.assert_close(le, torch.zeros(2, dtype=torch.float64), atol=1e-10, rtol=0)


def test_spline_has_no_nan_for_extreme_inputs() -> None:
    w, h, d = _spline_params(6, 4)
    x = torch.tensor([-1e30, -5.0, -1e-300, 0.0, 7.0, 1e30], dtype=torch.float64, requires_grad=True)
    y, logd = rational_quadratic_spline(x, w, h, d, 3.0)
    (g,) = torch.autograd.grad((y + logd).sum(), x)
    assert torch.isfinite(y).all() and torch.isfinite(logd).all() and torch.isfinite(g).all()
    back, _ = rational_quadratic_spline(y.detach(), w, h, d, 3.0, inverse=True)
    torch.testing.assert_close(back, x.detach(), rtol=1e-12, atol=1e-12)


def test_conv_flow_transfers_to_another_volume() -> None:
    flow = _randomize(build_flow(FlowSpec(coupling="affine", layers=2, hidden=(4,), kernel=3, fourier=True)), 0.3).double()
    for shape in ((4, 4), (8, 12)):
        z = torch.randn(2, *shape, dtype=torch.float64)
        phi, _ = flow(z)
        torch.testing.assert_close(flow.inverse(phi)[0], z, rtol=0, atol=1e-10)


def test_bad_spline_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="bins = 0"):
        build_flow(FlowSpec(coupling="spline", layers=2, hidden=(4,), kernel=3, bins=0))
    with pytest.raises(ValueError, match="kernel = 4"):
        build_flow(FlowSpec(coupling="affine", layers=2, hidden=(4,), kernel=4))
    with pytest.raises(ValueError, match="kernel = 1"):
        build_flow(FlowSpec(coupling="affine", layers=2, hidden=(4,), kernel=1))


def _two_point(layer: MomentumScaling, shape: tuple[int, int]) -> torch.Tensor:
    r""":math:`\langle\phi_x\phi_0\rangle` of the layer applied to unit Gaussians: row 0 of :math:`M M^T`."""
    volume = shape[0] * shape[1]
    m = _apply(layer, torch.eye(volume, dtype=torch.float64).reshape(volume, *shape))[0].reshape(volume, volume)
    return (m @ m.T)[0].reshape(shape)


def test_momentum_scaling_is_the_exact_map_of_the_free_theory() -> None:
    """lam = 0: K(p) = beta (p^2 + m^2), m^2 = (2 - 2 d beta) / beta, so c_0 = -log(beta (4d + m^2)) / 2,
    g = 1 and the other c_n = 0 give the exact propagator 1 / K(p) and constant weights (ESS = 1)."""
    beta, shape = 0.45, (8, 6)
    m2 = (2 - 4 * beta) / beta
    layer = _momentum_scaling(power=1.0, log_mass2=math.log(m2))
    with torch.no_grad():
        layer.poly.copy_(torch.tensor([-0.5 * math.log(beta * (8 + m2)), 0.0, 0.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(_two_point(layer, shape), free_propagator(shape, beta), rtol=1e-12, atol=1e-12)
    flow = Flow([layer], FlowSpec(coupling="affine", layers=0, hidden=(), kernel=3, fourier=True))
    phi, log_q = flow.push(torch.randn(16, *shape, dtype=torch.float64))
    log_w = -Phi4Action(beta=beta, lam=0.0)(phi) - log_q
    assert (log_w - log_w[0]).abs().max() < 1e-10


def test_momentum_scaling_learns_the_free_theory() -> None:
    """Reverse-KL training of the one-layer flow from the identity reaches ESS > 0.99 (the issue's
    criterion for the free theory), its propagator within 1 % of G(0) of the exact one at every distance."""
    beta, shape = 0.45, (8, 8)
    action = Phi4Action(beta=beta, lam=0.0)
    flow = Flow([MomentumScaling()], FlowSpec(coupling="affine", layers=0, hidden=(), kernel=3, fourier=True)).double()
    opt = torch.optim.Adam(flow.parameters(), lr=0.05)
    steps = 1000
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * k / steps)))
    gen = torch.Generator().manual_seed(0)
    for _ in range(steps):
        phi, log_q = flow.push(torch.randn(64, *shape, generator=gen, dtype=torch.float64))
        loss = (log_q + action(phi)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    with torch.no_grad():
        phi, log_q = flow.push(torch.randn(4096, *shape, generator=gen, dtype=torch.float64))
        assert effective_sample_size(-action(phi) - log_q) > 0.99
        exact = free_propagator(shape, beta)
        assert (_two_point(flow.layers[0], shape) - exact).abs().max() < 0.01 * exact[0, 0]
