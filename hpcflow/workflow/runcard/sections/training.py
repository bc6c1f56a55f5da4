"""``[training]``: reverse-KL training of the flow of ``[model]``."""

from __future__ import annotations

from hpcflow.workflow.runcard.fields import INT_MAX, Field
from hpcflow.workflow.runcard.section import Context, Section

__all__ = ["SECTION"]


def rules(ctx: Context) -> None:
    t = ctx.section("training")
    if "shard" in t and "batch" in t and t["batch"] % t["shard"]:
        ctx.add(f"[training].shard = {t['shard']}: must divide batch = {t['batch']} "
                "(each rank draws batch / shard latent shards, one random stream each)")


SECTION = Section(
    "training",
    {
        "steps": Field("int", minimum=0, hint="0 saves the starting model (e.g. Luscher's map) untrained"),
        "batch": Field("int", minimum=1),
        "shard": Field("int", required=False, minimum=1),
        "lr": Field("float", minimum=0.0, exclusive_min=True),
        "seed": Field("int", minimum=0, maximum=INT_MAX),
        "schedule": Field("str", required=False, default="cosine", choices=("cosine", "constant")),
        "clip": Field("float", required=False, default=1.0, minimum=0.0, exclusive_min=True),
        "dtype": Field("str", required=False, default="float32", choices=("float32", "float64")),
        "checkpoint_every": Field("int", required=False, default=100, minimum=1),
        "log_every": Field("int", required=False, default=10, minimum=1),
        "max_rollbacks": Field("int", required=False, default=20, minimum=1),
        "init": Field("str", required=False, hint='e.g. init = "runs/phi4_L8/model/flow.pt"'),
        "calibration_trajectories": Field("int", required=False, default=300, minimum=0,
                                          hint="flow-HMC trajectories per round of the zero-mode calibration; 0 skips it"),
    },
    presence="optional", rules=rules,
)
