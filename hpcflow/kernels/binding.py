"""The tensor-level calls of the compiled module ``_cpu``: every check on the tensors (device,
dtype, contiguity, shapes) happens here, then their data pointers go to the C++ entry points
(``csrc/module.cpp``), which run with the GIL released and torch's thread count."""

from __future__ import annotations

import torch
from torch import Tensor

from hpcflow.kernels import _cpu

__all__ = ["gauge_force", "hop", "phi4_md", "spin_basis", "su_n_drift", "wilson"]


def _check(name: str, t: Tensor, dtype: torch.dtype) -> None:
    if t.device.type != "cpu" or not t.is_contiguous() or t.dtype != dtype:
        raise ValueError(f"{name}: expected a contiguous CPU tensor of {dtype}, got {t.dtype} on {t.device}"
                         f"{'' if t.is_contiguous() else ' (not contiguous)'}")


def _precision(dtype: torch.dtype) -> bool:
    if dtype not in (torch.complex128, torch.complex64, torch.float64, torch.float32):
        raise ValueError(f"dtype {dtype}: expected complex64, complex128, float32 or float64")
    return dtype in (torch.complex128, torch.float64)


def spin_basis(dims: int) -> tuple[Tensor, Tensor]:
    """The kernel's spin projection tables ``(perm, power)``, each ``(2, d, H)`` (A_mu, then A_mu^+)."""
    perm, power, perm_dag, power_dag = _cpu.spin_basis(dims)
    return torch.tensor([perm, perm_dag]), torch.tensor([power, power_dag])


def wilson(psi: Tensor, links: Tensor, neighbours: Tensor, local: Tensor, diagonal: float) -> Tensor:
    """``D psi`` for spinors ``(B, V, S, N)``, site-major links ``(V, d, N, N)``, local blocks
    ``(V, 2, HN, HN)`` or empty (then ``diagonal * psi``)."""
    volume, dims, colours = links.shape[0], links.shape[1], links.shape[-1]
    if psi.dim() != 4 or tuple(psi.shape[1:]) != (volume, 4 if dims == 4 else 2, colours):
        raise ValueError(f"psi {tuple(psi.shape)} does not fit links {tuple(links.shape)}")
    for name, t in (("psi", psi), ("links", links), ("local", local)):
        _check(name, t, links.dtype)
    _check("neighbours", neighbours, torch.int64)
    out = torch.empty_like(psi)
    _cpu.wilson(psi.data_ptr(), out.data_ptr(), links.data_ptr(), neighbours.data_ptr(), local.data_ptr() if local.numel() else 0,
                diagonal, dims, colours, volume, psi.shape[0], _precision(psi.dtype), torch.get_num_threads())
    return out


def hop(psi: Tensor, links: Tensor, neighbours: Tensor, mu: int, forward: bool) -> Tensor:
    """``T_{+mu} psi`` (``forward``) or ``T_{-mu} psi`` for fields ``(..., V, S, N)``."""
    volume, dims, colours = links.shape[0], links.shape[1], links.shape[-1]
    if psi.dim() < 3 or psi.shape[-3] != volume or psi.shape[-1] != colours or not 0 <= mu < dims:
        raise ValueError(f"psi {tuple(psi.shape)}, direction {mu} do not fit links {tuple(links.shape)}")
    _check("psi", psi, links.dtype)
    _check("links", links, links.dtype)
    _check("neighbours", neighbours, torch.int64)
    out = torch.empty_like(psi)
    spins = psi.shape[-2]
    _cpu.hop(psi.data_ptr(), out.data_ptr(), links.data_ptr(), neighbours.data_ptr(), dims, colours, mu, forward,
             psi.numel() // (volume * spins * colours), volume, spins, _precision(psi.dtype), torch.get_num_threads())
    return out


def phi4_md(phi: Tensor, pi: Tensor, rows: Tensor, beta: float, four_lam: float, first_kick: float,
            moves: list[tuple[float, float]], buffers: list[Tensor]) -> int:
    """The first kick and the drift-kick moves from ``(phi, pi)`` ``(B, V)`` (left intact) through
    the buffer pairs ``(buffers[0], buffers[1])`` and ``(buffers[2], buffers[3])``; returns the
    pair that holds the end point (pair 0 after an even number of moves). ``rows`` ``(R, 2(d-1))``:
    the neighbouring rows of the last axis' rows along the other axes."""
    if phi.dim() != 2 or pi.shape != phi.shape or rows.dim() != 2 or phi.shape[1] % rows.shape[0]:
        raise ValueError(f"phi {tuple(phi.shape)}, pi {tuple(pi.shape)}: expected (B, V) with V a multiple of the "
                         f"{rows.shape[0]} rows")
    for name, t in (("phi", phi), ("pi", pi), *(("buffer", b) for b in buffers)):
        _check(name, t, phi.dtype)
        if t.shape != phi.shape:
            raise ValueError(f"{name} {tuple(t.shape)}: expected {tuple(phi.shape)}")
    _check("rows", rows, torch.int64)
    pointers = [b.data_ptr() for b in buffers]
    if len(pointers) != 4 or len(set(pointers)) != 4 or {phi.data_ptr(), pi.data_ptr()} & set(pointers):
        raise ValueError("four distinct buffers that do not alias phi or pi are needed")
    return _cpu.phi4_md(phi.data_ptr(), pi.data_ptr(), rows.data_ptr(), tuple(pointers), rows.shape[0],
                        phi.shape[1] // rows.shape[0], phi.shape[0], rows.shape[1] // 2 + 1, beta, four_lam, first_kick,
                        moves, _precision(phi.dtype), torch.get_num_threads())


def gauge_force(links: Tensor, neighbours: Tensor, coefficient: float) -> Tensor:
    """The Wilson-action force ``(B, d, V, N, N)`` of links ``(B, d, V, N, N)`` (``csrc/gauge.h``)."""
    if links.dim() != 5 or links.shape[-1] != links.shape[-2] or tuple(neighbours.shape) != (links.shape[2], 2 * links.shape[1]):
        raise ValueError(f"links {tuple(links.shape)}, neighbours {tuple(neighbours.shape)}: expected (B, d, V, N, N) "
                         "and (V, 2d)")
    _check("links", links, links.dtype)
    _check("neighbours", neighbours, torch.int64)
    out = torch.empty_like(links)
    _cpu.gauge_force(links.data_ptr(), neighbours.data_ptr(), out.data_ptr(), coefficient, links.shape[1], links.shape[-1],
                     links.shape[2], links.shape[0], _precision(links.dtype), torch.get_num_threads())
    return out


def su_n_drift(momenta: Tensor, links: Tensor, eps: float) -> Tensor:
    """``exp(i eps P) U`` for hermitian momenta and links of one shape ``(..., N, N)``."""
    if momenta.shape != links.shape or links.dim() < 2 or links.shape[-1] != links.shape[-2]:
        raise ValueError(f"momenta {tuple(momenta.shape)}, links {tuple(links.shape)}: expected one shape (..., N, N)")
    _check("momenta", momenta, links.dtype)
    _check("links", links, links.dtype)
    out = torch.empty_like(links)
    n = links.shape[-1]
    _cpu.su_n_drift(momenta.data_ptr(), links.data_ptr(), out.data_ptr(), eps, n, links.numel() // (n * n),
                    _precision(links.dtype), torch.get_num_threads())
    return out
