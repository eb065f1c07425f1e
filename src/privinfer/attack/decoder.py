"""Inversion decoders: networks that try to rebuild the image from what a server sees.

The decoder mirrors the stride-8 head: three x2 upsampling stages from (C, S/8, S/8) back to
(3, S, S). ``out_scale`` < 1 gives a cheaper proxy (e.g. 64 px output for 128 px chunks) used
inside the adversarial training loop; the evaluation attackers use full resolution.
"""

from __future__ import annotations

import torch
from torch import nn


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.1))


class InversionDecoder(nn.Module):
    """(N, C, h, w) embedding -> (N, 3, 8h*out_scale, 8w*out_scale) image in [0, 1]."""

    def __init__(self, channels: int = 128, width: int = 96, stages: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [_block(channels, width), _block(width, width)]
        current = width
        for _ in range(stages):
            nxt = max(32, current // 2)
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), _block(current, nxt), _block(nxt, nxt)]
            current = nxt
        layers += [nn.Conv2d(current, 3, 3, padding=1), nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def proxy_decoder(channels: int = 128) -> InversionDecoder:
    """The cheap adversary used during obfuscator training: two upsampling stages (stride 8 -> 2)."""
    return InversionDecoder(channels, width=64, stages=2)
