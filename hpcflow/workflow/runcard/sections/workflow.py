"""``[workflow]``: which samplers ``hpcflow run`` runs and compares.

``samplers`` lists them among ``"hmc"``, ``"nmcmc"``, ``"fhmc"``; it must hold the card's own
kind (default: the card's kind, and ``"hmc"`` beside a flow sampler). The flow samplers beside
the card's own use its flow, so they need a card of a flow sampler; flow HMC needs a smooth map.
"""

from __future__ import annotations

from hpcflow.models.flows.flow import FlowSpec
from hpcflow.workflow.runcard.fields import Field
from hpcflow.workflow.runcard.section import Context, Section
from hpcflow.workflow.runcard.sections.sampler import FLOW_SAMPLERS

__all__ = ["SECTION", "SAMPLER_SECTION"]

SAMPLER_SECTION = {"hmc": "baseline", "fhmc": "fhmc", "nmcmc": "nmcmc"}
"""The section of the settings of each sampler when it runs beside the card's own."""


def default_samplers(kind: str) -> list[str]:
    return [kind] if kind == "hmc" else [kind, "hmc"]


def rules(ctx: Context) -> None:
    kind = ctx.section("sampler").get("kind")
    if kind is None or ctx.bad("workflow", "samplers"):
        return
    w = ctx.data.setdefault("workflow", {})
    given = w.get("samplers", default_samplers(kind))
    samplers = [given] if isinstance(given, str) else list(given)
    w["samplers"] = samplers
    if kind not in samplers:
        ctx.add(f"[workflow].samplers = {samplers}: must include the card's own sampler {kind!r}")
    if len(set(samplers)) != len(samplers):
        ctx.add(f"[workflow].samplers = {samplers}: each sampler once")
    beside = [k for k in samplers if k != kind]
    if any(k in FLOW_SAMPLERS for k in beside) and kind not in FLOW_SAMPLERS:
        ctx.add(f"[workflow].samplers = {samplers}: the flow samplers use the card's flow; make the card's own "
                "sampler 'nmcmc' or 'fhmc' (with [model])")
    for other, section in SAMPLER_SECTION.items():
        if not ctx.given(section):
            continue
        if other == kind:
            ctx.add(f"[{section}]: the card's own sampler is {kind!r}; its settings belong in [sampler]")
        elif other not in samplers:
            ctx.add(f"[{section}]: settings of a sampler the workflow does not run; add {other!r} to [workflow].samplers")
    model = ctx.section("model")
    if "fhmc" in beside and ctx.given("model") and {"coupling", "layers", "hidden", "kernel"} <= set(model):
        why = FlowSpec.from_dict(model).roughness()
        if why:
            ctx.add(f"[workflow].samplers: flow HMC needs a smooth map and {why}; use coupling = \"affine\" with "
                    "activation = \"tanh\", \"gelu\" or \"silu\" (or hidden = [])")


SECTION = Section(
    "workflow",
    {"samplers": Field("str_list", required=False, choices=("hmc", "nmcmc", "fhmc"))},
    rules=rules,
)
