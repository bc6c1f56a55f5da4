"""Compiled CPU kernels (a C++ module built by the install, ``csrc/``) and the switch to the torch
reference.

:func:`compiled` returns :mod:`.binding`, the tensor-level calls of the module, or ``None`` where
it is not built or ``HPCFLOW_KERNELS=0`` is set; :func:`why_not_compiled` says which. Every caller keeps the torch
code as the specification and falls back to it. What the kernels compute: :mod:`.dirac` (the
Wilson(-clover) operator and parallel transports), :mod:`.phi4` (phi^4 molecular dynamics).
"""

from __future__ import annotations

import os
from functools import lru_cache
from types import ModuleType

__all__ = ["compiled", "kernel_path", "why_not_compiled"]


@lru_cache(maxsize=1)
def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get("HPCFLOW_KERNELS", "1") == "0":
        return None, "HPCFLOW_KERNELS=0 selects the torch reference"
    try:
        import torch  # noqa: F401  (first: its OpenMP runtime is the one the kernels then share)

        from hpcflow.kernels import binding
    except ImportError as err:
        return None, f"the module hpcflow.kernels._cpu is not built ({err}); run `pip install -e .`"
    return binding, ""


def compiled() -> ModuleType | None:
    """:mod:`hpcflow.kernels.binding` over the module ``_cpu``, or ``None`` (then use the torch reference)."""
    return _load()[0]


def why_not_compiled() -> str:
    """Why :func:`compiled` is ``None`` (empty when it is not)."""
    return _load()[1]


def kernel_path() -> str:
    """``"compiled"`` or ``"torch"``: the CPU path in use, for provenance."""
    return "compiled" if compiled() is not None else "torch"
