"""Lattice actions, forces and observables: phi^4 and gauge fields."""

from hpcflow.theories.action import Action
from hpcflow.theories.gauge import (
    U1Action,
    WilsonGaugeAction,
    gauge_transform,
    reunitarize,
    topological_charge,
    wilson_loop,
)
from hpcflow.theories.phi4 import (
    Phi4Action,
    energy_density,
    free_propagator,
    magnetization,
    timeslice_correlator,
)

__all__ = [
    "Action",
    "Phi4Action",
    "U1Action",
    "WilsonGaugeAction",
    "energy_density",
    "free_propagator",
    "gauge_transform",
    "magnetization",
    "reunitarize",
    "timeslice_correlator",
    "topological_charge",
    "wilson_loop",
]
