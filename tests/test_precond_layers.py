"""Preconditioner layers: gauge equivariance of every layer and of whole models (2D U(1), 4D
SU(3), complex128 to 1e-12), the Wilson operator as a one-hop PTC exactly, transports computed
once per input, paths, and volume independence of PTC weights."""

from __future__ import annotations

import math

import pytest
import torch

from conftest import generator
from hpcflow.dirac import GAMMA_2D, GAMMA_4D, WilsonDirac
from hpcflow.dirac.transport import Transporter, one_hop_paths, paths_up_to
from hpcflow.models.precond import (
    LPTC,
    PTC,
    NeuralPreconditioner,
    Parallel,
    PrecondSpec,
    Residual,
    Sequence,
    TransportCache,
    build_model,
)
from hpcflow.theories.gauge import gauge_transform, random_gauge, random_su_n, u1_links

CASES = {"u1-2d": ((6, 4), 2, 1), "su3-4d": ((4, 3, 3, 4), 4, 3)}


def _links(shape: tuple[int, ...], colours: int, seed: int = 1) -> torch.Tensor:
    if colours == 1:
        theta = torch.empty(2, *shape, dtype=torch.float64).uniform_(-math.pi, math.pi, generator=generator(seed))
        return u1_links(theta[None])[0]
    return random_su_n((len(shape), *shape), colours, generator(seed))


def _gauge(shape: tuple[int, ...], colours: int) -> torch.Tensor:
    if colours == 1:
        angle = torch.empty(*shape, dtype=torch.float64).uniform_(-math.pi, math.pi, generator=generator(9))
        return torch.polar(torch.ones_like(angle), angle)[None, ..., None, None]
    return random_gauge(1, shape, colours, generator(9))


def _field(batch: int, channels: int, shape: tuple[int, ...], spin: int, colours: int, seed: int = 3) -> torch.Tensor:
    real = torch.randn(batch, channels, *shape, spin, colours, 2, generator=generator(seed), dtype=torch.float64)
    return torch.view_as_complex(real)


def _layers(shape: tuple[int, ...], spin: int) -> dict[str, object]:
    dim = len(shape)
    torch.manual_seed(4)
    two_hop = paths_up_to(dim, 2)
    return {
        "ptc": PTC(2, 3, one_hop_paths(dim), spin),
        "ptc-2hop": PTC(2, 2, two_hop, spin),
        "lptc": LPTC(2, 3, one_hop_paths(dim), spin, shape),
        "dense": PTC(2, 3, [()], spin),
        "parallel": Parallel([PTC(2, 2, one_hop_paths(dim), spin), PTC(2, 2, [(), (1, 2)], spin)]),
        "residual": Residual(Sequence([PTC(2, 3, one_hop_paths(dim), spin), PTC(3, 2, [(), (-1,)], spin)])),
    }


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", ["ptc", "ptc-2hop", "lptc", "dense", "parallel", "residual"])
def test_every_layer_is_gauge_equivariant(case: str, name: str) -> None:
    """layer(U^Omega)(Omega psi) = Omega layer(U)(psi)."""
    shape, spin, colours = CASES[case]
    layer = _layers(shape, spin)[name]
    links = _links(shape, colours)
    omega = _gauge(shape, colours)
    links_g = gauge_transform(links[None], omega)[0]
    psi = _field(2, layer.c_in, shape, spin, colours)
    rotate = lambda v: v @ omega[0].transpose(-1, -2)  # noqa: E731 - Omega(x) on colour
    out = layer(psi, TransportCache(Transporter(links)))
    out_g = layer(rotate(psi), TransportCache(Transporter(links_g)))
    torch.testing.assert_close(out_g, rotate(out), rtol=0, atol=1e-12)
    assert out.abs().max() > 0.1


