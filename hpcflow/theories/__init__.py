"""Lattice actions, forces and observables."""

from hpcflow.theories.action import Action
from hpcflow.theories.phi4 import (
    Phi4Action,
    energy_density,
    free_propagator,
    magnetization,
    timeslice_correlator,
)

__all__ = sorted(
    [
        "Action",
        "Phi4Action",
        "energy_density",
        "free_propagator",
        "magnetization",
        "timeslice_correlator",
    ]
)
