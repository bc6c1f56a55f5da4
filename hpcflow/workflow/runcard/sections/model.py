"""``[model]``: the architecture of the model that ``hpcflow train`` trains, by ``kind``:

- ``"flow"`` (the default): a normalizing flow of coupling layers, for phi^4 on a 2D lattice
  with even extents;
- ``"gradflow"``: a gradient-flow map over Wilson loops, for 2D gauge fields (u1, su2, su3):
  ``loops`` (a family or a list of loop names, each optionally ``@sym``, ``@anti`` or ``@adj``
  for SU(N), and for SU(N) products of neighbouring plaquette traces such as ``"1x1*1x1_0"``,
  :mod:`hpcflow.models.gradflow.loops`),
  ``coefficients`` (``"affine"``, model A, or ``"spline"`` with ``knots``, model B), ``steps`` of
  the integrator, ``init`` (``"luscher_lo"``, ``"luscher_nlo"``, or ``"zero"``);
- ``"gauge_coupling"``: a gauge-equivariant coupling flow of plaquettes, for 2D u1 with extents
  that are multiples of 4: ``layers``, ``hidden``, ``kernel``, ``bins`` of the circular splines,
  ``plaquette_map`` (start with the exact von Mises map of the free plaquettes; then ``layers``
  may be 0 and any extents are allowed).
"""

from __future__ import annotations

from hpcflow.models.gauge_coupling.layer import PERIOD
from hpcflow.models.gradflow.coefficients import COEFFICIENTS
from hpcflow.models.gradflow.loops import Loop, TraceProduct, loops_named
from hpcflow.models.gradflow.luscher import luscher_coefficients
from hpcflow.models.gradflow.spec import INITS
from hpcflow.workflow.runcard.fields import Field
from hpcflow.workflow.runcard.section import Context, Section
from hpcflow.workflow.runcard.sections.theory import GAUGE_THEORIES

__all__ = ["SECTION"]

_ACTIVATION = Field("str", required=False, default="leaky_relu", choices=("leaky_relu", "tanh", "gelu", "silu"))


def _flow_rules(ctx: Context, m: dict, theory: dict) -> None:
    if theory.get("name") in GAUGE_THEORIES:
        ctx.add(f"[model].kind = 'flow': coupling flows are for phi4; for {theory['name']} use kind = \"gradflow\""
                + (" or \"gauge_coupling\"" if theory["name"] == "u1" else ""))
    shape = theory.get("shape")
    if shape is not None:
        odd = [i for i, n in enumerate(shape) if n % 2]
        if len(shape) != 2:
            ctx.add(f"[theory].shape = {shape}: the flows are two-dimensional (2 extents)")
        elif odd:
            ctx.add(f"[theory].shape = {shape}: extents must be even for the checkerboard sublattices "
                    f"(axis {odd[0]} is {shape[odd[0]]})")
    if "kernel" in m and (m["kernel"] % 2 == 0 or m["kernel"] < 3):
        ctx.add(f"[model].kernel = {m['kernel']}: must be odd and at least 3 (3, 5, 7, ...)")
    if isinstance(m.get("coupling"), list) and "layers" in m and len(m["coupling"]) != m["layers"]:
        ctx.add(f"[model].coupling lists {len(m['coupling'])} kinds for layers = {m['layers']}: give one per layer")
    if m.get("zero_mode") and not m.get("equivariant", True):
        ctx.add("[model].zero_mode = true: the map of M/V is odd and fitted to a symmetric distribution of M; "
                "it needs equivariant = true")


def _gradflow_rules(ctx: Context, m: dict, theory: dict) -> None:
    name, shape = theory.get("name"), theory.get("shape")
    if name is not None and name not in GAUGE_THEORIES:
        ctx.add(f"[model].kind = 'gradflow': gradient-flow maps are for the gauge theories {', '.join(GAUGE_THEORIES)}, "
                f"not {name}; use kind = \"flow\"")
        return
    if shape is not None and len(shape) != 2:
        ctx.add(f"[theory].shape = {shape}: the gradient-flow maps are two-dimensional (2 extents)")
        return
    if "loops" not in m:
        return
    try:
        loops = loops_named(m["loops"])
    except ValueError as err:
        ctx.add(f"[model].loops: {err}")
        return
    if name is None or "beta" not in theory:
        return
    products = [lp for lp in loops if isinstance(lp, TraceProduct)]
    reps = [lp for lp in loops if isinstance(lp, Loop) and lp.rep != "fund"]
    if name == "u1" and reps:
        ctx.add(f"[model].loops: {[lp.name for lp in reps]}: u1 has no representations beyond the charge; "
                "use a winding loop such as '1x1_twice'")
    if name == "u1" and products:
        ctx.add(f"[model].loops: {[lp.name for lp in products]}: in u1 a product of traces is the loop of the summed "
                "angles; use '2x1' / '1x2' (same orientation) or 'fig8_0' / 'fig8_1' (opposite)")
    if name != "u1" and shape is not None:
        lattice = "x".join(map(str, shape))
        often = [lp.name for lp in loops if lp.max_visits(tuple(shape)) > 2]
        if often:
            ctx.add(f"[model].loops: {often} run over a link more than twice on the {lattice} lattice; the {name} "
                    "map takes loops that visit each link at most twice")
        twice = [lp.name for lp in reps + products if lp.max_visits(tuple(shape)) > 1]
        if twice:
            ctx.add(f"[model].loops: {twice} run over a link twice on the {lattice} lattice; a loop in another "
                    "representation and each factor of a product of traces must visit each link once")
    if m.get("init", "zero") != "zero":
        try:
            luscher_coefficients(name, theory["beta"], loops, m["init"].removeprefix("luscher_"))
        except ValueError as err:
            ctx.add(f"[model].init = {m['init']!r}: {err}")


