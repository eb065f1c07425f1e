"""White-box optimisation attack (He et al.'s regularised maximum likelihood, rMLE).

The attacker knows the head and the obfuscator: it searches for an image x whose obfuscated
embedding matches what was sent, with a total-variation prior, for a bounded number of steps.
Stochastic obfuscators cannot be replayed: for them the attacker matches head(x) on the
channels that arrived non-zero (a random mask shows which channels it dropped; noise is
treated as part of the observation).
"""

from __future__ import annotations

import torch

from privinfer.models import nanodet
from privinfer.obfuscate import EmbeddingObfuscator


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., :, 1:] - x[..., :, :-1]).abs().mean()


def unit_to_model_input(x_unit: torch.Tensor) -> torch.Tensor:
    """RGB (N, 3, H, W) in [0, 1] -> the model's normalised BGR input, differentiably (what attacks optimise)."""
    bgr = x_unit.flip(1) * 255.0
    mean = torch.tensor(nanodet.MEAN_BGR, device=x_unit.device).view(1, 3, 1, 1)
    std = torch.tensor(nanodet.STD_BGR, device=x_unit.device).view(1, 3, 1, 1)
    return (bgr - mean) / std


def whitebox_reconstruct(
    model: nanodet.NanoDet, obfuscator: EmbeddingObfuscator, observed: torch.Tensor, size: int,
    steps: int = 200, tv_weight: float = 0.05, lr: float = 0.05, seed: int = 0,
) -> torch.Tensor:  # fmt: skip
    """Optimise images (N, 3, size, size) in [0, 1] so that obfuscator(head(x)) ~ observed."""
    generator = torch.Generator().manual_seed(seed)
    logits = (torch.randn(len(observed), 3, size, size, generator=generator) * 0.1).requires_grad_(True)
    optimiser = torch.optim.Adam([logits], lr)
    kept = (observed.abs().sum(dim=(2, 3)) > 0).float()[:, :, None, None]
    for _ in range(steps):
        x = torch.sigmoid(logits)
        z = model.head(unit_to_model_input(x))
        sent = z * kept if obfuscator.stochastic else obfuscator(z)
        loss = (sent - observed).pow(2).mean() + tv_weight * total_variation(x)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return torch.sigmoid(logits).detach()
