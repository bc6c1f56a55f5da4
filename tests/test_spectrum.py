"""The left edge of the Wilson spectrum, m_crit = -min Re lambda(D(0)): the free field's exact
value, and Arnoldi against the dense spectrum on a rough field."""

from __future__ import annotations

import math

import pytest
import torch

from hpcflow.dirac import spectrum
from hpcflow.dirac.spectrum import smallest_real_part
from hpcflow.dirac.wilson import WilsonDirac
from hpcflow.theories.gauge import identity_links, random_su_n, u1_links

CPU = torch.device("cpu")


@pytest.mark.parametrize("arnoldi", [False, True])
def test_the_free_field_edge_is_one_minus_cos_pi_over_t(arnoldi: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Free Wilson D(p) = m + sum(1 - cos p) + i sum gamma sin p: with antiperiodic time the
    lowest momentum is p0 = pi/T, so min Re lambda = 1 - cos(pi/T); periodic: 0 (the zero mode)."""
    if arnoldi:
        monkeypatch.setattr(spectrum, "DENSE_UNKNOWNS", 0)
    for antiperiodic, exact in ((True, 1 - math.cos(math.pi / 6)), (False, 0.0)):
        op = WilsonDirac(identity_links(1, (6, 8), 1)[0], mass=0.0, antiperiodic_time=antiperiodic)
        assert smallest_real_part(op, (6, 8, 2, 1), torch.complex128, CPU) == pytest.approx(exact, abs=1e-10)


@pytest.mark.parametrize("case", ["u1", "su3"])
def test_arnoldi_finds_the_dense_edge_on_a_rough_field(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    gen = torch.Generator().manual_seed(4)
    if case == "u1":
        links, site = u1_links(0.8 * torch.randn((1, 2, 8, 8), generator=gen, dtype=torch.float64))[0], (8, 8, 2, 1)
    else:
        links, site = random_su_n((4, 4, 2, 2, 2), 3, gen), (4, 2, 2, 2, 4, 3)
    op = WilsonDirac(links, mass=0.0, csw=1.0 if case == "su3" else 0.0, antiperiodic_time=True)
    dense = smallest_real_part(op, site, torch.complex128, CPU)
    monkeypatch.setattr(spectrum, "DENSE_UNKNOWNS", 0)
    assert smallest_real_part(op, site, torch.complex128, CPU) == pytest.approx(dense, abs=1e-8)
    assert abs(dense) > 0.05  # a rough field moves the edge off the free value
