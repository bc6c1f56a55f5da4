"""The sections of a run card, one module each, in the order they are validated (``[output]``
last: its default directory is named after a valid theory and sampler)."""

from __future__ import annotations

from hpcflow.workflow.runcard.section import Section
from hpcflow.workflow.runcard.sections import (
    analysis,
    baseline,
    model,
    output,
    parallel,
    sampler,
    solve,
    theory,
    training,
)

__all__ = ["SECTIONS"]

SECTIONS: dict[str, Section] = {
    m.SECTION.name: m.SECTION for m in (theory, sampler, model, training, parallel, solve, baseline, analysis, output)
}
