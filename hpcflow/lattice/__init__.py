"""Lattice geometry and random-number streams."""

from hpcflow.lattice.geometry import lattice_momenta, shift
from hpcflow.lattice.rng import ChainRNG, chain_seed

__all__ = ["ChainRNG", "chain_seed", "lattice_momenta", "shift"]
