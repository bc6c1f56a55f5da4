"""``[sampler]``: the Markov chains (kind, number, length, seed) and the settings of each kind."""

from __future__ import annotations

from hpcflow.models.flows.flow import FlowSpec
from hpcflow.workflow.runcard.card import UPDATES_KEY
from hpcflow.workflow.runcard.fields import INT_MAX, Field
from hpcflow.workflow.runcard.section import Context, Section
from hpcflow.workflow.runcard.sections.theory import GAUGE_THEORIES

__all__ = ["FLOW_SAMPLERS", "SECTION"]

_TARGET = Field("float", required=False, minimum=0.0, exclusive_min=True, maximum=1.0, exclusive_max=True)
_MODEL = Field("str", required=False, hint='e.g. model = "runs/phi4_L8/model/flow.pt"')
_HMC = {
    "trajectories": Field("int", minimum=1),
    "tau": Field("float", minimum=0.0, exclusive_min=True),
    "steps": Field("int", minimum=1),
    "integrator": Field("str", required=False, default="leapfrog", choices=("leapfrog", "omelyan")),
    "target_acceptance": _TARGET,
}
FLOW_SAMPLERS = ("fhmc", "nmcmc")
KINDS = {
    "hmc": _HMC,
    "fhmc": {**_HMC, "model": _MODEL},
    "nmcmc": {
        "updates": Field("int", minimum=1),
        "chunk": Field("int", required=False, default=64, minimum=1),
        "model": _MODEL,
    },
}


def rules(ctx: Context) -> None:
    s, theory = ctx.section("sampler"), ctx.section("theory")
    kind = s.get("kind")
    if theory.get("name") in GAUGE_THEORIES:
        if kind == "hmc" and theory["name"] != "u1" and s.get("integrator") == "omelyan":
            ctx.add("[sampler].integrator = 'omelyan': SU(N) HMC has the leapfrog integrator only")
    updates_key = UPDATES_KEY.get(kind or "", "")
    if updates_key in s and "measure_every" in s and s[updates_key] % s["measure_every"]:
        ctx.add(f"[sampler].{updates_key} = {s[updates_key]}: must be a multiple of measure_every = {s['measure_every']}")
    if kind in FLOW_SAMPLERS and not ctx.given("model") and "model" not in s:
        ctx.add(f'[sampler].kind = "{kind}": needs a [model] section (trained by hpcflow train) or [sampler].model')
    model = ctx.section("model")
    model_ok = not any(p.startswith("[model]") for p in ctx.problems)
    if kind == "fhmc" and ctx.given("model") and model_ok and {"coupling", "layers", "hidden", "kernel"} <= set(model):
        why = FlowSpec.from_dict(model).roughness()
        if why:
            ctx.add(f"[model]: flow HMC needs a smooth map and {why}; use coupling = \"affine\" with activation = "
                    "\"tanh\", \"gelu\" or \"silu\" (or hidden = [])")
    if kind == "fhmc" and theory.get("name") in GAUGE_THEORIES:
        ctx.add("[sampler].kind = 'fhmc': flow HMC is implemented for phi4; gauge theories are sampled with 'hmc' "
                "or 'nmcmc' (a gradient-flow [model])")


SECTION = Section(
    "sampler",
    {
        "kind": Field("str", choices=tuple(KINDS)),
        "chains": Field("int", minimum=1),
        "thermalization": Field("int", minimum=0),
        "seed": Field("int", minimum=0, maximum=INT_MAX),
        "measure_every": Field("int", required=False, default=1, minimum=1),
    },
    presence="required", kind_key="kind", kinds=KINDS, rules=rules,
)
