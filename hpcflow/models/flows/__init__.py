"""Normalizing flows for scalar fields: coupling layers on checkerboard sublattices, CNN conditioners
on the frozen sublattice, a learned momentum-space Gaussian layer, a learned map of the zero mode."""

from hpcflow.models.flows.coupling import AffineCoupling, CouplingLayer, GlobalRescaling
from hpcflow.models.flows.fourier import MomentumScaling
from hpcflow.models.flows.flow import LAYERS, Flow, FlowSpec, build_flow
from hpcflow.models.flows.loss import effective_sample_size, imh_acceptance, reverse_kl
from hpcflow.models.flows.prior import NormalPrior
from hpcflow.models.flows.spline import SplineCoupling, rational_quadratic_spline
from hpcflow.models.flows.zero_mode import ZeroModeMap

__all__ = [
    "AffineCoupling",
    "CouplingLayer",
    "Flow",
    "FlowSpec",
    "GlobalRescaling",
    "LAYERS",
    "MomentumScaling",
    "NormalPrior",
    "SplineCoupling",
    "ZeroModeMap",
    "build_flow",
    "effective_sample_size",
    "imh_acceptance",
    "rational_quadratic_spline",
    "reverse_kl",
]
