"""``[theory]``: the field theory, its lattice and couplings (phi4 in either form, u1, su2, su3)."""

from __future__ import annotations

from hpcflow.theories.phi4 import Phi4Action
from hpcflow.workflow.runcard.fields import Field
from hpcflow.workflow.runcard.section import Context, Section

__all__ = ["GAUGE_THEORIES", "SECTION"]

GAUGE_THEORIES = ("u1", "su2", "su3")

_GAUGE = {
    "beta": Field("float", minimum=0.0, exclusive_min=True),
    "start": Field("str", required=False, default="cold", choices=("cold", "hot")),
}
KINDS = {
    "phi4": {
        "beta": Field("float", required=False),
        "lam": Field("float", required=False, minimum=0.0),
        "m2": Field("float", required=False),
        "lamA": Field("float", required=False, minimum=0.0),
    },
    **{name: _GAUGE for name in GAUGE_THEORIES},
}


def _phi4_couplings(ctx: Context, t: dict) -> None:
    """Exactly one of the two coupling forms; (m2, lamA) converted to (beta, lam); the free theory stable."""
    has_b = "beta" in t or "lam" in t
    has_a = "m2" in t or "lamA" in t
    if has_b and has_a:
        ctx.add("[theory]: give either beta and lam, or m2 and lamA, not both")
        return
    if has_a:
        if "m2" not in t or "lamA" not in t:
            ctx.add("[theory]: the (m2, lamA) form needs both m2 and lamA")
            return
        try:
            action = Phi4Action.from_m2_lam(t["m2"], t["lamA"])
        except ValueError as err:
            ctx.add(f"[theory].m2 = {t['m2']}: {err}")
            return
        t["beta"], t["lam"] = action.beta, action.lam
    elif "beta" not in t or "lam" not in t:
        ctx.add('[theory]: missing required key "beta" and/or "lam" (e.g. beta = 0.576, lam = 0.5)')
        return
    d = len(t.get("shape", [0, 0]))
    if t["lam"] == 0 and not abs(t["beta"]) < 1.0 / d:
        ctx.add(f"[theory].beta = {t['beta']}: with lam = 0 the free theory in d = {d} is stable only for "
                f"|beta| < 1/d = {1.0 / d:g}")


def rules(ctx: Context) -> None:
    t = ctx.section("theory")
    if "shape" in t and not 1 <= len(t["shape"]) <= 4:
        ctx.add(f"[theory].shape = {t['shape']}: expected 1 to 4 extents")
    if t.get("name") == "phi4" and not ctx.bad("theory", "beta", "lam", "m2", "lamA"):
        _phi4_couplings(ctx, t)
    if t.get("name") == "u1" and "shape" in t and len(t["shape"]) != 2:
        ctx.add(f"[theory].shape = {t['shape']}: the U(1) theory is two-dimensional (2 extents)")
    for key in ("m2", "lamA"):
        t.pop(key, None)


SECTION = Section(
    "theory",
    {"name": Field("str", choices=tuple(KINDS)), "shape": Field("int_list", minimum=2, hint="e.g. shape = [8, 8]")},
    presence="required", kind_key="name", kinds=KINDS, rules=rules,
)
