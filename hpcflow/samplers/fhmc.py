r"""Flow HMC: HMC in the latent variables of a normalizing flow.

With a flow :math:`\phi = f(z)` the target :math:`p(\phi) \propto e^{-S(\phi)}` pulls back to the
latent density :math:`e^{-S_F(z)}`,

.. math::
    S_F(z) = S(f(z)) - \log|\det J_f(z)|,

because :math:`p(f(z))\,|\det J_f(z)|` is the density of :math:`z`. HMC on :math:`S_F` (any
integrator of :mod:`hpcflow.samplers.integrators`, an exact Metropolis test on
:math:`H = \frac12\pi^2 + S_F`) samples :math:`z`, and :math:`f(z)` is then distributed as
:math:`p` whatever the flow; the flow only decides how fast the chain decorrelates. When the flow
is a trivializing map, :math:`S_F` is a free Gaussian and the molecular dynamics is that of free
fields. The force :math:`\partial S_F/\partial z` comes from autograd through the flow and the
action (the same action function the training and the other samplers use); the log-det term
enters with a minus sign. Flow HMC is :class:`~hpcflow.samplers.hmc.HMC` on this action, not a
sampler of its own.

References:
    | Albandea, Del Debbio, Hernandez, Kenway, Marsh Rossney, Ramos, arXiv:2302.08408
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hpcflow.theories.action import Action

__all__ = ["PulledBackAction"]


class PulledBackAction:
    r"""The latent action :math:`S_F(z) = S(f(z)) - \log|\det J_f(z)|` of a flow and its force.

    Arguments:
        flow: a map ``z -> (phi, log|det df/dz|)`` (:class:`~hpcflow.models.flows.flow.Flow`);
            it is evaluated in the dtype and on the device of ``z``, with its parameters frozen.
        action: the target action :math:`S`.
    """

    def __init__(self, flow: nn.Module, action: Action) -> None:
        self.flow = flow.eval()
        for p in self.flow.parameters():
            p.requires_grad_(False)
        self.target = action

    def push(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``(phi, S(phi))`` for latent fields ``z`` ``(B, *L)``."""
        with torch.no_grad():
            phi, _ = self.flow(z)
            return phi, self.target(phi)

    def __call__(self, z: Tensor) -> Tensor:
        """:math:`S_F(z)` per configuration, ``(B,)``."""
        with torch.no_grad():
            phi, logdet = self.flow(z)
            return self.target(phi) - logdet

    def force(self, z: Tensor) -> Tensor:
        r""":math:`\partial S_F/\partial z` by autograd (the chains are independent, so the gradient
        of the batch sum is each chain's own)."""
        with torch.enable_grad():
            leaf = z.detach().requires_grad_(True)
            phi, logdet = self.flow(leaf)
            (grad,) = torch.autograd.grad((self.target(phi) - logdet).sum(), leaf)
        return grad