def _gauge_coupling_rules(ctx: Context, m: dict, theory: dict) -> None:
    name, shape = theory.get("name"), theory.get("shape")
    if name is not None and name != "u1":
        ctx.add(f"[model].kind = 'gauge_coupling': the gauge-equivariant coupling flow is for u1, not {name}; "
                + ("use kind = \"gradflow\"" if name in GAUGE_THEORIES else "use kind = \"flow\""))
    if shape is not None and len(shape) != 2:
        ctx.add(f"[theory].shape = {shape}: the gauge-equivariant coupling flow is two-dimensional (2 extents)")
    elif shape is not None and m.get("layers", 16) and any(n % PERIOD for n in shape):
        ctx.add(f"[theory].shape = {shape}: the plaquette stripes of the gauge-equivariant coupling flow need "
                f"extents that are multiples of {PERIOD}")
    if "kernel" in m and m["kernel"] % 2 == 0:
        ctx.add(f"[model].kernel = {m['kernel']}: must be odd (1, 3, 5, ...)")
    if m.get("layers") == 0 and not m.get("plaquette_map"):
        ctx.add("[model].layers = 0: a flow without layers needs plaquette_map = true")
    steps = ctx.section("training").get("steps", 0)
    if m.get("layers") == 0 and steps:
        ctx.add(f"[training].steps = {steps}: the plaquette map alone (layers = 0) has no parameters to train; "
                "set steps = 0 (hpcflow train then writes the map)")


def rules(ctx: Context) -> None:
    if not ctx.given("model"):
        return
    m, theory = ctx.section("model"), ctx.section("theory")
    kind = m.get("kind", "flow")
    if kind == "gradflow":
        _gradflow_rules(ctx, m, theory)
    elif kind == "gauge_coupling":
        _gauge_coupling_rules(ctx, m, theory)
    elif kind == "flow":
        _flow_rules(ctx, m, theory)


SECTION = Section(
    "model",
    {"kind": Field("str", required=False, choices=("flow", "gradflow", "gauge_coupling"))},
    presence="optional", rules=rules, kind_key="kind", default_kind="flow",
    kinds={
        "flow": {
            "coupling": Field("str_list", choices=("affine", "spline")),
            "layers": Field("int", minimum=1),
            "hidden": Field("int_list", minimum=1, empty=True, hint="e.g. hidden = [16, 16]; [] for one convolution"),
            "kernel": Field("int", minimum=1),
            "activation": _ACTIVATION,
            "equivariant": Field("bool", required=False, default=True),
            "rescaling": Field("bool", required=False, default=False),
            "fourier": Field("bool", required=False, default=False),
            "zero_mode": Field("bool", required=False, default=False),
            "bins": Field("int", required=False, default=8, minimum=2),
            "bound": Field("float", required=False, default=5.0, minimum=0.0, exclusive_min=True),
        },
        "gradflow": {
            # names are checked by the rules (loops_named): a loop may carry a representation, "1x1@adj"
            "loops": Field("str_list", hint='e.g. loops = "perimeter10" or ["1x1", "1x2", "2x1", "1x1@adj"]'),
            "coefficients": Field("str", required=False, default="affine", choices=tuple(COEFFICIENTS)),
            "knots": Field("int", required=False, default=10, minimum=2),
            "steps": Field("int", required=False, default=20, minimum=1),
            "init": Field("str", required=False, default="luscher_lo", choices=INITS),
        },
        "gauge_coupling": {
            "layers": Field("int", required=False, default=16, minimum=0),
            "hidden": Field("int_list", required=False, default=[8, 8], minimum=1, empty=True,
                            hint="e.g. hidden = [8, 8]; [] for one convolution"),
            "kernel": Field("int", required=False, default=3, minimum=1),
            "bins": Field("int", required=False, default=8, minimum=2),
            "activation": _ACTIVATION,
            "plaquette_map": Field("bool", required=False, default=False),
        },
    },
)
