"""Helpers shared by the benchmark scripts: machine description, timing, JSON output."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Callable

import torch

from hpcflow.io.provenance import provenance

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, object]:
    """Where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), **provenance()}


def time_until(fn: Callable[[], None], min_seconds: float, min_calls: int = 2) -> tuple[float, int]:
    """Call ``fn`` until ``min_seconds`` have passed (at least ``min_calls`` times); ``(seconds, calls)``."""
    fn()  # warm-up
    calls, t0 = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - t0 < min_seconds:
        fn()
        calls += 1
    return time.perf_counter() - t0, calls


def copy_bandwidth(nbytes: int = 256 * 2**20, repeats: int = 5, device: str = "cpu") -> float:
    """Best-of copy bandwidth ``dst.copy_(src)`` on ``device`` in bytes/s, counting read + write,
    with torch's current number of threads."""
    src = torch.empty(nbytes // 8, dtype=torch.float64, device=device).normal_()
    dst = torch.empty_like(src)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)
    best = float("inf")
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        dst.copy_(src)
        sync()
        best = min(best, time.perf_counter() - t0)
    return 2 * nbytes / best


def write_json(name: str, data: dict, folder: Path | None = None) -> Path:
    """Write ``<folder>/<name>.json`` (default ``benchmarks/results/``)."""
    folder = RESULTS if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def synchronized_timer(device: torch.device | str) -> Callable[[Callable[[], None], float], float]:
    """``timer(fn, min_seconds) -> seconds per call``, synchronizing the GPU around the timed calls."""
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else (lambda: None)

    def timer(fn: Callable[[], None], min_seconds: float = 0.5) -> float:
        fn()
        sync()
        calls, t0 = 0, time.perf_counter()
        while calls < 2 or time.perf_counter() - t0 < min_seconds:
            fn()
            calls += 1
        sync()
        return (time.perf_counter() - t0) / calls

    return timer
