"""Which device a rank computes on: ``[parallel].device = "auto" | "cpu" | "cuda"``.

``auto`` is ``cuda:<local rank mod GPUs>`` where CUDA is available, else the CPU; ``cuda``
insists on a GPU (an error where there is none); ``cpu`` never touches CUDA. Every stage puts its
tensors there: the fields, the flow, the random streams (one ``torch.Generator`` per chain or
shard on that device), the gauge links and spinors.

Reproducibility: the same seed on the same device type and the same ranks gives bitwise the
same output; a CPU run and a GPU run of one card draw different random numbers (different
generators) and agree within errors. A run is continued on the device type it started on (its
checkpoints record it).
"""

from __future__ import annotations

import torch

__all__ = ["DEVICE_CHOICES", "DeviceUnavailable", "select_device"]

DEVICE_CHOICES = ("auto", "cpu", "cuda")


class DeviceUnavailable(RuntimeError):
    """The card asks for a device this machine does not have."""


def select_device(setting: str, local_rank: int = 0) -> torch.device:
    """The device of a rank with node-local index ``local_rank`` for the card's setting."""
    if setting not in DEVICE_CHOICES:
        raise ValueError(f"[parallel].device = {setting!r}: expected one of {', '.join(map(repr, DEVICE_CHOICES))}")
    if setting == "cpu" or (setting == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceUnavailable(
            f"[parallel].device = 'cuda': no CUDA device visible here (torch {torch.__version__} is {built}); "
            'use "auto" or "cpu", or run on a GPU node'
        )
    return torch.device("cuda", local_rank % torch.cuda.device_count())
