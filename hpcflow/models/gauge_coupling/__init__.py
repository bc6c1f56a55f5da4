"""Gauge-equivariant coupling flows of 2D U(1) link angles (Kanwar et al. 2020): circular
splines of plaquettes conditioned on frozen plaquettes."""

from hpcflow.models.gauge_coupling.circular import circular_spline, wrap_angle
from hpcflow.models.gauge_coupling.flow import GaugeCouplingFlow, GaugeCouplingSpec, build_gauge_coupling
from hpcflow.models.gauge_coupling.layer import PERIOD, PlaquetteCoupling

__all__ = ["GaugeCouplingFlow", "GaugeCouplingSpec", "PERIOD", "PlaquetteCoupling", "build_gauge_coupling",
           "circular_spline", "wrap_angle"]
