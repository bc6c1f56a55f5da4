"""``[solve]``: Dirac-operator solves on a stored gauge configuration (a card of its own)."""

from __future__ import annotations

from hpcflow.workflow.runcard.fields import INT_MAX, Field
from hpcflow.workflow.runcard.section import Context, Section
from hpcflow.workflow.runcard.sections.precond import OPERATOR_FIELDS

__all__ = ["SECTION"]


def rules(ctx: Context) -> None:
    s = ctx.section("solve")
    precond = s.get("precond", "none")
    if precond != "none" and s.get("solver") not in (None, "fgmres"):
        ctx.add(f"[solve].precond = {precond!r}: a preconditioner needs solver = \"fgmres\" (flexible GMRES)")
    if precond in ("model", "two_level_model") and "model" not in s:
        ctx.add(f'[solve].precond = "{precond}": needs [solve].model, a model.pt of hpcflow precond train')
    if precond == "two_level_model" and "coarse_model" not in s:
        ctx.add('[solve].precond = "two_level_model": needs [solve].coarse_model, a model.pt of hpcflow precond train '
                'with level = "coarse"')
    if precond == "multigrid" and "blocks" not in s:
        ctx.add('[solve].precond = "multigrid": needs [solve].blocks, e.g. blocks = [4, 4, 4, 4]')


SECTION = Section(
    "solve",
    {
        **OPERATOR_FIELDS,
        "masses": Field("float_list", hint="e.g. masses = [-0.5, -0.45, -0.4]"),
        "solver": Field("str", choices=("fgmres", "bicgstab", "cg")),
        "tol": Field("float", minimum=0.0, exclusive_min=True, hint="e.g. tol = 1e-8"),
        "maxiter": Field("int", minimum=1),
        "restart": Field("int", required=False, default=30, minimum=1),
        "sources": Field("int", required=False, default=2, minimum=1),
        "seed": Field("int", minimum=0, maximum=INT_MAX),
        "dir": Field("str"),
        "precond": Field("str", required=False, default="none", choices=("none", "model", "multigrid", "two_level_model")),
        "model": Field("str", required=False, hint='e.g. model = "runs/precond/model.pt"'),
        "coarse_model": Field("str", required=False, hint='e.g. coarse_model = "runs/precond_coarse/model.pt"'),
        "blocks": Field("int_list", required=False, minimum=1, hint="multigrid: block extents, e.g. [4, 4, 4, 4]"),
        "basis": Field("int", required=False, default=12, minimum=1),
        "setup_iterations": Field("int", required=False, default=8, minimum=1),
        "smoother_iterations": Field("int", required=False, default=4, minimum=1),
        "coarse_tol": Field("float", required=False, default=0.05, minimum=0.0, exclusive_min=True, maximum=1.0),
        "coarse_maxiter": Field("int", required=False, default=200, minimum=1),
    },
    presence="optional", rules=rules,
)
