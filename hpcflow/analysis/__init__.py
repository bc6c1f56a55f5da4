"""Statistical analysis: Gamma method, observables, correlators, reports."""

from hpcflow.analysis.cost import COST_DEFINITION, cost_per_independent_config
from hpcflow.analysis.correlators import CorrelatorAnalysis, analyze_correlator, cosh_fit, effective_mass
from hpcflow.analysis.gamma import GammaResult, autocovariance, gamma_method
from hpcflow.analysis.observables import OBSERVABLES, gauge_observables, phi4_observables, phi4_reweighted

__all__ = [
    "COST_DEFINITION",
    "CorrelatorAnalysis",
    "GammaResult",
    "OBSERVABLES",
    "analyze_correlator",
    "autocovariance",
    "cosh_fit",
    "cost_per_independent_config",
    "effective_mass",
    "gamma_method",
    "gauge_observables",
    "phi4_observables",
    "phi4_reweighted",
]
