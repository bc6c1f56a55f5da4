r"""The compiled SU(N) gauge molecular dynamics (``csrc/gauge.h``): the Wilson-action force and the
drift :math:`U \to e^{i\epsilon P}U` of :mod:`hpcflow.samplers.gauge_hmc`, each one pass over the
links. The torch code there stays the specification (the same formulas, tested against it to
rounding) and runs wherever :func:`accepts` is false.
"""

from __future__ import annotations

import torch
from torch import Tensor

from hpcflow.kernels import compiled
from hpcflow.kernels.dirac import cpu_neighbour_table

__all__ = ["accepts", "drift", "wilson_force"]


def accepts(u: Tensor) -> bool:
    """Whether the kernels run links ``u`` ``(B, d, *L, N, N)``: built, CPU, complex64/128, N <= 3,
    no autograd."""
    return (compiled() is not None and u.device.type == "cpu" and u.dtype in (torch.complex64, torch.complex128)
            and u.dim() == u.shape[1] + 4 and u.shape[-1] <= 3 and not u.requires_grad)


def _site_flat(u: Tensor) -> Tensor:
    return u.contiguous().view(u.shape[0], u.shape[1], -1, u.shape[-2], u.shape[-1])


def wilson_force(u: Tensor, coefficient: float) -> Tensor:
    r""":math:`F_\mu(x) = c\,[(M - M^\dagger)/2i]_{\rm traceless}`, :math:`M = U_\mu(x)A_\mu(x)`, for links
    ``(B, d, *L, N, N)`` (:func:`hpcflow.samplers.gauge_hmc.wilson_force` with ``c = beta / 2N``)."""
    force = compiled().gauge_force(_site_flat(u), cpu_neighbour_table(tuple(u.shape[2:-2])), coefficient)
    return force.view(u.shape)


def drift(p: Tensor, u: Tensor, eps: float) -> Tensor:
    r""":math:`e^{i\epsilon P}U` per link for hermitian momenta ``p`` and links ``u`` of one shape."""
    return compiled().su_n_drift(p.contiguous(), u.contiguous(), eps)
