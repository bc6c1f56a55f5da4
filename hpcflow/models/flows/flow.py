r"""Flows composed of coupling layers, built from a run-card description.

:math:`\phi = f(z)`, :math:`z \sim r`, :math:`\log q(\phi) = \log r(z) - \log|\det \partial f/\partial z|`.
Layers alternate checkerboard parity; an optional learned momentum-space scaling
(:mod:`~hpcflow.models.flows.fourier`) comes first, an optional global rescaling after the couplings
and an optional map of the zero mode (:mod:`~hpcflow.models.flows.zero_mode`) last. Inside the flow
the field is held as its two packed sublattices (:class:`~hpcflow.lattice.sublattice.SplitField`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from hpcflow.lattice.sublattice import SplitField
from hpcflow.models.flows.coupling import AffineCoupling, CouplingLayer, GlobalRescaling
from hpcflow.models.flows.fourier import MomentumScaling
from hpcflow.models.flows.prior import NormalPrior
from hpcflow.models.flows.spline import SplineCoupling
from hpcflow.models.flows.zero_mode import ZeroModeMap

__all__ = ["LAYERS", "Flow", "FlowSpec", "build_flow"]

LAYERS: dict[str, type[CouplingLayer]] = {"affine": AffineCoupling, "spline": SplineCoupling}


@dataclass(frozen=True)
class FlowSpec:
    """Architecture of a flow (the ``[model]`` section of a run card).

    Attributes:
        coupling: one kind (a key of :data:`LAYERS`) for every layer, or one per layer.
        layers: number of coupling layers (parity alternates, starting with 0).
        hidden: hidden channels of each conditioner.
        kernel: conditioner kernel size (odd).
        activation: conditioner activation.
        equivariant: exact Z2 equivariance.
        rescaling: a learned global rescaling after the couplings.
        fourier: a learned momentum-space scaling (:class:`MomentumScaling`) before the couplings.
        zero_mode: a learned odd map of the magnetization per site (:class:`ZeroModeMap`) at the end.
        bins, bound: spline bins and interval half-width.
    """

    coupling: str | tuple[str, ...]
    layers: int
    hidden: tuple[int, ...]
    kernel: int
    activation: str = "leaky_relu"
    equivariant: bool = True
    rescaling: bool = False
    fourier: bool = False
    zero_mode: bool = False
    bins: int = 8
    bound: float = 5.0
    kind = "flow"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FlowSpec:
        """Inverse of :meth:`to_dict` (lists become tuples; a ``kind`` key is dropped)."""
        d = {k: v for k, v in d.items() if k != "kind"}
        coupling = d["coupling"] if isinstance(d["coupling"], str) else tuple(d["coupling"])
        return cls(**{**d, "coupling": coupling, "hidden": tuple(d["hidden"])})

    def describe(self) -> str:
        """A few words for plot titles and logs."""
        return f"{self.layers} layers"

    def proposal_buffers(self) -> float:
        """Field-sized buffers per proposal during a flow evaluation without gradients: the field,
        its log-det and the conditioners' widest layer."""
        return 4.0 + 2.0 * max(self.hidden, default=1)

    def kinds(self) -> list[str]:
        """Kind of each coupling layer."""
        if isinstance(self.coupling, str):
            return [self.coupling] * self.layers
        return list(self.coupling)

    def roughness(self) -> str | None:
        """Why the map is not twice continuously differentiable (``None`` if it is). Flow HMC needs
        it: its force is a gradient through the map and its log-det, and where that jumps (ReLU
        kinks of the conditioners, the knots of the only-C^1 rational-quadratic splines) the
        integrators lose their order (dH no longer falls as eps^2)."""
        if any(kind != "affine" for kind in self.kinds()):
            return "the rational-quadratic splines are only C^1 (their log-det jumps at the knots)"
        if self.hidden and self.activation == "leaky_relu":
            return "the leaky-ReLU conditioners have kinks"
        return None

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["coupling"] = self.coupling if isinstance(self.coupling, str) else list(self.coupling)
        out["hidden"] = list(self.hidden)
        return out


class Flow(nn.Module):
    """A normalizing flow :math:`z \\mapsto \\phi` with a Gaussian prior."""

    def __init__(self, layers: list[nn.Module], spec: FlowSpec) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.spec = spec
        self.prior = NormalPrior()

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(phi, log|det df/dz|)``."""
        field = SplitField.split(z)
        logdet = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for layer in self.layers:
            field, ld = layer(field)
            logdet = logdet + ld
        return field.join(), logdet

    def inverse(self, phi: Tensor) -> tuple[Tensor, Tensor]:
        """``(z, log|det df^{-1}/dphi|)``."""
        field = SplitField.split(phi)
        logdet = torch.zeros(phi.shape[0], dtype=phi.dtype, device=phi.device)
        for layer in reversed(self.layers):
            field, ld = layer.inverse(field)
            logdet = logdet + ld
        return field.join(), logdet

    def push(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Fields and their model log-density: ``(phi, log q(phi))`` for latent ``z``."""
        phi, logdet = self(z)
        return phi, self.prior.log_prob(z) - logdet

    def log_prob(self, phi: Tensor) -> Tensor:
        """:math:`\\log q(\\phi) = \\log r(f^{-1}(\\phi)) + \\log|\\det \\partial f^{-1}/\\partial\\phi|`."""
        z, logdet = self.inverse(phi)
        return self.prior.log_prob(z) + logdet


def build_flow(spec: FlowSpec) -> Flow:
    """Instantiate the flow described by ``spec`` (float32 parameters; call ``.double()`` as needed)."""
    kinds = spec.kinds()
    if len(kinds) != spec.layers:
        raise ValueError(f"coupling lists {len(kinds)} kinds for {spec.layers} layers")
    layers: list[nn.Module] = [MomentumScaling()] if spec.fourier else []
    for i, kind in enumerate(kinds):
        if kind not in LAYERS:
            raise ValueError(f"coupling = {kind!r}: expected one of {sorted(LAYERS)}")
        kwargs: dict[str, Any] = dict(parity=i % 2, hidden=list(spec.hidden), kernel=spec.kernel,
                                      equivariant=spec.equivariant, activation=spec.activation)
        if kind == "spline":
            kwargs.update(bins=spec.bins, bound=spec.bound)
        layers.append(LAYERS[kind](**kwargs))
    if spec.rescaling:
        layers.append(GlobalRescaling())
    if spec.zero_mode:
        layers.append(ZeroModeMap())
    return Flow(layers, spec)
