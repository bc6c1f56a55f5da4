"""``[analysis]``: settings of the analysis stage (not part of a run's identity)."""

from __future__ import annotations

from hpcflow.workflow.runcard.fields import Field
from hpcflow.workflow.runcard.section import Context, Section

__all__ = ["SECTION"]


def rules(ctx: Context) -> None:
    a, shape = ctx.section("analysis"), ctx.section("theory").get("shape")
    if shape and "t_min" in a and a["t_min"] >= shape[0] // 2:
        ctx.add(f"[analysis].t_min = {a['t_min']}: must be < L0/2 = {shape[0] // 2}")


SECTION = Section(
    "analysis",
    {
        "t_min": Field("int", required=False, default=1, minimum=1),
        "reweight": Field("bool", required=False, default=False),
    },
    rules=rules,
)
