"""Adversarial training of `patch-mask`, the learned obfuscator of feature patches.

Each step trains three networks in turn:

- a proxy *attacker* rebuilds training persons' face crops from what a server sees of them (the
  filled crop plus the gated patch; `attack.region`);
- a proxy *inpainter* rebuilds them from the filled crop alone: the floor the context sets;
- the *mask generator* then learns
  - utility: the tail's outputs on a scene chunk whose faces are filled and patched, distilled
    towards its outputs on the unfilled chunk (the server's `patched` graph, written in torch);
  - privacy: ``alpha`` x how far the attacker's region error stays below the inpainter's. Pushing
    the attacker past the floor buys nothing a fresh attacker would not see through;
  - ``budget`` x the share of channels it keeps.

The gates are straight-through: hard in the forward pass (what is deployed), the sigmoid's gradient
backwards. The run checkpoints and resumes like `channel_mask_training`.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from privinfer.attack.region import RegionAttacker, RegionView, region_loss, region_mask
from privinfer.client.privatize import filled, region_cells
from privinfer.models import nanodet
from privinfer.obfuscate.patch_mask import PatchMask, straight_through_gate
from privinfer.train.checkpoint import resume, save_checkpoint
from privinfer.train.chunks import resized, to_unit
from privinfer.train.config import HELD_OUT_SCENE_FILES
from privinfer.train.patched import mixed_utility
from privinfer.train.region_chunks import SceneChunk, crop_region
from privinfer.train.start import start_training

CHUNK = 128


@dataclass(frozen=True)
class PatchMaskTrainingConfig:
    alpha: float = 10.0  # privacy weight
    budget: float = 0.5  # weight of the share of channels kept
    pool: bool = False  # send each kept channel's spatial mean (see obfuscate.patch_mask)
    steps: int = 500
    face_batch: int = 16
    scene_batch: int = 4
    lr_mask: float = 3e-3
    lr_attacker: float = 2e-3
    hidden: int = 64
    seed: int = 0
    checkpoint_every: int = 50
    out_dir: str = "results/train/patch-mask"
    corpus_root: str | None = None
    # Scene files left out of the utility data: the held-out persons' videos, and the pictures of
    # the photos the frame-level utility is measured on (`bench.partition_quality.PEOPLE_PHOTOS`).
    exclude_scene_files: tuple[str, ...] = HELD_OUT_SCENE_FILES
    quick: bool = False


def _gated_sender(mask: PatchMask, gates: list):
    """What the mask sends for a block, with straight-through gates; their sigmoids go to ``gates``."""

    def send(block: torch.Tensor) -> torch.Tensor:
        logits = mask.gate_logits(block)
        gates.append(torch.sigmoid(logits))
        return mask.gated(block, straight_through_gate(logits))

    return send


def train_patch_mask(
    config: PatchMaskTrainingConfig, faces: np.ndarray, scenes: list[SceneChunk], device: str = "cpu"
) -> Path:
    """Train (or resume) one setting; returns the weights file."""
    start = start_training(config, device)
    out, rng, model = start.out, start.rng, start.model
    mask = PatchMask("untrained", pool=config.pool, hidden=config.hidden, seed=config.seed, device=device)
    generator = mask.generator.train()
    faces = resized(faces, CHUNK)
    region = crop_region(CHUNK)
    row0, col0, row1, col1 = region_cells(region)
    filled_faces = np.stack([filled(f, [region]) for f in faces])
    channels = 3 * 64 + nanodet.EMBEDDING_CHANNELS + 1
    attacker, inpainter = (RegionAttacker(channels).to(device) for _ in range(2))
    opt_mask = torch.optim.Adam(generator.parameters(), config.lr_mask)
    opt_attack = torch.optim.Adam([*attacker.parameters(), *inpainter.parameters()], config.lr_attacker)
    parts = {"mask": generator, "attacker": attacker, "inpainter": inpainter, "opt_mask": opt_mask,
             "opt_attack": opt_attack}  # fmt: skip
    start = resume(out, parts)
    if start == 0:  # standardise the proxies' inputs by what unaltered patches look like
        sample = faces[: min(len(faces), 128)]
        with torch.no_grad():
            z = model.head(nanodet.normalise(list(sample), device))
        placed = torch.zeros_like(z)
        placed[:, :, row0:row1, col0:col1] = z[:, :, row0:row1, col0:col1]
        for proxy in (attacker, inpainter):
            context = to_unit(filled_faces[: len(sample)]).to(device)
            proxy.fit_standardiser(RegionView(context, placed, region).stacked())
    log = open(out / "losses.csv", "a", newline="")
    writer = csv.writer(log)
    if start == 0:
        writer.writerow(["step", "utility", "attacker", "inpainter", "kept", "seconds"])
    began = time.perf_counter()
    size = CHUNK // 2
    weight = region_mask(region, CHUNK, size).to(device)
    for step in tqdm(range(start, config.steps), initial=start, total=config.steps, desc="patch-mask"):
        pick = rng.integers(len(faces), size=config.face_batch)
        flip = rng.random(config.face_batch) < 0.5
        clean = np.where(flip[:, None, None, None], faces[pick][:, :, ::-1], faces[pick])
        holes = np.where(flip[:, None, None, None], filled_faces[pick][:, :, ::-1], filled_faces[pick])
        target = F.interpolate(to_unit(np.ascontiguousarray(clean)).to(device), size=(size, size), mode="area")
        with torch.no_grad():
            z = model.head(nanodet.normalise(list(clean), device))
        logits = mask.gate_logits(z[:, :, row0:row1, col0:col1])
        placed = torch.zeros_like(z)
        placed[:, :, row0:row1, col0:col1] = mask.gated(z[:, :, row0:row1, col0:col1], straight_through_gate(logits))
        pixels = to_unit(np.ascontiguousarray(holes)).to(device)
        seen, context = RegionView(pixels, placed, region), RegionView(pixels, torch.zeros_like(placed), region)

        attack_loss = region_loss(attacker(seen.stacked().detach()), target, weight)
        inpaint_loss = region_loss(inpainter(context.stacked()), target, weight)
        opt_attack.zero_grad()
        (attack_loss + inpaint_loss).backward()
        opt_attack.step()

        # Utility on scene windows (small faces, whole bodies) and on face crops (large faces).
        gates: list[torch.Tensor] = []
        send = _gated_sender(mask, gates)
        utility = mixed_utility(model, scenes, faces, region, send, rng, config.scene_batch, config.scene_batch, device)
        privacy = region_loss(attacker(seen.stacked()), target, weight)
        floor = region_loss(inpainter(context.stacked()), target, weight).detach()
        kept = torch.cat([torch.sigmoid(logits), *gates]).mean()
        loss = utility + config.alpha * F.relu(floor - privacy) + config.budget * kept
        opt_mask.zero_grad()
        loss.backward()
        opt_mask.step()
        attacker.zero_grad(set_to_none=True)

        hard_kept = float((logits >= 0).float().mean())
        writer.writerow([step, f"{utility.item():.5f}", f"{privacy.item():.5f}", f"{floor.item():.5f}",
                         f"{hard_kept:.4f}", f"{time.perf_counter() - began:.1f}"])  # fmt: skip
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            log.flush()
            save_checkpoint(out, step + 1, parts)
    log.close()
    weights = out / "patch_mask.pt"
    torch.save({"mask_generator": generator.state_dict(), "pool": config.pool, "hidden": config.hidden,
                "alpha": config.alpha, "budget": config.budget}, weights)  # fmt: skip
    return weights
