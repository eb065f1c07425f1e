"""Could a server tail retrained for masked embeddings rescue utility? Fixed channel subsets, tail fine-tuned.

`channel_subset_privacy.py` shows which channel counts k a strong attacker cannot exploit. The
frozen NanoDet tail detects nothing from so few channels, but the server may run a tail of its
own, retrained for what it receives. This script fine-tunes a copy of the tail by distillation
(the original model's raw outputs on the unmasked tile are the target) on scene tiles with all
but k channels zeroed, then scores its detections on held-out scene tiles against the original
model's (mAP@[.5:.95], predictions down to score 0.05, the evaluation's method). k = all channels
is the control: it measures what the fine-tuning recipe itself costs.

    python scripts/tail_adaptation_privacy.py --subsets results/tile/channel_subsets.json \\
        --out results/tile/tail_adaptation.json

Scene frames 0-11 (the evaluation's utility frames) are held out; training tiles come from the rest.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch

from privinfer.data.corpus import load_split
from privinfer.evaluate.utility import PREDICTION_THRESHOLD
from privinfer.metrics.detection_map import coco_map, mean_average_precision
from privinfer.models import nanodet
from privinfer.models.letterbox import letterbox
from privinfer.train.chunks import random_crops
from privinfer.train.distill import distillation_loss
from privinfer.types import Box, Detection

HELD_OUT_FRAMES = 12


def tiles(frames: list[np.ndarray], size: int, count: int, seed: int) -> np.ndarray:
    return np.stack([letterbox(crop, size)[0] for crop in random_crops(frames, size, count, seed)])


def detections(raw: torch.Tensor, size: int, threshold: float) -> list[list[Detection]]:
    options = nanodet.DecodeOptions(score_threshold=threshold)
    return [
        [Detection(Box(*map(float, b)), nanodet.COCO_CLASSES[int(c)], float(s)) for b, s, c in zip(*found, strict=True)]
        for found in nanodet.decode(raw, size, options)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subsets", type=Path, default=Path("results/tile/channel_subsets.json"),
                        help="channel_subset_privacy.py's output (the least revealing subset per k)")  # fmt: skip
    parser.add_argument("--keep", default="4,16,128", help="channel counts to adapt the tail to")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--test-tiles", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/tile/tail_adaptation.json"))
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    subsets = json.loads(args.subsets.read_text())
    scenes = list(load_split("scenes").images)
    train_tiles = tiles(scenes[HELD_OUT_FRAMES:], args.tile, 1500, args.seed)
    test = nanodet.normalise(list(tiles(scenes[:HELD_OUT_FRAMES], args.tile, args.test_tiles, args.seed + 1)))
    model = nanodet.load_nanodet()
    with torch.no_grad():
        z_test = model.head(test)
        reference = detections(model.tail(z_test), args.tile, nanodet.DecodeOptions().score_threshold)
    channels = z_test.shape[1]

    rows = []
    for k in (int(v) for v in args.keep.split(",")):
        candidates = [r for r in subsets["rows"] if r["keep"] == k]
        chosen = min(candidates, key=lambda r: r["strong_ssim"]) if candidates else None
        kept = chosen["channels"] if chosen else list(range(channels))
        mask = torch.zeros(1, channels, 1, 1)
        mask[:, kept] = 1.0
        with torch.no_grad():
            frozen = coco_map(detections(model.tail(z_test * mask), args.tile, PREDICTION_THRESHOLD), reference)
        student = copy.deepcopy(model)
        for parameter in student.parameters():
            parameter.requires_grad_(True)  # only the tail's get gradients: z is computed by the original head
        optimiser = torch.optim.Adam(student.parameters(), args.lr)
        began = time.perf_counter()
        for _ in range(args.steps):
            x = nanodet.normalise(list(train_tiles[rng.integers(len(train_tiles), size=args.batch)]))
            with torch.no_grad():
                z = model.head(x)
                teacher = model.tail(z)
            loss = distillation_loss(student.tail(z * mask), teacher)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        with torch.no_grad():
            found = detections(student.tail(z_test * mask), args.tile, PREDICTION_THRESHOLD)
        adapted, adapted50 = coco_map(found, reference), mean_average_precision(found, reference, 0.5)
        row = {
            "keep": k,
            "channels": kept,
            "strong_ssim": chosen["strong_ssim"] if chosen else subsets["unaltered"],
            "frozen_tail_map": frozen,
            "adapted_tail_map": adapted,
            "adapted_tail_map50": adapted50,
            "adapted_map_degradation_pct": 100 * (1 - adapted),
            "final_distillation_loss": loss.item(),
            "seconds": round(time.perf_counter() - began, 1),
        }
        rows.append(row)
        loss_pct = row["adapted_map_degradation_pct"]
        print(f"k={k:3d}: strong SSIM {row['strong_ssim']:.3f}; mAP frozen tail {frozen:.3f}, "
              f"adapted tail {adapted:.3f} ({loss_pct:.1f}% degradation)", flush=True)  # fmt: skip

    summary = {
        "what": "a copy of the NanoDet tail fine-tuned (distillation) to embeddings with only k fixed channels; "
        "mAP@[.5:.95] on held-out scene tiles against the original model's detections",
        "settings": vars(args) | {"out": str(args.out), "subsets": str(args.subsets)},
        "reference_detections": sum(len(r) for r in reference),
        "target_ssim": subsets["target_ssim"],
        "rows": rows,
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
