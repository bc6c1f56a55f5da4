"""``[parallel]``: how the ranks of a job train together and write the store."""

from __future__ import annotations

from hpcflow.parallel.device import DEVICE_CHOICES
from hpcflow.workflow.runcard.fields import Field
from hpcflow.workflow.runcard.section import Section

__all__ = ["SECTION"]

SECTION = Section(
    "parallel",
    {
        "backend": Field("str", required=False, default="ddp", choices=("ddp", "horovod", "serial")),
        "io": Field("str", required=False, default="auto", choices=("auto", "mpio", "per-rank")),
        "device": Field("str", required=False, default="auto", choices=DEVICE_CHOICES),
    },
)
