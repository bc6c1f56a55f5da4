"""``[output]``: the run directory (default: named after the physics) and the checkpoint interval."""

from __future__ import annotations

import os
from pathlib import Path

from hpcflow.workflow.runcard.card import default_run_name
from hpcflow.workflow.runcard.fields import Field
from hpcflow.workflow.runcard.section import Context, Section

__all__ = ["SECTION"]


def _check_writable(path: Path) -> str | None:
    """Why ``path`` cannot serve as an output directory, or ``None``."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is not a directory"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def rules(ctx: Context) -> None:
    """Runs last: the default name needs a valid theory and sampler."""
    out = ctx.data.setdefault("output", {})
    for operator in ("solve", "precond"):
        if operator in ctx.data:
            out["dir"] = ctx.data[operator].get("dir", "")
    if "dir" not in out and not ctx.problems:
        out["dir"] = str(Path("runs") / default_run_name(ctx.section("theory"), ctx.section("sampler")))
    if "dir" in out:
        why = _check_writable(Path(out["dir"]))
        if why:
            ctx.add(f"[output].dir = {out['dir']!r}: cannot write there ({why})")


SECTION = Section(
    "output",
    {
        "dir": Field("str", required=False),
        "checkpoint_every": Field("int", required=False, default=100, minimum=1),
    },
    rules=rules,
)
