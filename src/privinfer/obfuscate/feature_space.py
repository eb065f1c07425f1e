"""The feature-space baselines of the reference paper: unaltered, Gaussian noise, random mask."""

from __future__ import annotations

import torch

from privinfer.obfuscate.base import EmbeddingObfuscator
from privinfer.obfuscate.registry import register


@register("unaltered")
class Unaltered(EmbeddingObfuscator):
    """Sends z as it is: the privacy floor of split inference (and its utility ceiling)."""

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return z


@register("gaussian")
class GaussianNoise(EmbeddingObfuscator):
    """Adds N(0, sigma^2) to every element of z; sigma is in embedding units (z's std is ~1 here)."""

    stochastic = True

    def __init__(self, sigma: float = 1.0, seed: int | None = None) -> None:
        if sigma < 0:
            from privinfer.errors import ConfigError

            raise ConfigError(f"gaussian sigma must be >= 0, got {sigma}")
        self.sigma = sigma
        self._generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        noise = torch.randn(z.shape, generator=self._generator, dtype=z.dtype).to(z.device)
        return z + self.sigma * noise


@register("random-mask")
class RandomMask(EmbeddingObfuscator):
    """Zeroes a fresh random subset of channels for every tile (``drop`` = the share zeroed)."""

    stochastic = True

    def __init__(self, drop: float = 0.5, seed: int | None = None) -> None:
        if not 0.0 <= drop < 1.0:
            from privinfer.errors import ConfigError

            raise ConfigError(f"random-mask drop share must be in [0, 1), got {drop}")
        self.drop = drop
        self._generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        n, c = z.shape[:2]
        keep = torch.rand((n, c), generator=self._generator) >= self.drop
        return z * keep.to(z.device, z.dtype)[:, :, None, None]
