r"""Reverse Kullback-Leibler training objective and importance-weight diagnostics.

:math:`L(\theta) = E_{z\sim r}[\log r(z) - \log|\det J_f(z)| + S(f(z))] = KL(q\|p) - \log Z`,
estimated on a batch. Log weights :math:`\log w = -S(\phi) - \log q(\phi)` (up to :math:`\log Z`).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from hpcflow.models.flows.flow import Flow
from hpcflow.theories.action import Action

__all__ = ["effective_sample_size", "imh_acceptance", "reverse_kl"]


def reverse_kl(
    flow: Flow, action: Action, z: Tensor, forward: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None
) -> tuple[Tensor, Tensor]:
    """``(loss, log_w)`` for latent batch ``z``; ``loss`` is differentiable, ``log_w`` detached.

    ``forward`` replaces ``flow`` for the map itself (a data-parallel wrapper of it, whose
    forward call registers the gradient averaging).
    """
    phi, logdet = (forward or flow)(z)
    log_q = flow.prior.log_prob(z) - logdet
    s = action(phi)
    return (log_q + s).mean(), (-s - log_q).detach()


def effective_sample_size(log_w: Tensor) -> float:
    r"""Normalized ESS :math:`(\sum w)^2 / (N\sum w^2) \in [0, 1]`, computed in log space."""
    n = log_w.numel()
    return math.exp(2.0 * torch.logsumexp(log_w, 0).item() - torch.logsumexp(2.0 * log_w, 0).item() - math.log(n))


def imh_acceptance(log_w: Tensor, generator: torch.Generator) -> float:
    r"""Mean acceptance probability of an independence Metropolis chain run through the batch.

    Proposal :math:`i` is accepted with :math:`p_i = \min(1, w_i/w_{\rm current})`; the chain is
    simulated with uniforms from ``generator`` and the mean of :math:`p_i` along it returned.
    """
    lw = log_w.tolist()
    log_u = torch.rand(len(lw), generator=generator, dtype=torch.float64).log().tolist()
    current, total = lw[0], 0.0
    for i in range(1, len(lw)):
        p = min(0.0, lw[i] - current)
        total += math.exp(p)
        if log_u[i] < p:
            current = lw[i]
    return total / max(1, len(lw) - 1)
