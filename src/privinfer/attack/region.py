"""Attacks on a privatized *region*: rebuild the face from everything the server sees of its chunk.

A server that gets a chunk with a sensitive region sees two things (`privinfer.client.privatize`): the
chunk's pixels with the region filled (or blurred, for a pixel obfuscator), and, for an embedding
obfuscator, the feature patch written into the region's cells. A region attacker gets both:

    input = [pixels, space-to-depth by 8 (3 x 64 channels, lossless)] + [patch placed in its cells,
             zero elsewhere (C channels)] + [a cell mask (1 channel)],  all on the stride-8 grid,

standardised per channel with the training inputs' statistics (without this, channels that an
obfuscator scaled down look like zeros to the optimiser, and the attack is weaker than it could
be). A decoder rebuilds the chunk; only the region is scored, and an attacker's final picture
is what was sent outside the region, its rebuild inside.

The *inpainting floor* is the same attacker given the filled pixels and no patch: what the
context alone tells an attacker. ``fill`` is exactly that view, so its score is the floor.

Attackers train until their validation loss on held-out training pairs stops improving (early
stopping), and report the steps they took.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from privinfer.attack.decoder import InversionDecoder

CELL = 8


@dataclass
class RegionView:
    """What the server sees of N chunks (all one size S) and where their region is.

    pixels: (N, 3, S, S) in [0, 1], as sent (region filled or pixel-obfuscated);
    patch: (N, C, S/8, S/8) float, the patch in its cells, zero elsewhere (all zero without a patch);
    region: (x1, y1, x2, y2) pixel range of the region, the same for every chunk.
    """

    pixels: torch.Tensor
    patch: torch.Tensor
    region: tuple[int, int, int, int]

    def __len__(self) -> int:
        return len(self.pixels)

    def subset(self, index) -> RegionView:
        return RegionView(self.pixels[index], self.patch[index], self.region)

    def cells(self) -> torch.Tensor:
        """(1, 1, S/8, S/8): 1 on the cells a patch covers."""
        x1, y1, x2, y2 = self.region
        rows, cols = self.patch.shape[-2:]
        mask = torch.zeros(1, 1, rows, cols)
        mask[..., y1 // CELL : -(-y2 // CELL), x1 // CELL : -(-x2 // CELL)] = 1
        return mask

    def stacked(self) -> torch.Tensor:
        """The attacker's input (N, 192 + C + 1, S/8, S/8), before standardisation."""
        cells = self.cells().expand(len(self), -1, -1, -1)
        return torch.cat([F.pixel_unshuffle(self.pixels, CELL), self.patch, cells], dim=1)


def region_mask(region: tuple[int, int, int, int], chunk: int, size: int) -> torch.Tensor:
    """(1, 1, size, size): 1 inside the region of a ``chunk`` px chunk, at the attack resolution."""
    scale = size / chunk
    x1, y1, x2, y2 = (round(v * scale) for v in region)
    mask = torch.zeros(1, 1, size, size)
    mask[..., y1:y2, x1:x2] = 1
    return mask


class RegionAttacker(nn.Module):
    """Standardise the stacked view, decode, and paste the rebuild into the sent context."""

    def __init__(self, channels: int, stages: int = 2, width: int = 64) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, channels, 1, 1))
        self.register_buffer("std", torch.ones(1, channels, 1, 1))
        self.decoder = InversionDecoder(channels, width=width, stages=stages)

    def fit_standardiser(self, inputs: torch.Tensor) -> None:
        """Per-channel mean and std of the training inputs (a constant channel gets std 1)."""
        self.mean.copy_(inputs.mean(dim=(0, 2, 3), keepdim=True))
        std = inputs.std(dim=(0, 2, 3), keepdim=True)
        self.std.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:
        return self.decoder((stacked - self.mean) / self.std)


def composite(rebuilt: torch.Tensor, view: RegionView) -> torch.Tensor:
    """The attacker's picture: what was sent outside the region, the rebuild inside, at the rebuild's size."""
    size = rebuilt.shape[-1]
    sent = F.interpolate(view.pixels, size=(size, size), mode="area")
    mask = region_mask(view.region, view.pixels.shape[-1], size)
    return sent * (1 - mask) + rebuilt * mask


def region_loss(rebuilt: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L1 + MSE over the region's pixels only."""
    weight = mask.expand_as(rebuilt)
    count = weight.sum().clamp_min(1)
    diff = (rebuilt - target) * weight
    return diff.abs().sum() / count + diff.pow(2).sum() / count


@dataclass(frozen=True)
class RegionAttackTraining:
    max_steps: int = 3000
    batch_size: int = 32
    lr: float = 1e-3
    eval_every: int = 100
    patience: int = 4  # evaluations without a better validation loss before stopping
    validation_share: float = 0.1
    stages: int = 2  # x2 upsamplings from stride 8: 2 -> rebuilt at half the chunk's resolution
    width: int = 64
    seed: int = 0


@dataclass
class TrainedAttacker:
    attacker: RegionAttacker
    steps: int  # steps taken before early stopping
    best_step: int
    validation_loss: float


def train_region_attacker(
    view: RegionView, originals: torch.Tensor, settings: RegionAttackTraining, label: str = "",
    progress=lambda _: None,
) -> TrainedAttacker:  # fmt: skip
    """Fit an attacker on (view, original chunk in [0, 1]) pairs; stop when validation stops improving.

    The weights of the best validation step are kept.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    torch.manual_seed(settings.seed)
    inputs = view.stacked()
    order = torch.randperm(len(inputs), generator=generator)
    held = max(1, int(len(inputs) * settings.validation_share))
    val_index, train_index = order[:held], order[held:]
    attacker = RegionAttacker(inputs.shape[1], settings.stages, settings.width)
    attacker.fit_standardiser(inputs[train_index])
    size = inputs.shape[-1] * 2**settings.stages
    targets = F.interpolate(originals, size=(size, size), mode="area")
    mask = region_mask(view.region, view.pixels.shape[-1], size)
    optimiser = torch.optim.Adam(attacker.parameters(), settings.lr)
    best, best_step, best_state, stale, step = float("inf"), 0, None, 0, 0
    for step in range(1, settings.max_steps + 1):
        attacker.train()
        batch = train_index[torch.randint(len(train_index), (settings.batch_size,), generator=generator)]
        loss = region_loss(attacker(inputs[batch]), targets[batch], mask)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % settings.eval_every and step != settings.max_steps:
            continue
        attacker.eval()
        with torch.inference_mode():
            val = float(region_loss(_batched(attacker, inputs[val_index]), targets[val_index], mask))
        progress(f"attacker {label}: step {step}, validation loss {val:.4f}")
        if val < best - 1e-4:
            best, best_step, stale = val, step, 0
            best_state = {k: v.clone() for k, v in attacker.state_dict().items()}
        else:
            stale += 1
            if stale >= settings.patience:
                break
    if best_state is not None:
        attacker.load_state_dict(best_state)
    return TrainedAttacker(attacker.eval(), step, best_step, best)


def _batched(attacker: nn.Module, inputs: torch.Tensor, batch: int = 64) -> torch.Tensor:
    return torch.cat([attacker(inputs[i : i + batch]) for i in range(0, len(inputs), batch)])


@torch.inference_mode()
def rebuild(attacker: RegionAttacker, view: RegionView) -> torch.Tensor:
    """The attacker's pictures of every chunk of ``view`` (composited with the sent context)."""
    return composite(_batched(attacker.eval(), view.stacked()), view)
