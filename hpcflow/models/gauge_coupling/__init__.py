"""Gauge-equivariant coupling flows of 2D U(1) link angles (Kanwar et al. 2020): circular
splines of plaquettes conditioned on frozen plaquettes, after the exact von Mises map of the
free plaquettes if asked."""

from hpcflow.models.gauge_coupling.circular import circular_spline, wrap_angle
from hpcflow.models.gauge_coupling.flow import GaugeCouplingFlow, GaugeCouplingSpec, build_gauge_coupling
from hpcflow.models.gauge_coupling.layer import PERIOD, PlaquetteCoupling
from hpcflow.models.gauge_coupling.plaquette_map import VonMisesPlaquetteMap, tree_link_changes
from hpcflow.models.gauge_coupling.von_mises import VonMises

__all__ = ["GaugeCouplingFlow", "GaugeCouplingSpec", "PERIOD", "PlaquetteCoupling", "VonMises", "VonMisesPlaquetteMap",
           "build_gauge_coupling", "circular_spline", "tree_link_changes", "wrap_angle"]
