r"""Preconditioner models built from a description, and their use inside FGMRES.

A :class:`PrecondSpec` describes a chain of PTC (or LPTC) layers: the channels between them
(``channels = (1, 1)`` is the one-layer model of Lehner & Wettig, ``(1, 2, 2, 2, 1)`` a deeper
four-layer smoother) and the paths of each layer (all paths of up to ``hops`` hops, without
immediate backtracking: 1 + 2d paths for one hop). The layers are linear in the field, so the
model is a linear map :math:`M(U)` that approximates :math:`D^{-1}`. :class:`NeuralPreconditioner`
binds it to one gauge field and applies it to FGMRES's vectors.

Work: a model's floating-point operations per site, counted as the layers count them (one
colour matrix-vector product per hop, one complex spin matrix per path and channel pair), divided
by those of the Wilson(-clover) operator counted the same way (the one-hop PTC that reproduces
it, plus the clover matrix): the cost in applications of D that the solver reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from hpcflow.dirac.transport import Transporter, one_hop_paths, paths_up_to
from hpcflow.models.precond.layers import LPTC, PTC, PrecondLayer, Sequence, TransportCache

__all__ = ["NeuralPreconditioner", "PrecondSpec", "build_model", "dirac_flops_per_site"]


@dataclass(frozen=True)
class PrecondSpec:
    """Architecture of a preconditioner model (the model keys of ``[precond]``).

    Attributes:
        kind: ``"ptc"`` (weights shared by all sites: any volume) or ``"lptc"`` (per site).
        channels: channels from the input to the output, both 1.
        hops: paths of up to this many hops in every layer.
        dim, spin, colours: the Dirac operator's dimension, spin and colour (4, 4, 3 or 2, 2, 1).
        shape: the lattice (``lptc`` only).
    """

    kind: str
    channels: tuple[int, ...]
    hops: int
    dim: int
    spin: int
    colours: int
    shape: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        return {**asdict(self), "channels": list(self.channels), "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, d: dict) -> PrecondSpec:
        return cls(**{**d, "channels": tuple(d["channels"]), "shape": tuple(d.get("shape", ()))})


def build_model(spec: PrecondSpec, dtype: torch.dtype = torch.complex128) -> Sequence:
    """The layers of ``spec`` (random weights)."""
    if spec.channels[0] != 1 or spec.channels[-1] != 1 or len(spec.channels) < 2:
        raise ValueError(f"channels = {list(spec.channels)}: from 1 input channel to 1 output channel")
    paths = paths_up_to(spec.dim, spec.hops)
    layers: list[PrecondLayer] = []
    for c_in, c_out in zip(spec.channels[:-1], spec.channels[1:]):
        if spec.kind == "lptc":
            layers.append(LPTC(c_in, c_out, paths, spec.spin, spec.shape, dtype))
        else:
            layers.append(PTC(c_in, c_out, paths, spec.spin, dtype))
    return Sequence(layers)


def dirac_flops_per_site(dim: int, spin: int, colours: int, clover: bool) -> float:
    """The Wilson(-clover) operator's flops per site in the layers' counting."""
    wilson = PTC(1, 1, one_hop_paths(dim), spin, torch.complex64).flops_per_site(colours)
    return wilson + (8.0 * (spin * colours) ** 2 if clover else 0.0)


class NeuralPreconditioner:
    """``M(v)`` of a model on one gauge field, for FGMRES (``work`` in applications of D).

    Arguments:
        model: the layers.
        links: the operator's links (boundary phases included), ``(d, *L, N, N)``.
        clover: whether D has a clover term (for the work in applications of D).
    """

    def __init__(self, model: PrecondLayer, links: Tensor, clover: bool) -> None:
        self.model = model.eval()
        self.transporter = Transporter(links)
        dim, colours = links.shape[0], links.shape[-1]
        spin = getattr(model.layers[0], "spin", 4) if isinstance(model, Sequence) else 4
        self.work = model.flops_per_site(colours) / dirac_flops_per_site(dim, spin, colours, clover)

    def apply(self, v: Tensor) -> Tensor:
        """``(B, *L, S, N) -> (B, *L, S, N)``, differentiable (training)."""
        return self.model(v.unsqueeze(1), TransportCache(self.transporter))[:, 0]

    def __call__(self, v: Tensor) -> Tensor:
        with torch.no_grad():
            return self.apply(v)
