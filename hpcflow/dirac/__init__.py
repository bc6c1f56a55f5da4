"""Dirac operators (Wilson, Wilson-clover) and Krylov solvers."""

from hpcflow.dirac.gamma import GAMMA5_2D, GAMMA5_4D, GAMMA_2D, GAMMA_4D, gamma_basis, sigma_munu
from hpcflow.dirac.solvers import SolveInfo, bicgstab, cg_normal, fgmres
from hpcflow.dirac.wilson import WilsonDirac, clover_field_strength

__all__ = [
    "GAMMA5_2D",
    "GAMMA5_4D",
    "GAMMA_2D",
    "GAMMA_4D",
    "SolveInfo",
    "WilsonDirac",
    "bicgstab",
    "cg_normal",
    "clover_field_strength",
    "fgmres",
    "gamma_basis",
    "sigma_munu",
]
