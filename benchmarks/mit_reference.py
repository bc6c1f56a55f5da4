"""A straightforward affine-coupling flow in the style of the MIT tutorial (Albergo et al. 2021),
kept as the baseline of bench_flow_training.py: masks applied by multiplication over the full
lattice, conditioner on the full masked field, a Tanh on the conditioner output. Unlike the
tutorial, the last convolution starts at zero (as hpcflow's do), so both flows start at the
identity and equal-time training compares the architectures, not the initializations."""

from __future__ import annotations

import math

import torch
from torch import nn


def checker_mask(shape: tuple[int, int], parity: int) -> torch.Tensor:
    checker = torch.ones(shape, dtype=torch.uint8) - parity
    checker[::2, ::2] = parity
    checker[1::2, 1::2] = parity
    return checker


class ReferenceAffine(nn.Module):
    def __init__(self, net: nn.Module, shape: tuple[int, int], parity: int) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mask", checker_mask(shape, parity))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_frozen = self.mask * x
        x_active = (1 - self.mask) * x
        out = self.net(x_frozen.unsqueeze(1))
        s, t = out[:, 0], out[:, 1]
        fx = (1 - self.mask) * t + x_active * torch.exp(s) + x_frozen
        return fx, torch.sum((1 - self.mask) * s, dim=(1, 2))


def reference_net(hidden: list[int], kernel: int) -> nn.Module:
    sizes = [1, *hidden, 2]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Conv2d(sizes[i], sizes[i + 1], kernel, padding=kernel // 2, padding_mode="circular"))
        layers.append(nn.LeakyReLU() if i < len(sizes) - 2 else nn.Tanh())
    nn.init.zeros_(layers[-2].weight)
    nn.init.zeros_(layers[-2].bias)
    return nn.Sequential(*layers)


class ReferenceFlow(nn.Module):
    def __init__(self, layers: int, hidden: list[int], kernel: int, shape: tuple[int, int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(ReferenceAffine(reference_net(hidden, kernel), shape, i % 2) for i in range(layers))

    def push(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_q = -0.5 * (z * z).sum((1, 2)) - 0.5 * z[0].numel() * math.log(2 * math.pi)
        for layer in self.layers:
            z, logdet = layer(z)
            log_q = log_q - logdet
        return z, log_q
