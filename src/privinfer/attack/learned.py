"""Learned inversion attacks: a network trained on (what the server saw, original chunk) pairs.

The same trainer serves the strong attacker (trained on chunks like the inputs), the weak one
(trained on another distribution) and the no-information floor (trained on all-zero inputs:
it can only learn the training set's average image, which is what perfect privacy leaves).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from privinfer.attack.decoder import InversionDecoder


class PixelRefiner(nn.Module):
    """Image -> image (for blurred / pixelated chunks): the input plus a learned correction."""

    def __init__(self, width: int = 48) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.LeakyReLU(0.1),
            nn.Conv2d(width, width, 3, padding=2, dilation=2), nn.LeakyReLU(0.1),
            nn.Conv2d(width, width, 3, padding=4, dilation=4), nn.LeakyReLU(0.1),
            nn.Conv2d(width, 3, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.net(x)).clamp(0, 1)


@dataclass(frozen=True)
class AttackTraining:
    steps: int = 800
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    # Decoders rebuild at 1/2 resolution of the chunk (two x2 stages from stride 8): 4x cheaper on
    # this CPU; every attacker and the floor are scored at that same resolution.
    stages: int = 2


def build_attacker(observed: torch.Tensor, stages: int) -> nn.Module:
    """A decoder for embeddings (C > 3 channels; ``stages`` x2 upsamplings), a refiner for images."""
    return PixelRefiner() if observed.shape[1] == 3 else InversionDecoder(observed.shape[1], stages=stages)


def train_attacker(
    observed: torch.Tensor, originals: torch.Tensor, settings: AttackTraining, label: str = ""
) -> nn.Module:
    """Fit an attacker on pairs; originals (N, 3, S, S) in [0, 1]. Loss: L1 + MSE (sharper than MSE alone)."""
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    attacker = build_attacker(observed, settings.stages)
    optimiser = torch.optim.Adam(attacker.parameters(), settings.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.steps)
    attacker.train()
    for _ in tqdm(range(settings.steps), desc=f"attacker {label}", leave=False):
        index = torch.randint(len(observed), (settings.batch_size,), generator=generator)
        rebuilt = attacker(observed[index])
        target = originals[index]
        if rebuilt.shape[-1] != target.shape[-1]:
            target = F.interpolate(target, size=rebuilt.shape[-2:], mode="area")
        loss = F.l1_loss(rebuilt, target) + F.mse_loss(rebuilt, target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
    return attacker.eval()


@torch.inference_mode()
def reconstruct(attacker: nn.Module, observed: torch.Tensor, size: int, batch: int = 64) -> torch.Tensor:
    """Rebuilt chunks (N, 3, size, size) in [0, 1]."""
    parts = [attacker(observed[i : i + batch]) for i in range(0, len(observed), batch)]
    out = torch.cat(parts)
    return out if out.shape[-1] == size else F.interpolate(out, size=(size, size), mode="bilinear")
