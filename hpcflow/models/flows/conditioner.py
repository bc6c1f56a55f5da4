r"""Convolutional conditioners that run on one sublattice instead of the full lattice.

A coupling layer needs parameters on its active sites as a function of the frozen sites. The
straightforward conditioner (Albergo et al.) runs a CNN over the full lattice with the active
sites masked to zero: half of the first layer's input is zeros and half of the last layer's output
is thrown away. Here the frozen sites are packed into a dense rectangle
(:mod:`hpcflow.lattice.sublattice`), the first layer takes them to the active sites and every
further layer acts on the active sublattice only, which halves the convolution work.

With kernel :math:`k = 2m + 1`:

* the first layer is a :math:`2m\times 2m` convolution placed so that each active site sees the
  frozen sites within taxicab distance :math:`2m - 1`, symmetric about it (for :math:`k = 3`:
  its four nearest neighbours, the sites the action couples it to);
* each further layer is a :math:`k\times k` convolution on the active sublattice: every active
  site sees the active sites within taxicab distance :math:`2m` (for :math:`k = 3`: itself, its
  four diagonal neighbours and the four sites two steps away along the axes).

So an active site's parameters depend on the frozen sites within taxicab distance
:math:`2m(n+1) - 1` for :math:`n` hidden layers. The lattice is periodic: the frozen field is
padded by gathering (:meth:`~hpcflow.lattice.sublattice.SublatticeFrame.padded`) once, and all
convolutions are "valid". The weights do not depend on the lattice size, so a trained flow runs on
any even lattice (volume transfer). The last layer starts at zero, so a fresh coupling layer is
the identity map.
"""

from __future__ import annotations

from torch import Tensor, nn

from hpcflow.lattice.sublattice import SublatticeFrame

__all__ = ["ACTIVATIONS", "SublatticeConditioner"]

ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}


class SublatticeConditioner(nn.Module):
    """Frozen sublattice ``(B, N)`` -> parameters on the active sublattice ``(B, out_channels, N)``.

    Arguments:
        out_channels: parameters per active site.
        hidden: channels of the hidden layers, e.g. ``[16, 16]``.
        kernel: odd kernel size, at least 3.
        active: parity of the active sites (the frozen ones have the other parity).
        activation: a key of :data:`ACTIVATIONS`.
    """

    def __init__(self, out_channels: int, hidden: list[int], kernel: int, active: int, activation: str = "leaky_relu") -> None:
        super().__init__()
        if kernel % 2 == 0 or kernel < 3:
            raise ValueError(f"kernel = {kernel}: must be odd and at least 3")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation = {activation!r}: expected one of {sorted(ACTIVATIONS)}")
        self.active = active
        m = kernel // 2
        channels = [1, *hidden, out_channels]
        # The first layer takes the frozen sites to the active ones, the others act on the active
        # sublattice; for m = 1, active parity 1 at packed (v, u) neighbours frozen (v..v+1,
        # u..u+1), parity 0 frozen (v-1..v, u-1..u): the first window starts m-1 or m before it.
        sizes = [2 * m] + [kernel] * len(hidden)
        layers: list[nn.Module] = []
        for i, (c_in, c_out, size) in enumerate(zip(channels[:-1], channels[1:], sizes)):
            if i:
                layers.append(ACTIVATIONS[activation]())
            layers.append(nn.Conv2d(c_in, c_out, size))
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)
        reach = len(hidden) * m
        self.before = reach + (m - 1 if active == 1 else m)
        self.after = reach + (m if active == 1 else m - 1)

    def forward(self, frozen: Tensor, frame: SublatticeFrame) -> Tensor:
        image = frame.padded(frozen, 1 - self.active, self.before, self.after)
        return self.net(image).flatten(2)
