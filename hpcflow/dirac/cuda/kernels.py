"""CuPy launch of the fused Wilson-clover kernel (``wilson_clover.cu``), zero-copy with torch.

Tensors stay torch tensors on the GPU; CuPy sees them through DLPack (``cupy.from_dlpack``), so
nothing is copied. The module is compiled once per process and device by NVRTC
(``cupy.RawModule``). The kernel is launched on the device of the links and on torch's current
stream there (``cupy.cuda.ExternalStream``), so it is ordered with the torch work around it
without synchronizing. CuPy is imported only here and only when a kernel is built; without it,
or without a GPU, :func:`cupy_available` is False and the torch reference is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["SOURCE", "WilsonCloverKernel", "cupy_available"]

SOURCE = Path(__file__).with_name("wilson_clover.cu")
_THREADS = 128
_MODULES: dict[int, Any] = {}


def _cupy() -> Any:
    try:
        import cupy
    except ImportError as err:
        raise RuntimeError("the CUDA kernels need CuPy: pip install 'hpcflow-lft[gpu]' (cupy-cuda12x)") from err
    return cupy


def cupy_available() -> bool:
    """True when CuPy imports and sees a CUDA device."""
    try:
        cupy = _cupy()
        return bool(cupy.cuda.is_available())
    except Exception:  # no CuPy, no driver, no device
        return False


def _module(gammas: np.ndarray, device: int) -> Any:
    """The compiled module on CUDA device ``device`` (compiled and loaded once per device)."""
    if device not in _MODULES:
        cupy = _cupy()
        with cupy.cuda.Device(device):
            module = cupy.RawModule(code=SOURCE.read_text(), options=("--std=c++14",))
            for name, part in (("GAMMA_RE", gammas.real), ("GAMMA_IM", gammas.imag)):
                host = np.ascontiguousarray(part, dtype=np.float64)
                module.get_global(name).copy_from_host(host.ctypes.data, host.nbytes)
        _MODULES[device] = module
    return _MODULES[device]


class WilsonCloverKernel:
    """The 4D SU(3) Wilson(-clover) operator on the GPU.

    Arguments:
        links: twisted links ``(4, *L, 3, 3)`` on a CUDA device (complex64 or complex128).
        gammas: the operator's gamma matrices ``(4, 4, 4)``.
        diag: ``4 + m``.
        clover: clover matrices ``(*L, 12, 12)`` or ``None``.
    """

    def __init__(self, links: Tensor, gammas: Tensor, diag: float, clover: Tensor | None) -> None:
        if links.shape[0] != 4 or links.shape[-1] != 3 or not links.is_cuda:
            raise ValueError("the CUDA kernel takes 4D SU(3) links on a CUDA device")
        self.cupy = _cupy()
        self.device = links.device.index if links.device.index is not None else torch.cuda.current_device()
        self.module = _module(gammas.cpu().numpy(), self.device)
        self.dtype = links.dtype
        self.name = {torch.complex128: "wilson_clover_f64", torch.complex64: "wilson_clover_f32"}[links.dtype]
        self.kernel = self.module.get_function(self.name)
        self.shape = tuple(links.shape[1:5])
        self.links = links.contiguous()
        self.clover = clover.contiguous() if clover is not None else torch.zeros(1, dtype=links.dtype, device=links.device)
        self.use_clover = clover is not None
        real = np.float64 if links.dtype == torch.complex128 else np.float32
        self.diag = real(diag)

    def accepts(self, psi: Tensor) -> bool:
        """Whether ``psi`` lies on the links' device (otherwise the caller uses the reference)."""
        return psi.device == self.links.device

    def __call__(self, psi: Tensor) -> Tensor:
        """:math:`D\\psi` for spinors ``(B, *L, 4, 3)`` on the links' device and dtype."""
        if psi.dtype != self.dtype or tuple(psi.shape[1:5]) != self.shape:
            raise ValueError(f"spinor {tuple(psi.shape)} {psi.dtype} does not fit links {self.shape} {self.dtype}")
        psi = psi.contiguous()
        out = torch.empty_like(psi)
        cp = self.cupy
        nrhs, volume = psi.shape[0], int(np.prod(self.shape))
        blocks = (nrhs * volume + _THREADS - 1) // _THREADS
        args = (
            cp.from_dlpack(out), cp.from_dlpack(psi), cp.from_dlpack(self.links), cp.from_dlpack(self.clover),
            np.int32(self.shape[0]), np.int32(self.shape[1]), np.int32(self.shape[2]), np.int32(self.shape[3]),
            np.int32(nrhs), self.diag, np.int32(self.use_clover),
        )
        stream = torch.cuda.current_stream(self.device).cuda_stream
        with cp.cuda.Device(self.device), cp.cuda.ExternalStream(stream, self.device):
            self.kernel((blocks,), (_THREADS,), args)
        return out
