"""Exponential coordinates on SU(N) for tests: :math:`U(\\omega) = e^{\\omega^a T^a}U` with the
generalized Gell-Mann generators, :math:`\\mathrm{tr}\\,T^aT^b = -\\delta^{ab}/2`."""

from __future__ import annotations

import torch


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
