r"""The gauge-equivariant coupling flow of 2D U(1) (Kanwar et al. 2020): Haar-random links pushed
through plaquette coupling layers (:mod:`.layer`), optionally after the exact von Mises map of the
free plaquettes (:mod:`.plaquette_map`, ``plaquette_map = true``), which the layers, a fresh
flow's identity, then refine; and its architecture (``[model]`` with ``kind = "gauge_coupling"``).

Layer :math:`i` updates the links of direction :math:`\mu = i \bmod 2` with offset
:math:`\lfloor i/2\rfloor \bmod 4`, so 8 consecutive layers move every link once. The density is
:math:`\log q(U) = \log q_0(U_0) - \sum_i \log\det J_i` with the Haar measure
:math:`\log q_0 = -2V\log 2\pi` (:class:`~hpcflow.models.gradflow.haar.HaarU1`). The weights do
not depend on the lattice, so a flow trained on one volume runs on any other whose extents are
multiples of 4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hpcflow.models.gauge_coupling.layer import PERIOD, PlaquetteCoupling
from hpcflow.models.gauge_coupling.plaquette_map import VonMisesPlaquetteMap
from hpcflow.models.gradflow.haar import HaarU1
from hpcflow.models.pushforward import Pushforward

__all__ = ["GaugeCouplingFlow", "GaugeCouplingSpec", "build_gauge_coupling"]


@dataclass(frozen=True)
class GaugeCouplingSpec:
    """Architecture of a gauge-equivariant coupling flow.

    Attributes:
        layers: coupling layers (a multiple of 8 moves every link equally often).
        hidden: channels of each conditioner's hidden convolutions.
        kernel: odd kernel size of the conditioners.
        bins: bins of each circular spline.
        activation: conditioner activation.
        plaquette_map: start with :class:`~.plaquette_map.VonMisesPlaquetteMap` at the card's beta.
    """

    layers: int = 16
    hidden: tuple[int, ...] = (8, 8)
    kernel: int = 3
    bins: int = 8
    activation: str = "leaky_relu"
    plaquette_map: bool = False
    kind = "gauge_coupling"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> GaugeCouplingSpec:
        """From a ``to_dict`` or a ``[model]`` section."""
        fields = {k: v for k, v in d.items() if k != "kind"}
        return cls(**{**fields, "hidden": tuple(fields.get("hidden", cls.hidden))})

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.__dict__, "hidden": list(self.hidden)}

    def describe(self) -> str:
        """A few words for plot titles and logs."""
        start = "von Mises plaquette map + " if self.plaquette_map else ""
        return f"{start}gauge-equivariant coupling flow, {self.layers} layers, hidden {list(self.hidden)}"

    def proposal_buffers(self) -> float:
        """Field-sized buffers per proposal during an evaluation without gradients: links,
        plaquettes, the widest conditioner layer and the spline's ``3 * bins`` logits."""
        return 4.0 + max((*self.hidden, 3 * self.bins))

    def roughness(self) -> str | None:
        """Why the map is not twice differentiable (flow HMC would need it)."""
        return "the circular rational-quadratic splines are only C^1 (their log-det jumps at the knots)"


class GaugeCouplingFlow(Pushforward, nn.Module):
    """Link angles ``(B, 2, L0, L1)`` from Haar-random ones (see the module text); ``push``,
    ``log_prob`` and ``sample``: :class:`~hpcflow.models.pushforward.Pushforward`."""

    prior = HaarU1()

    def __init__(self, spec: GaugeCouplingSpec, beta: float | None = None) -> None:
        super().__init__()
        if spec.layers < 0 or (spec.layers == 0 and not spec.plaquette_map):
            raise ValueError(f"layers = {spec.layers}: need at least 1 (0 with the plaquette map)")
        if spec.plaquette_map and beta is None:
            raise ValueError("the plaquette map needs the theory's beta")
        self.spec = spec
        first = [VonMisesPlaquetteMap(beta)] if spec.plaquette_map else []
        self.layers = nn.ModuleList(first + [
            PlaquetteCoupling(i % 2, (i // 2) % PERIOD, list(spec.hidden), spec.kernel, spec.bins, spec.activation)
            for i in range(spec.layers)])

    def forward(self, theta0: Tensor) -> tuple[Tensor, Tensor]:
        """``(theta, log det J)`` of the map of ``theta0``."""
        return self._through(theta0, self.layers, inverse=False)

    def inverse(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """``(theta0, log det J)``: the preimage and the forward log-det at it."""
        theta0, logdet = self._through(theta, self.layers[::-1], inverse=True)
        return theta0, -logdet

    @staticmethod
    def _through(theta: Tensor, layers: nn.ModuleList, inverse: bool) -> tuple[Tensor, Tensor]:
        logdet = torch.zeros(theta.shape[0], dtype=theta.dtype, device=theta.device)
        for layer in layers:
            theta, increment = layer(theta, inverse=inverse)
            logdet = logdet + increment
        return theta, logdet


def build_gauge_coupling(spec: GaugeCouplingSpec, theory: dict[str, Any]) -> GaugeCouplingFlow:
    """The flow of ``spec`` (its coupling layers the identity at initialization) for a ``u1``
    ``[theory]`` (whose ``beta`` a plaquette map takes)."""
    if theory.get("name", "u1") != "u1":
        raise ValueError(f"[theory].name = {theory['name']!r}: the gauge-equivariant coupling flow is for u1")
    return GaugeCouplingFlow(spec, theory.get("beta"))
