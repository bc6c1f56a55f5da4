"""``[analysis]``: settings of the analysis stage (not part of a run's identity)."""

from __future__ import annotations

from hpcflow.workflow.runcard.fields import Field
from hpcflow.workflow.runcard.section import Context, Section

__all__ = ["SECTION"]


def rules(ctx: Context) -> None:
    a, shape = ctx.section("analysis"), ctx.section("theory").get("shape")
    kind = ctx.section("sampler").get("kind")
    if a.get("reweight") and kind not in (None, "nmcmc"):
        ctx.add(f"[analysis].reweight = true: reweighting needs flow proposals ([sampler].kind = 'nmcmc', not {kind!r})")
    if not shape or ctx.bad("analysis", "t_min", "t_max"):
        return
    half = shape[0] // 2
    t_max = a.get("t_max", half)
    if "t_max" in a and t_max > half:
        ctx.add(f"[analysis].t_max = {t_max}: must be <= L0/2 = {half}")
    elif a.get("t_min", 1) >= t_max:
        ctx.add(f"[analysis].t_min = {a['t_min']}: must be < {'t_max' if 't_max' in a else 'L0/2'} = {t_max}")


SECTION = Section(
    "analysis",
    {
        "t_min": Field("int", required=False, default=1, minimum=1),
        "t_max": Field("int", required=False, minimum=2, hint="default L0/2"),
        "reweight": Field("bool", required=False, default=False),
    },
    rules=rules,
)
