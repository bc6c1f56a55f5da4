"""Progress of a long stage, on rank 0: a tqdm bar on an interactive terminal, and where there is
none (a batch log) or the bar is switched off (``--no-progress``), one log line every
``interval`` seconds: ``train run_x: step 400/2000 (20%), 3.1 step/s, 8.6 min left, loss -77.4``.

The interval is 60 s by default (``HPCFLOW_PROGRESS_SECONDS`` sets it). Every other rank is silent.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from tqdm import tqdm

__all__ = ["Progress", "format_seconds"]

log = logging.getLogger("hpcflow.progress")


def format_seconds(seconds: float) -> str:
    """``42 s``, ``8.6 min``, ``3.2 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Progress of ``total`` units from ``initial`` (a resumed run), shown as the module says.

    Arguments:
        total, initial: units in all, and done before this process started.
        desc, unit: what is counted (``"train run_x"``, ``"step"``).
        rank0: whether this process reports at all (rank 0 of a parallel launch).
        bar: a tqdm bar where stderr is a terminal (False: log lines only).
    """

    def __init__(self, total: int, initial: int, desc: str, unit: str, rank0: bool, bar: bool = True) -> None:
        self.total, self.done, self.desc, self.unit = total, initial, desc, unit
        self.start, self.t0, self.enabled = initial, time.monotonic(), rank0
        self.postfix: dict[str, Any] = {}
        self.interval = float(os.environ.get("HPCFLOW_PROGRESS_SECONDS", "60"))
        self.last = self.t0
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, mininterval=1.0) if (
            rank0 and bar and sys.stderr.isatty()) else None

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and time.monotonic() - self.last >= self.interval:
            self.last = time.monotonic()
            log.info(self.line())

    def set_postfix(self, **values: Any) -> None:
        """Values shown after the counts (loss, acceptance, ...)."""
        self.postfix.update(values)
        if self.bar is not None:
            self.bar.set_postfix(**self.postfix)

    def line(self) -> str:
        """The progress as one line."""
        elapsed = time.monotonic() - self.t0
        rate = (self.done - self.start) / elapsed if elapsed > 0 else 0.0
        left = f", {format_seconds((self.total - self.done) / rate)} left" if rate > 0 else ""
        extra = "".join(f", {k} {v}" for k, v in self.postfix.items())
        return (f"{self.desc}: {self.unit} {self.done}/{self.total} ({100 * self.done / max(self.total, 1):.0f}%), "
                f"{rate:.3g} {self.unit}/s{left}{extra}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
