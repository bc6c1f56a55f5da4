"""``[precond]``: training a preconditioner model on one stored gauge configuration (a card of
its own, ``hpcflow precond train CARD``): the operator, the architecture, the training."""

from __future__ import annotations

from hpcflow.workflow.runcard.fields import INT_MAX, Field
from hpcflow.workflow.runcard.section import Context, Section

__all__ = ["OPERATOR_FIELDS", "SECTION"]

OPERATOR_FIELDS = {
    "configs": Field("str", hint='e.g. configs = "runs/su3_16x8x8x8_b5.8/configs.h5"'),
    "chain": Field("int", required=False, default=0, minimum=0),
    "step": Field("int", required=False, default=-1),
    "csw": Field("float", required=False, default=0.0, minimum=0.0),
    "antiperiodic_time": Field("bool", required=False, default=True),
}
"""The keys that name the operator: a configuration of a store and the clover term (shared by [solve])."""


def rules(ctx: Context) -> None:
    p = ctx.section("precond")
    channels = p.get("channels")
    if channels and (len(channels) < 2 or channels[0] != 1 or channels[-1] != 1):
        ctx.add(f"[precond].channels = {channels}: from 1 input channel to 1 output channel, e.g. [1, 2, 2, 1]")
    if p.get("level") == "coarse":
        if "blocks" not in p:
            ctx.add('[precond].level = "coarse": needs [precond].blocks, e.g. blocks = [4, 4]')
        if p.get("kind") != "lptc":
            ctx.add('[precond].level = "coarse": the coarse basis differs from block to block, so the weights are '
                    'per site: set kind = "lptc"')
        if "init" in p:
            ctx.add('[precond].init: a lo-mode model belongs to the coarse basis it was trained on; '
                    'init applies to level = "fine"')
    elif p.get("low_modes"):
        ctx.add(f'[precond].low_modes = {p["low_modes"]}: low-mode training vectors need a solve with D; '
                'they apply to level = "coarse"')


SECTION = Section(
    "precond",
    {
        **OPERATOR_FIELDS,
        "mass": Field("float", hint="the bare mass of D the model is trained for"),
        "level": Field("str", required=False, default="fine", choices=("fine", "coarse"),
                       hint="fine: the hi-mode model (smoother); coarse: the lo-mode model"),
        "blocks": Field("int_list", required=False, minimum=1, hint="level = \"coarse\": block extents, e.g. [4, 4]"),
        "basis": Field("int", required=False, default=8, minimum=1),
        "setup_iterations": Field("int", required=False, default=10, minimum=1),
        "low_modes": Field("float", required=False, default=0.0, minimum=0.0, maximum=1.0,
                           hint="level = \"coarse\": the fraction of training vectors drawn as D~^-1 u"),
        "kind": Field("str", required=False, default="ptc", choices=("ptc", "lptc")),
        "channels": Field("int_list", required=False, default=[1, 1], minimum=1),
        "hops": Field("int", required=False, default=1, minimum=1, maximum=3),
        "steps": Field("int", minimum=1),
        "batch": Field("int", minimum=1),
        "lr": Field("float", minimum=0.0, exclusive_min=True),
        "seed": Field("int", minimum=0, maximum=INT_MAX),
        "dtype": Field("str", required=False, default="complex128", choices=("complex64", "complex128")),
        "init": Field("str", required=False, hint="a model.pt to start from (transfer)"),
        "checkpoint_every": Field("int", required=False, default=100, minimum=1),
        "log_every": Field("int", required=False, default=10, minimum=1),
        "dir": Field("str"),
    },
    presence="optional", rules=rules,
)
