r"""A gauge-equivariant plaquette coupling layer for 2D U(1) (Kanwar, Albergo, Boyda, Cranmer,
Hackett, Racaniere, Rezende, Shanahan, PRL 125, 121601, arXiv:2003.06413).

Angles ``theta`` ``(B, 2, L0, L1)``, plaquettes
:math:`P(x) = \theta_0(x) + \theta_1(x+\hat 0) - \theta_0(x+\hat 1) - \theta_1(x)`
(:func:`~hpcflow.theories.gauge.u1_plaquette_angle`). A layer of direction :math:`\mu` and offset
:math:`o` sorts the sites by :math:`r = (x_\nu - o) \bmod 4`, :math:`\nu = 1 - \mu`:

* the links :math:`\theta_\mu(x)` with :math:`r = 0` are updated; each lies in the plaquette
  :math:`P(x)` (sign :math:`s_\mu = +1` for :math:`\mu = 0`, :math:`-1` for :math:`\mu = 1`) and in
  one neighbour (:math:`r = 3`);
* the plaquettes with :math:`r = 0` are *active*: each holds exactly one updated link and is
  moved by a circular spline :math:`P \to h(P)` (:mod:`.circular`), the link by
  :math:`\theta_\mu(x) \to \theta_\mu(x) + s_\mu[h(P(x)) - P(x)]`;
* the plaquettes with :math:`r = 1, 2` are *frozen* (they hold no updated link) and condition
  the spline through a periodic CNN of :math:`(\cos P, \sin P)`; those with :math:`r = 3` are
  passive (they change, and are seen by no conditioner of this layer).

With the frozen plaquettes fixed, :math:`\partial\theta_\mu'(x)/\partial\theta_\mu(x) = 1 + s_\mu^2
(h' - 1) = h'(P(x))`, so :math:`\log\det J = \sum_{r = 0}\log h'(P(x))`. Everything depends on
the links only through plaquettes, which are gauge invariant, and a link moves by a gauge-invariant
angle, so the layer commutes with gauge transformations. Extents along :math:`\nu` must be
multiples of 4. Link angles come out wrapped into :math:`[-\pi, \pi)`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from hpcflow.models.flows.conditioner import ACTIVATIONS
from hpcflow.models.gauge_coupling.circular import circular_spline, wrap_angle
from hpcflow.theories.gauge import u1_plaquette_angle

__all__ = ["PERIOD", "PlaquetteCoupling"]

PERIOD = 4
"""Period of the stripes: one active, two frozen and one passive row of plaquettes."""


class PlaquetteCoupling(nn.Module):
    """One layer (see the module text).

    Arguments:
        mu: direction of the updated links (0 or 1).
        offset: which row of each period of 4 holds the active plaquettes.
        hidden: channels of the conditioner's hidden convolutions (``[]``: a single one).
        kernel: odd kernel size of the convolutions.
        bins: bins of the circular spline.
        activation: a key of :data:`~hpcflow.models.flows.conditioner.ACTIVATIONS`.
    """

    def __init__(self, mu: int, offset: int, hidden: list[int], kernel: int, bins: int,
                 activation: str = "leaky_relu") -> None:
        super().__init__()
        if mu not in (0, 1):
            raise ValueError(f"mu = {mu}: expected 0 or 1")
        if kernel % 2 == 0 or kernel < 1:
            raise ValueError(f"kernel = {kernel}: must be odd")
        self.mu, self.offset, self.sign = mu, offset % PERIOD, 1.0 if mu == 0 else -1.0
        channels = [2, *hidden, 3 * bins]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            if i:
                layers.append(ACTIVATIONS[activation]())
            layers.append(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, padding_mode="circular"))
        nn.init.zeros_(layers[-1].weight)  # a fresh layer is the identity
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def _rows(self, extent: int, device: torch.device) -> tuple[Tensor, Tensor]:
        r"""The coordinates :math:`x_\nu` of the active rows (:math:`r = 0`) and the frozen mask
        (:math:`r = 1, 2`) along :math:`\nu`, ``(L_nu,)``."""
        if extent % PERIOD:
            raise ValueError(f"extent {extent} of axis {1 - self.mu} is not a multiple of {PERIOD}: the plaquette "
                             "stripes need multiples of 4")
        r = torch.remainder(torch.arange(extent, device=device) - self.offset, PERIOD)
        return torch.nonzero(r == 0).flatten(), (r == 1) | (r == 2)

    def forward(self, theta: Tensor, inverse: bool = False) -> tuple[Tensor, Tensor]:
        """``(theta', log det)`` of the layer, or of its inverse."""
        nu = 1 - self.mu
        axis = 1 + nu  # of the plaquettes (B, L0, L1)
        active, frozen = self._rows(theta.shape[2 + nu], theta.device)
        frozen = frozen.to(theta.dtype)[:, None] if nu == 0 else frozen.to(theta.dtype)[None, :]
        p = wrap_angle(u1_plaquette_angle(theta))
        logits = self.net(torch.stack([torch.cos(p), torch.sin(p)], 1) * frozen).movedim(1, -1)
        p_active = p.index_select(axis, active)
        moved, log_deriv = circular_spline(p_active, logits.index_select(axis, active), inverse=inverse)
        delta = torch.zeros_like(p).index_add(axis, active, moved - p_active)
        links = list(theta.unbind(1))
        links[self.mu] = wrap_angle(links[self.mu] + self.sign * delta)
        return torch.stack(links, 1), log_deriv.flatten(1).sum(1)
