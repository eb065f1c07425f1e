"""Fitting `token`'s template: the feature grid written into a filled face's cells so that the tail
sees the person around it as it would unfilled.

Utility only: the template never reads the face, so there is nothing for an adversary to invert
(its privacy is fill's; the evaluation still attacks it). The loss is the patched graph's
distillation towards the clean chunk (`train.patched`), on windows around the faces found in scene
frames and on training persons' face crops, as for `patch-mask`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from privinfer.client.privatize import region_cells
from privinfer.models import nanodet
from privinfer.obfuscate.token import TEMPLATE_CELLS, resized_template
from privinfer.train.chunks import resized
from privinfer.train.config import HELD_OUT_SCENE_FILES
from privinfer.train.patched import mixed_utility
from privinfer.train.region_chunks import SceneChunk, crop_region
from privinfer.train.start import start_training

CHUNK = 128


@dataclass(frozen=True)
class TokenTrainingConfig:
    steps: int = 800
    scene_batch: int = 4
    crop_batch: int = 8
    lr: float = 0.05
    template_cells: int = TEMPLATE_CELLS  # the template's rows and columns
    # Channels the template keeps (None: all 128). The patch carries only non-zero channels, so this
    # sets the bytes a face costs: after ``steps``, all but the most energetic channels are zeroed and
    # the rest fitted again for ``steps // 2``.
    keep_channels: int | None = None
    seed: int = 0
    fill: str = "black"  # what the client fills regions with (`client.fill`); recorded in the weights
    out_dir: str = "results/train/token"
    corpus_root: str | None = None
    # As for patch-mask: the held-out persons' videos and the utility photos are left out.
    exclude_scene_files: tuple[str, ...] = HELD_OUT_SCENE_FILES
    quick: bool = False


def train_token(config: TokenTrainingConfig, faces: np.ndarray, scenes: list[SceneChunk], device: str = "cpu") -> Path:
    """Fit the template from the mean of the faces' own features (a neutral start); returns the weights file."""
    start = start_training(config, device)
    out, rng, model = start.out, start.rng, start.model
    faces = resized(faces, CHUNK)
    region = crop_region(CHUNK)
    row0, col0, row1, col1 = region_cells(region)
    with torch.no_grad():
        sample = faces[rng.choice(len(faces), min(64, len(faces)), replace=False)]
        z = model.head(nanodet.normalise(list(sample), device))[:, :, row0:row1, col0:col1]
        start = torch.nn.functional.adaptive_avg_pool2d(z.mean(dim=0, keepdim=True), config.template_cells)[0]
    template = start.clone().requires_grad_(True)

    keep = torch.ones(template.shape[0], 1, 1)

    def send(block: torch.Tensor) -> torch.Tensor:
        return resized_template(template * keep, *block.shape[-2:])

    def fit(steps: int, writer, first: int) -> None:
        optimiser = torch.optim.Adam([template], config.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, steps)
        for step in tqdm(range(steps), desc="token"):
            loss = mixed_utility(
                model, scenes, faces, region, send, rng, config.scene_batch, config.crop_batch, device, config.fill
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            writer.writerow([first + step, f"{loss.item():.5f}", int(keep.sum())])

    with open(out / "losses.csv", "w", newline="") as log:
        writer = csv.writer(log)
        writer.writerow(["step", "utility", "channels"])
        fit(config.steps, writer, 0)
        if config.keep_channels is not None and config.keep_channels < template.shape[0]:
            energy = template.detach().pow(2).sum(dim=(1, 2))
            keep.zero_()
            keep[energy.topk(config.keep_channels).indices] = 1
            fit(max(1, config.steps // 2), writer, config.steps)
    template = (template * keep).detach()
    weights = out / "token.pt"
    recipe = {"steps": config.steps, "keep_channels": config.keep_channels, "fill": config.fill}
    torch.save({"template": template.cpu(), **recipe}, weights)
    return weights
