"""Graceful stops and progress bars shared by the long-running stages."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from tqdm import tqdm

__all__ = ["Interrupted", "StopFlag", "progress_bar"]


class Interrupted(RuntimeError):
    """Raised after a signal-triggered checkpoint; the stage resumes when restarted."""

    def __init__(self, signum: int, where: str) -> None:
        self.signum = signum
        super().__init__(f"stopped by signal {signum} {where}; rerun the same command to resume")


class StopFlag:
    """Turns SIGTERM/SIGINT into a flag that a loop checks between steps."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, object] = {}

    def __enter__(self) -> StopFlag:
        for s in (signal.SIGTERM, signal.SIGINT):
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum

    def __exit__(self, *exc: object) -> None:
        for s, handler in self._old.items():
            signal.signal(s, handler)


def progress_bar(total: int, initial: int, desc: str, unit: str, enabled: bool) -> tqdm:
    """A tqdm bar on an interactive stderr only (rank 0 decides ``enabled``)."""
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, mininterval=1.0,
                disable=not (enabled and sys.stderr.isatty()))
