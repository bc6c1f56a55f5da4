"""Gauge gradient-flow maps (Bacchio et al. 2022): Wilson-loop families and the U(1) map."""

from hpcflow.models.gradflow.loops import LOOPS, Loop, loops_named, rectangle
from hpcflow.models.gradflow.u1 import AffineCoefficients, U1GradientFlow

__all__ = ["LOOPS", "AffineCoefficients", "Loop", "U1GradientFlow", "loops_named", "rectangle"]
