"""Gauge-equivariant preconditioners for the Dirac operator: PTC/LPTC layers, models, multigrid."""

from hpcflow.models.precond.layers import LPTC, PTC, Parallel, PrecondLayer, Residual, Sequence, TransportCache
from hpcflow.models.precond.model import NeuralPreconditioner, PrecondSpec, build_model, dirac_flops_per_site

__all__ = [
    "LPTC",
    "NeuralPreconditioner",
    "PTC",
    "Parallel",
    "PrecondLayer",
    "PrecondSpec",
    "Residual",
    "Sequence",
    "TransportCache",
    "build_model",
    "dirac_flops_per_site",
]
