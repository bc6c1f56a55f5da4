r"""Reverse Kullback-Leibler training objective and importance-weight diagnostics.

:math:`L(\theta) = E_{z\sim r}[\log r(z) - \log|\det J_f(z)| + S(f(z))] = KL(q\|p) - \log Z`,
estimated on a batch. Log weights :math:`\log w = -S(\phi) - \log q(\phi)` (up to :math:`\log Z`).

A non-finite log weight (NaN, or +-inf from an overflowing flow or action) is a proposal that
cannot be weighed: everywhere in hpcflow it counts as weight zero, i.e. it is rejected
(:func:`finite_log_weights`), never accepted.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor, nn

from hpcflow.theories.action import Action

__all__ = ["effective_sample_size", "finite_log_weights", "imh_acceptance", "reverse_kl"]


def reverse_kl(
    flow: nn.Module, action: Action, z: Tensor, forward: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None
) -> tuple[Tensor, Tensor]:
    """``(loss, log_w)`` for latent batch ``z`` of ``flow`` (any model of :mod:`hpcflow.models.registry`);
    ``loss`` is differentiable, ``log_w`` detached.

    ``forward`` replaces ``flow`` for the map itself (a data-parallel wrapper of it, whose
    forward call registers the gradient averaging).
    """
    phi, logdet = (forward or flow)(z)
    log_q = flow.prior.log_prob(z) - logdet
    s = action(phi)
    return (log_q + s).mean(), (-s - log_q).detach()


def finite_log_weights(log_w: Tensor) -> Tensor:
    """``log_w`` with every non-finite entry (NaN, +-inf) replaced by ``-inf`` (weight zero)."""
    return torch.where(torch.isfinite(log_w), log_w, torch.full_like(log_w, -math.inf))


def effective_sample_size(log_w: Tensor) -> float:
    r"""Normalized ESS :math:`(\sum w)^2 / (N\sum w^2) \in [0, 1]`, computed in log space.

    ``N`` counts every proposal; non-finite weights count as zero (0 if none is finite)."""
    n = log_w.numel()
    lw = finite_log_weights(log_w.flatten())
    if not torch.isfinite(lw).any():
        return 0.0
    return math.exp(2.0 * torch.logsumexp(lw, 0).item() - torch.logsumexp(2.0 * lw, 0).item() - math.log(n))


def imh_acceptance(log_w: Tensor, generator: torch.Generator) -> float:
    r"""Mean acceptance probability of an independence Metropolis chain run through the batch.

    Proposal :math:`i` is accepted with :math:`p_i = \min(1, w_i/w_{\rm current})`; the chain is
    simulated with uniforms from ``generator`` and the mean of :math:`p_i` along it returned. A
    non-finite weight has :math:`p_i = 0`; a chain that starts on one (weight zero) accepts the
    first finite proposal.
    """
    lw = finite_log_weights(log_w.flatten()).tolist()
    log_u = torch.rand(len(lw), generator=generator, dtype=torch.float64).log().tolist()
    current, total = lw[0], 0.0
    for i in range(1, len(lw)):
        if lw[i] == -math.inf:
            continue  # weight zero: p_i = 0
        p = min(0.0, lw[i] - current)  # current = -inf: p = 0, accepted
        total += math.exp(p)
        if log_u[i] < p:
            current = lw[i]
    return total / max(1, len(lw) - 1)
