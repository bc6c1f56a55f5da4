"""``[solve]``: Dirac-operator solves on a stored gauge configuration (a card of its own)."""

from __future__ import annotations

from hpcflow.workflow.runcard.fields import INT_MAX, Field
from hpcflow.workflow.runcard.section import Section

__all__ = ["SECTION"]

SECTION = Section(
    "solve",
    {
        "configs": Field("str", hint='e.g. configs = "runs/su3_16x8x8x8_b5.8/configs.h5"'),
        "chain": Field("int", required=False, default=0, minimum=0),
        "step": Field("int", required=False, default=-1),
        "masses": Field("float_list", hint="e.g. masses = [-0.5, -0.45, -0.4]"),
        "csw": Field("float", required=False, default=0.0, minimum=0.0),
        "antiperiodic_time": Field("bool", required=False, default=True),
        "solver": Field("str", choices=("fgmres", "bicgstab", "cg")),
        "tol": Field("float", minimum=0.0, exclusive_min=True, hint="e.g. tol = 1e-8"),
        "maxiter": Field("int", minimum=1),
        "restart": Field("int", required=False, default=30, minimum=1),
        "sources": Field("int", required=False, default=2, minimum=1),
        "seed": Field("int", minimum=0, maximum=INT_MAX),
        "dir": Field("str"),
    },
    presence="optional",
)
