"""hpcflow: machine learning for lattice field theory at supercomputer scale.

Layers (each imports only from the ones before it): ``lattice``, ``theories``, ``dirac``,
``models``, ``samplers``, ``analysis``, ``parallel``, ``io``, ``workflow``, ``cli``.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
