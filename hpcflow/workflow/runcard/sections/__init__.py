"""The sections of a run card, one module each, in the order they are validated (``[output]``
last: its default directory is named after a valid theory and sampler)."""

from __future__ import annotations

from hpcflow.workflow.runcard.section import Section
from hpcflow.workflow.runcard.sections import (
    analysis,
    derived,
    model,
    output,
    parallel,
    precond,
    sampler,
    solve,
    theory,
    training,
    workflow,
)

__all__ = ["SECTIONS"]

SECTIONS: dict[str, Section] = {
    s.name: s for s in (theory.SECTION, sampler.SECTION, model.SECTION, training.SECTION, parallel.SECTION,
                        solve.SECTION, precond.SECTION, *derived.SECTIONS, workflow.SECTION, analysis.SECTION, output.SECTION)
}
