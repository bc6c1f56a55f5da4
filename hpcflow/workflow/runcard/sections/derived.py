"""``[baseline]``, ``[fhmc]``, ``[nmcmc]``: the samplers that ``hpcflow run`` runs beside the card's
own (``[workflow].samplers``), each into a run directory of its own inside the card's: the HMC
baseline (``baseline_hmc/``) and the flow samplers with the card's flow (``fhmc/``, ``nmcmc/``).
Every key is optional; what is not given comes from the card's ``[sampler]`` or a default
(:mod:`hpcflow.workflow.derived`). A section for the card's own kind, or for a sampler the
workflow does not run, is refused."""

from __future__ import annotations

from hpcflow.workflow.runcard.fields import INT_MAX, Field
from hpcflow.workflow.runcard.section import Section

__all__ = ["BASELINE", "FHMC", "NMCMC", "SECTIONS"]

_TARGET = Field("float", required=False, minimum=0.0, exclusive_min=True, maximum=1.0, exclusive_max=True)
_HMC = {
    "trajectories": Field("int", required=False, minimum=1, hint="default: the card's updates"),
    "thermalization": Field("int", required=False, default=100, minimum=0),
    "tau": Field("float", required=False, default=1.0, minimum=0.0, exclusive_min=True),
    "steps": Field("int", required=False, default=10, minimum=1),
    "seed": Field("int", required=False, minimum=0, maximum=INT_MAX),
}

BASELINE = Section("baseline", {
    **_HMC,
    "integrator": Field("str", required=False, default="omelyan", choices=("leapfrog", "omelyan")),
    "target_acceptance": Field("float", required=False, default=0.9, minimum=0.0, exclusive_min=True, maximum=1.0,
                               exclusive_max=True),
}, presence="optional")
FHMC = Section("fhmc", {
    **_HMC,
    "integrator": Field("str", required=False, default="leapfrog", choices=("leapfrog", "omelyan")),
    "target_acceptance": _TARGET,
}, presence="optional")
NMCMC = Section("nmcmc", {
    "updates": Field("int", required=False, minimum=1, hint="default: the card's updates"),
    "thermalization": Field("int", required=False, default=0, minimum=0),
    "chunk": Field("int", required=False, default=64, minimum=1),
    "seed": Field("int", required=False, minimum=0, maximum=INT_MAX),
}, presence="optional")
SECTIONS = (BASELINE, FHMC, NMCMC)
