"""Gauge gradient-flow maps (Bacchio et al. 2022): Wilson-loop families, coefficients in flow
time, the U(1) and SU(N) maps on 2D lattices, Luscher's perturbative map."""

from hpcflow.models.gradflow.coefficients import COEFFICIENTS, AffineCoefficients, SplineCoefficients
from hpcflow.models.gradflow.haar import HaarSUN, HaarU1
from hpcflow.models.gradflow.loops import FAMILIES, LOOPS, PRODUCTS, REPRESENTATIONS, Loop, TraceProduct, loops_named, polyominoes, rectangle
from hpcflow.models.gradflow.luscher import GROUP_N, luscher_coefficients
from hpcflow.models.gradflow.map import GradientFlow
from hpcflow.models.gradflow.spec import INITS, GradFlowSpec, build_gradflow
from hpcflow.models.gradflow.sun import SUNGradientFlow, traceless_antihermitian
from hpcflow.models.gradflow.u1 import U1GradientFlow

__all__ = [
    "AffineCoefficients",
    "COEFFICIENTS",
    "FAMILIES",
    "GROUP_N",
    "GradFlowSpec",
    "GradientFlow",
    "HaarSUN",
    "HaarU1",
    "INITS",
    "LOOPS",
    "Loop",
    "PRODUCTS",
    "REPRESENTATIONS",
    "SUNGradientFlow",
    "SplineCoefficients",
    "TraceProduct",
    "U1GradientFlow",
    "build_gradflow",
    "loops_named",
    "luscher_coefficients",
    "polyominoes",
    "rectangle",
    "traceless_antihermitian",
]