@pytest.mark.parametrize("case", sorted(CASES))
def test_whole_models_are_gauge_equivariant(case: str) -> None:
    shape, spin, colours = CASES[case]
    spec = PrecondSpec("ptc", (1, 2, 2, 1), 1, len(shape), spin, colours)
    model = build_model(spec)
    links = _links(shape, colours)
    omega = _gauge(shape, colours)
    rotate = lambda v: v @ omega[0].transpose(-1, -2)  # noqa: E731
    psi = _field(3, 1, shape, spin, colours)[:, 0]
    m = NeuralPreconditioner(model, links, clover=False)
    m_g = NeuralPreconditioner(model, gauge_transform(links[None], omega)[0], clover=False)
    torch.testing.assert_close(m_g(rotate(psi)), rotate(m(psi)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("case, antiperiodic", [("u1-2d", False), ("su3-4d", True)])
def test_a_one_hop_ptc_with_the_wilson_matrices_is_the_wilson_operator(case: str, antiperiodic: bool) -> None:
    """W_() = (d + m) 1, W_(+mu) = -(1 - gamma_mu)/2, W_(-mu) = -(1 + gamma_mu)/2 on the operator's links."""
    shape, spin, colours = CASES[case]
    dim, mass = len(shape), -0.3
    op = WilsonDirac(_links(shape, colours), mass=mass, antiperiodic_time=antiperiodic)
    gammas = (GAMMA_4D if dim == 4 else GAMMA_2D).to(torch.complex128)
    eye = torch.eye(spin, dtype=torch.complex128)
    paths = one_hop_paths(dim)
    layer = PTC(1, 1, paths, spin)
    with torch.no_grad():
        for i, path in enumerate(paths):
            if not path:
                w = (dim + mass) * eye
            else:
                mu = abs(path[0]) - 1
                w = -0.5 * (eye - gammas[mu] if path[0] > 0 else eye + gammas[mu])
            layer.weight[0, 0, i] = w
    psi = _field(2, 1, shape, spin, colours)
    out = layer(psi, TransportCache(Transporter(op.links)))
    torch.testing.assert_close(out[:, 0], op(psi[:, 0]), rtol=0, atol=1e-13)
    assert NeuralPreconditioner(Sequence([layer]), op.links, clover=False).work == pytest.approx(1.0)


class _CountingTransporter(Transporter):
    def __init__(self, links: torch.Tensor) -> None:
        super().__init__(links)
        self.count = 0

    def hop(self, psi: torch.Tensor, step: int) -> torch.Tensor:
        self.count += 1
        return super().hop(psi, step)


def test_transports_of_an_input_are_computed_once() -> None:
    """Two parallel branches with overlapping paths, and two-hop paths sharing their last hop:
    each (input, partial path) is transported once."""
    shape, spin, colours = CASES["u1-2d"]
    transporter = _CountingTransporter(_links(shape, colours))
    paths = paths_up_to(2, 2)  # 1 + 4 + 12 paths; 4 + 12 distinct partial paths
    layer = Parallel([PTC(1, 1, paths, spin), PTC(1, 1, one_hop_paths(2), spin)])
    layer(_field(1, 1, shape, spin, colours), TransportCache(transporter))
    assert len(paths) == 17 and transporter.count == 16
    assert transporter.hops(paths) == 16


def test_paths_and_their_transport() -> None:
    assert one_hop_paths(2) == [(), (1,), (-1,), (2,), (-2,)]
    assert (1, -1) not in paths_up_to(2, 2) and (1, 2) in paths_up_to(2, 2)
    shape, spin, colours = CASES["su3-4d"]
    links = _links(shape, colours)
    psi = _field(1, 1, shape, spin, colours)[:, 0]
    t = Transporter(links)
    (two,) = t.transport(psi, [(1, 2)])
    # (T_(+1,+2) psi)(x) = U_0(x) U_1(x + 0) psi(x + 0 + 1) at one site, by hand
    x = (1, 2, 0, 3)
    x0 = (2, 2, 0, 3)
    x01 = (2, 0, 0, 3)
    expect = links[(0, *x)] @ links[(1, *x0)] @ psi[(0, *x01)].T
    torch.testing.assert_close(two[(0, *x)], expect.T, rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="hop 5"):
        t.hop(psi, 5)


def test_ptc_weights_do_not_depend_on_the_volume_and_run_in_complex64() -> None:
    spec = PrecondSpec("ptc", (1, 2, 1), 1, 2, 2, 1)
    model = build_model(spec, torch.complex64)
    for shape in ((4, 4), (8, 12)):
        links = _links(shape, 1).to(torch.complex64)
        v = _field(2, 1, shape, 2, 1)[:, 0].to(torch.complex64)
        out = NeuralPreconditioner(model, links, clover=False)(v)
        assert out.shape == v.shape and out.dtype == torch.complex64
    lptc = LPTC(1, 1, one_hop_paths(2), 2, (4, 4))
    with pytest.raises(ValueError, match=r"LPTC weights are for lattice \(4, 4\)"):
        lptc(_field(1, 1, (8, 8), 2, 1), TransportCache(Transporter(_links((8, 8), 1))))
