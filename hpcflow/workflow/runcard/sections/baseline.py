"""``[baseline]``: the HMC baseline that ``hpcflow run`` samples beside a flow sampler (overrides)."""

from __future__ import annotations

from hpcflow.workflow.runcard.fields import INT_MAX, Field
from hpcflow.workflow.runcard.section import Section

__all__ = ["SECTION"]

SECTION = Section(
    "baseline",
    {
        "trajectories": Field("int", required=False, minimum=1),
        "thermalization": Field("int", required=False, default=100, minimum=0),
        "tau": Field("float", required=False, default=1.0, minimum=0.0, exclusive_min=True),
        "steps": Field("int", required=False, default=10, minimum=1),
        "integrator": Field("str", required=False, default="omelyan", choices=("leapfrog", "omelyan")),
        "target_acceptance": Field(
            "float", required=False, default=0.9, minimum=0.0, exclusive_min=True, maximum=1.0, exclusive_max=True
        ),
        "seed": Field("int", required=False, minimum=0, maximum=INT_MAX),
    },
    presence="optional",
)
