"""Exponential coordinates on SU(N) for tests: :math:`U(\\omega) = e^{\\omega^a T^a}U` with the
generalized Gell-Mann generators, :math:`\\mathrm{tr}\\,T^aT^b = -\\delta^{ab}/2`."""

from __future__ import annotations

import torch

from hpcflow.models.gradflow import TraceProduct
from hpcflow.theories.gauge import wilson_loop


def generators(n: int) -> torch.Tensor:
    """``(N^2 - 1, N, N)``: :math:`T^a = i\\lambda^a/2`, the generalized Gell-Mann matrices."""
    out = []
    for j in range(n):
        for k in range(j + 1, n):
            sym = torch.zeros(n, n, dtype=torch.complex128)
            sym[j, k] = sym[k, j] = 1
            anti = torch.zeros(n, n, dtype=torch.complex128)
            anti[j, k], anti[k, j] = -1j, 1j
            out += [sym, anti]
    for m in range(1, n):
        diag = torch.zeros(n, n, dtype=torch.complex128)
        diag[range(m), range(m)] = 1
        diag[m, m] = -m
        out.append(diag * (2 / (m * (m + 1))) ** 0.5)
    return 0.5j * torch.stack(out)


def coords(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Real coordinates :math:`\\omega^a = -2\\,\\mathrm{Re\\,tr}\\,T^aX` of algebra fields ``(..., N, N)``, flattened."""
    return (-2 * torch.einsum("aij,...ji->...a", t, x).real).flatten()


def moved(u: torch.Tensor, omega: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """:math:`e^{\\omega^a T^a}U` for coordinates ``omega`` of every link."""
    x = torch.einsum("...a,aij->...ij", omega.view(*u.shape[:-2], -1).to(u.dtype), t)
    return torch.linalg.matrix_exp(x) @ u


def loop_value(loop, v: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_x\mathrm{Re}\,\chi_r(W_C(x))` from the matrices of :func:`wilson_loop`, with
    the characters written out here (independent of :mod:`hpcflow.models.gradflow.sun`); for a
    product :math:`\sum_x\mathrm{Re}[\mathrm{tr}\,W_A(x)\,\mathrm{tr}\,W_B(x+s)]` (the second trace
    conjugated where it says so)."""
    if isinstance(loop, TraceProduct):
        tr_a, tr_b = (wilson_loop(v, list(lp.path)).diagonal(dim1=-2, dim2=-1).sum(-1) for lp in (loop.first, loop.second))
        tr_b = torch.roll(tr_b, shifts=tuple(-s for s in loop.shift), dims=(1, 2))
        return (tr_a * (tr_b.conj() if loop.conjugate else tr_b)).real.sum()
    w = wilson_loop(v, list(loop.path))
    tr = w.diagonal(dim1=-2, dim2=-1).sum(-1)
    tr2 = (w @ w).diagonal(dim1=-2, dim2=-1).sum(-1)
    value = {"fund": tr, "sym": (tr * tr + tr2) / 2, "anti": (tr * tr - tr2) / 2, "adj": tr.abs() ** 2 - 1}[loop.rep]
    return value.real.sum()
