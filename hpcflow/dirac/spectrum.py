r"""The left edge of the spectrum of a Dirac operator: :math:`m_{crit} = -\min\mathrm{Re}\,\lambda(D(0))`.

The Wilson operator at :math:`m = 0` has eigenvalues with positive real parts on smooth fields and
its smallest real part moves left on rough ones; the bare mass at which it reaches 0 is the
critical mass of that configuration, where the solvers' iteration counts diverge. Up to
:data:`DENSE_UNKNOWNS` unknowns the spectrum is computed densely (LAPACK); above, by implicitly
restarted Arnoldi (ARPACK through ``scipy.sparse.linalg.eigs``, ``which = "SR"``: the left edge is
the periphery of the spectrum, where Arnoldi converges).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

__all__ = ["DENSE_UNKNOWNS", "dense_matrix", "smallest_real_part"]

DENSE_UNKNOWNS = 4096


def dense_matrix(apply: Callable[[torch.Tensor], torch.Tensor], site: tuple[int, ...], dtype: torch.dtype,
                 device: torch.device) -> torch.Tensor:
    """The ``(n, n)`` matrix of the linear map ``apply`` on fields of shape ``site`` (``n`` their
    size), built column by column from the unit fields in one batch."""
    n = math.prod(site)
    return apply(torch.eye(n, dtype=dtype, device=device).reshape(n, *site)).reshape(n, n).T


def smallest_real_part(apply: Callable[[torch.Tensor], torch.Tensor], site: tuple[int, ...], dtype: torch.dtype,
                       device: torch.device, tol: float = 1e-8) -> float:
    """:math:`\\min\\mathrm{Re}\\,\\lambda` of the linear map ``apply`` on fields of shape ``site``
    (module docstring); ``tol`` is ARPACK's relative accuracy."""
    n = math.prod(site)
    if n <= DENSE_UNKNOWNS:
        return float(torch.linalg.eigvals(dense_matrix(apply, site, dtype, device)).real.min())
    from scipy.sparse.linalg import LinearOperator, eigs

    def matvec(x: np.ndarray) -> np.ndarray:
        v = torch.from_numpy(np.ascontiguousarray(x, dtype=np.complex128).reshape(1, *site)).to(device=device, dtype=dtype)
        return apply(v).reshape(-1).cpu().numpy().astype(np.complex128)

    op = LinearOperator((n, n), matvec=matvec, dtype=np.complex128)
    rng = np.random.default_rng(0)  # a fixed start (a constant vector can be a zero mode: the free field)
    start = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    values = eigs(op, k=4, which="SR", tol=tol, ncv=min(40, n - 1), maxiter=20_000, return_eigenvectors=False, v0=start)
    return float(values.real.min())
