"""Flow layers: exact log-dets, inverses, Z2 equivariance, spline properties, volume transfer."""

from __future__ import annotations

import pytest
import torch
from torch.autograd.functional import jacobian

from hpcflow.models.flows import (
    LAYERS,
    CouplingLayer,
    FlowSpec,
    GlobalRescaling,
    build_flow,
    rational_quadratic_spline,
)


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
    return _randomize(LAYERS[name](**kwargs)).double()


def all_subclasses(cls: type) -> set[type]:
    return set(cls.__subclasses__()).union(*(all_subclasses(c) for c in cls.__subclasses__()))


def test_every_layer_is_registered() -> None:
    assert all_subclasses(CouplingLayer) <= set(LAYERS.values())


@pytest.mark.parametrize("equivariant", [False, True])
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_is_bijective_with_exact_logdet(name: str, equivariant: bool) -> None:
    layer = _layer(name, equivariant)
    x = 1.5 * torch.randn(2, 4, 4, dtype=torch.float64)  # some sites beyond the spline bound
    y, ladj = layer(x)
    assert (y - x).abs().max() > 1e-3
    x_back, ladj_inv = layer.inverse(y)
    torch.testing.assert_close(x_back, x, rtol=0.0, atol=1e-10)
    torch.testing.assert_close(ladj_inv, -ladj, rtol=1e-10, atol=1e-10)
    for b in range(2):
        jac = jacobian(lambda v: layer(v[None])[0][0], x[b]).reshape(16, 16)
        torch.testing.assert_close(ladj[b], torch.linalg.slogdet(jac).logabsdet, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_equivariant_layers_are_odd(name: str) -> None:
    layer = _layer(name, equivariant=True)
    x = torch.randn(3, 6, 6, dtype=torch.float64)
    y, ladj = layer(x)
    y_neg, ladj_neg = layer(-x)
    torch.testing.assert_close(y_neg, -y, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ladj_neg, ladj, rtol=1e-12, atol=1e-12)
    plain = _layer(name, equivariant=False)
    assert not torch.allclose(plain(-x)[0], -plain(x)[0])  # the test can tell


@pytest.mark.parametrize("spec", [
    FlowSpec(coupling="affine", layers=4, hidden=(4,), kernel=3, rescaling=True),
    FlowSpec(coupling=("affine", "spline", "affine", "spline"), layers=4, hidden=(4,), kernel=3, bins=4, bound=3.0),
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
    y, ld = layer(x)
    torch.testing.assert_close(y, x * torch.exp(torch.tensor(0.3, dtype=torch.float64)))
    torch.testing.assert_close(ld, torch.full((2,), 0.3 * 24, dtype=torch.float64))


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
    flow = _randomize(build_flow(FlowSpec(coupling="affine", layers=2, hidden=(4,), kernel=3)), 0.3).double()
    for shape in ((4, 4), (8, 12)):
        z = torch.randn(2, *shape, dtype=torch.float64)
        phi, _ = flow(z)
        torch.testing.assert_close(flow.inverse(phi)[0], z, rtol=0, atol=1e-10)


def test_bad_spline_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="bins = 0"):
        build_flow(FlowSpec(coupling="spline", layers=2, hidden=(4,), kernel=3, bins=0))
    with pytest.raises(ValueError, match="kernel = 4"):
        build_flow(FlowSpec(coupling="affine", layers=2, hidden=(4,), kernel=4))
