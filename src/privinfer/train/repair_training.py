"""Fitting `repaired`'s repair network by distillation, without labels.

For every training chunk (windows around the faces found in scene frames: vtest.avi, bikes, the
face videos; and training persons' face crops), the teacher is the tail on the head's features of
the *original* chunk; the student is the tail on the repair of the head's features of the *filled*
chunk (what the server computes). The loss is `distill.distillation_loss`, each anchor weighed up
by ``region_weight`` where the teacher sees something (score > ``SEEN``) whose box overlaps a
region: the persons around hidden faces are what a fill loses.

The head and the tail are frozen and the teacher does not change, so the filled chunks' features,
the teacher's outputs and the anchor weights are computed once; a step is the repair, the tail and
their backward pass. A tenth of the chunks is held out and its loss reported (``losses.csv``).
The held-out persons' videos and the photos the frame utility is measured on are never used.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from privinfer.client.fill import fill_regions
from privinfer.client.privatize import region_cells
from privinfer.models import nanodet
from privinfer.models.repair import RegionRepair, RepairShape, save_repair
from privinfer.train.chunks import resized
from privinfer.train.config import HELD_OUT_SCENE_FILES
from privinfer.train.distill import distillation_loss
from privinfer.train.region_chunks import SceneChunk, crop_region
from privinfer.train.start import start_training

CROP = 128  # face crops' side
SCENE = 192  # scene windows are padded to this side (region_chunks.WINDOW)
SEEN = 0.05  # a teacher anchor scoring above this sees something


@dataclass(frozen=True)
class RepairTrainingConfig:
    steps: int = 400
    scene_batch: int = 4
    crop_batch: int = 4
    lr: float = 2e-3
    hidden: int = 48
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    ring: int = 1  # cells rewritten around the regions' own
    region_weight: float = 4.0  # extra weight of anchors whose teacher box overlaps a region
    # What the client fills regions with (the repair learns from it; recorded in the weights). Black:
    # on the photos of people the repair then keeps frame mAP 0.925 / person AP 0.897, against
    # 0.805 / 0.676 when trained on the telea inpainting (400 steps each).
    fill: str = "black"
    max_crops: int = 600  # face crops used (precomputed: memory and time)
    holdout: float = 0.1
    seed: int = 0
    out_dir: str = "results/train/repair"
    corpus_root: str | None = None
    # As for token: the held-out persons' videos and the utility photos are left out.
    exclude_scene_files: tuple[str, ...] = HELD_OUT_SCENE_FILES
    quick: bool = False


@dataclass
class _Set:
    """Precomputed chunks of one side: filled features, region masks, teacher outputs, anchor weights."""

    z: torch.Tensor  # (N, C, h, w) float16
    mask: torch.Tensor  # (N, 1, h, w)
    teacher: torch.Tensor  # (N, anchors, 124)
    weight: torch.Tensor  # (N, anchors)

    def __len__(self) -> int:
        return self.z.shape[0]

    def take(self, index: np.ndarray) -> _Set:
        i = torch.from_numpy(index)
        return _Set(self.z[i], self.mask[i], self.teacher[i], self.weight[i])


def region_anchor_weights(
    teacher: torch.Tensor, regions: list[tuple[int, int, int, int]], side: int, extra: float
) -> torch.Tensor:
    """(anchors,) weights of one chunk padded to ``side``: 1, plus ``extra`` where the teacher's box
    (its expected distances from the anchor) overlaps a region and its best class scores > SEEN."""
    centres, strides = nanodet._anchor_grid(side, side, teacher.device)
    bins = torch.arange(nanodet.REG_BINS, dtype=teacher.dtype)
    reg = teacher[:, nanodet.NUM_CLASSES :].reshape(-1, 4, nanodet.REG_BINS).softmax(-1) @ bins
    distances = reg * strides[:, None]
    boxes = torch.cat([centres - distances[:, :2], centres + distances[:, 2:]], dim=1)
    overlaps = torch.zeros(teacher.shape[0], dtype=torch.bool)
    for x1, y1, x2, y2 in regions:
        overlaps |= (boxes[:, 0] < x2) & (boxes[:, 2] > x1) & (boxes[:, 1] < y2) & (boxes[:, 3] > y1)
    seen = teacher[:, : nanodet.NUM_CLASSES].max(dim=1).values > SEEN
    return 1 + extra * (overlaps & seen).float()


def _precompute(model: nanodet.NanoDet, chunks: list[SceneChunk], side: int, config: RepairTrainingConfig) -> _Set:
    zs, masks, teachers, weights = [], [], [], []
    cells = side // 8
    for start in range(0, len(chunks), 16):
        part = chunks[start : start + 16]
        clean = np.zeros((len(part), side, side, 3), np.uint8)
        for i, chunk in enumerate(part):
            h, w = chunk.pixels.shape[:2]
            clean[i, :h, :w] = chunk.pixels
        holes = np.stack([fill_regions(p, list(c.regions), config.fill) for p, c in zip(clean, part, strict=True)])
        with torch.no_grad():
            teacher = model(nanodet.normalise(list(clean)))
            z = model.head(nanodet.normalise(list(holes)))
        for i, chunk in enumerate(part):
            mask = torch.zeros(1, cells, cells)
            for region in chunk.regions:
                row0, col0, row1, col1 = region_cells(region)
                mask[:, row0:row1, col0:col1] = 1
            masks.append(mask)
            weights.append(region_anchor_weights(teacher[i], list(chunk.regions), side, config.region_weight))
        zs.append(z.half())
        teachers.append(teacher)
    return _Set(torch.cat(zs), torch.stack(masks), torch.cat(teachers), torch.stack(weights))


def _loss(model: nanodet.NanoDet, repair: RegionRepair, batch: _Set) -> torch.Tensor:
    student = model.tail(repair(batch.z.float(), batch.mask))
    return distillation_loss(student, batch.teacher, batch.weight)


def train_repair(
    config: RepairTrainingConfig, faces: np.ndarray, scenes: list[SceneChunk], device: str = "cpu"
) -> Path:
    """Fit the repair network; returns the weights file (``out_dir/repair.pt``)."""
    start = start_training(config, device)
    out, rng, model = start.out, start.rng, start.model
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    picked = faces[rng.permutation(len(faces))[: config.max_crops]]
    region = crop_region(CROP)
    crops = [SceneChunk(face, (region,)) for face in resized(picked, CROP)]
    sets = {"scenes": _precompute(model, scenes, SCENE, config), "crops": _precompute(model, crops, CROP, config)}
    batches = {"scenes": config.scene_batch, "crops": config.crop_batch}
    train, held = {}, {}
    for name, full in sets.items():
        order = rng.permutation(len(full))
        cut = max(1, int(len(full) * config.holdout))
        held[name], train[name] = full.take(order[:cut]), full.take(order[cut:])
    repair = RegionRepair(RepairShape(hidden=config.hidden, dilations=tuple(config.dilations), ring=config.ring))
    repair.to(device).train()
    optimiser = torch.optim.Adam(repair.parameters(), config.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, config.lr, total_steps=config.steps, pct_start=0.1)
    with open(out / "losses.csv", "w", newline="") as log:
        writer = csv.writer(log)
        writer.writerow(["step", "train", "held_out"])
        for step in tqdm(range(config.steps), desc=f"repair ring {config.ring}"):
            loss = sum(
                _loss(model, repair, part.take(rng.integers(len(part), size=batches[name])))
                for name, part in train.items()
            ) / len(train)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            last = step == config.steps - 1
            held_loss = _held_out_loss(model, repair, held) if last or step % 100 == 0 else None
            writer.writerow([step, f"{loss.item():.5f}", "" if held_loss is None else f"{held_loss:.5f}"])
            log.flush()
    return save_repair(
        repair.eval(),
        out / "repair.pt",
        steps=config.steps,
        fill=config.fill,
        region_weight=config.region_weight,
        held_out_loss=held_loss,
        chunks={name: len(s) for name, s in sets.items()},
    )


def _held_out_loss(model: nanodet.NanoDet, repair: RegionRepair, held: dict[str, _Set]) -> float:
    with torch.no_grad():
        return float(np.mean([_loss(model, repair, part).item() for part in held.values()]))
