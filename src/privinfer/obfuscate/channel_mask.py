"""The learned obfuscator: a per-channel mask generated from the embedding itself.

The mask-generation network reads the embedding z of a sensitive tile, pools it to one value
per channel, and a small MLP with a sigmoid gives a mask m in [0,1]^C; the server sees z * m.
It is trained against a reconstruction adversary (see the training module) so that what the
server sees still drives the detector but cannot be turned back into the image.

Deployed, the mask is hard: each channel is sent as it is or exactly zero (mask >= 0.5). A soft
mask only rescales channels, and float16 keeps even tiny scales, so an attacker who has the shipped
weights (everyone) can divide the mask out again; only a zeroed channel removes information.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from privinfer.errors import ConfigError
from privinfer.obfuscate.base import EmbeddingObfuscator
from privinfer.obfuscate.registry import register


class MaskGenerator(nn.Module):
    """pooled z (N, C) -> MLP -> sigmoid -> mask (N, C)."""

    def __init__(self, channels: int = 128, hidden: int = 64) -> None:
        super().__init__()
        self.channels = channels
        self.net = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, channels))
        # Start by keeping every channel (mask ~0.95): training then learns what to switch off,
        # from a point where the detector still works.
        nn.init.constant_(self.net[2].bias, 3.0)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z.mean(dim=(2, 3))))


SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "channel_mask.pt"


@register("channel-mask")
class ChannelMask(EmbeddingObfuscator):
    """z * M(z). Loads ``weights`` when given, else the shipped trained weights (see weights/README.md).

    ``weights="untrained"`` gives the seeded random initialisation, which keeps ~all channels and is
    *not* private (a starting point for training, and a control in tests).
    """

    def __init__(
        self,
        weights: str | Path | None = None,
        channels: int = 128,
        hidden: int = 64,
        seed: int = 0,
        device: str | torch.device = "cpu",
        hard: bool = True,
    ) -> None:
        if weights is None:
            weights = SHIPPED_WEIGHTS if SHIPPED_WEIGHTS.is_file() else "untrained"
        weights = None if weights == "untrained" else weights
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.generator = MaskGenerator(channels, hidden)
        self.trained = weights is not None
        self.hard = hard
        if weights is not None:
            path = Path(weights)
            if not path.is_file():
                raise ConfigError(f"channel-mask weights file {path} does not exist")
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.generator.load_state_dict(state.get("mask_generator", state))
        self.generator.to(device).eval()

    def mask(self, z: torch.Tensor) -> torch.Tensor:
        """Per-channel mask (N, C): 0 or 1 when ``hard`` (the default), the generator's sigmoid otherwise."""
        soft = self.generator(z)
        return (soft >= 0.5).to(z.dtype) if self.hard else soft

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.mask(z)[:, :, None, None]
