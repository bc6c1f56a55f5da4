"""Convolutional conditioners of the coupling layers.

A stack of 2D convolutions with circular padding (the lattice is periodic), so the same weights
act on any lattice size (volume transfer). The last convolution starts at zero: a fresh coupling
layer is the identity map.
"""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["ACTIVATIONS", "ConvConditioner"]

ACTIVATIONS = {"leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}


class ConvConditioner(nn.Module):
    """``(B, 1, L0, L1) -> (B, out_channels, L0, L1)``.

    Arguments:
        out_channels: parameters per site of the transformation.
        hidden: channels of the hidden layers, e.g. ``[16, 16]``.
        kernel: odd kernel size.
        activation: a key of :data:`ACTIVATIONS`.
    """

    def __init__(self, out_channels: int, hidden: list[int], kernel: int, activation: str = "leaky_relu") -> None:
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"kernel = {kernel}: must be odd so that the output stays on the sites")
        channels = [1, *hidden, out_channels]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])):
            layers.append(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, padding_mode="circular"))
            if i < len(channels) - 2:
                layers.append(ACTIVATIONS[activation]())
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
