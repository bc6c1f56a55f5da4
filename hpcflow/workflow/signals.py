"""Graceful stops of the long-running stages: SIGTERM and SIGINT become a flag checked between steps."""

from __future__ import annotations

import signal
from types import FrameType

__all__ = ["Interrupted", "StopFlag"]


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
