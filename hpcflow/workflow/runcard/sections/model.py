"""``[model]``: the architecture of a normalizing flow (phi^4 on a 2D lattice with even extents)."""

from __future__ import annotations

from hpcflow.workflow.runcard.fields import Field
from hpcflow.workflow.runcard.section import Context, Section
from hpcflow.workflow.runcard.sections.theory import GAUGE_THEORIES

__all__ = ["SECTION"]


def rules(ctx: Context) -> None:
    if not ctx.given("model"):
        return
    m, theory = ctx.section("model"), ctx.section("theory")
    if theory.get("name") in GAUGE_THEORIES:
        ctx.add("[model]: flows are implemented for phi4 only")
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


SECTION = Section(
    "model",
    {
        "coupling": Field("str_list", choices=("affine", "spline")),
        "layers": Field("int", minimum=1),
        "hidden": Field("int_list", minimum=1, empty=True, hint="e.g. hidden = [16, 16]; [] for one convolution"),
        "kernel": Field("int", minimum=1),
        "activation": Field("str", required=False, default="leaky_relu", choices=("leaky_relu", "tanh", "gelu", "silu")),
        "equivariant": Field("bool", required=False, default=True),
        "rescaling": Field("bool", required=False, default=False),
        "fourier": Field("bool", required=False, default=False),
        "bins": Field("int", required=False, default=8, minimum=2),
        "bound": Field("float", required=False, default=5.0, minimum=0.0, exclusive_min=True),
    },
    presence="optional", rules=rules,
)
