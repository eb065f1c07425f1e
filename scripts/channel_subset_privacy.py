"""How much privacy can *any* per-channel mask buy? The strong attacker against fixed channel subsets.

A channel mask multiplies each of the C embedding channels by one value. A non-zero value is
invertible (the attacker, trained on what is sent, learns to undo it), so what a mask can hide is
bounded by what it zeroes: a mask that keeps k channels leaks at least as much as the least
revealing subset of k channels. This script trains the evaluation's strong attacker on fixed
subsets of k channels (several random subsets per k, plus all channels and none) and reports the
SSIM of its reconstructions of held-out persons next to the no-information floor and the
project's target (floor + 10% of the unaltered-to-floor gap).

    python scripts/channel_subset_privacy.py --out results/tile/channel_subsets.json

Same data, attacker and scoring as `privinfer evaluate` (its defaults for steps and subset sizes
are below; pass the values of the run you compare with).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from privinfer.attack.learned import AttackTraining, reconstruct, train_attacker
from privinfer.attack.observe import observe
from privinfer.data.corpus import load_split
from privinfer.evaluate.privacy import at_resolution, attack_resolution, with_flips
from privinfer.metrics.image_similarity import batch_mean, ssim
from privinfer.models import nanodet
from privinfer.obfuscate import create_obfuscator
from privinfer.train.chunks import resized, to_unit


def _chunks(split: str, count: int, chunk: int, seed: int) -> np.ndarray:
    loaded = load_split(split)
    picked = np.sort(np.random.default_rng(seed).choice(len(loaded), min(count, len(loaded)), replace=False))
    return resized(loaded.subset(picked).images, chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", default="0,1,4,16,128", help="channel counts k to try")
    parser.add_argument("--subsets", type=int, default=3, help="random subsets per k (0 < k < C)")
    parser.add_argument("--attack-steps", type=int, default=250)
    parser.add_argument("--max-train", type=int, default=800)
    parser.add_argument("--max-test", type=int, default=150)
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/tile/channel_subsets.json"))
    args = parser.parse_args()

    began = time.perf_counter()
    torch.manual_seed(args.seed)
    settings = AttackTraining(steps=args.attack_steps, seed=args.seed)
    size = attack_resolution(args.chunk, settings)
    faces = with_flips(_chunks("faces-train", args.max_train, args.chunk, args.seed))
    natural = _chunks("natural", args.max_train, args.chunk, args.seed)
    test = _chunks("faces-test", args.max_test, args.chunk, args.seed)
    model = nanodet.load_nanodet()
    unaltered = create_obfuscator("unaltered")
    # What the server would see with every channel kept; a subset zeroes the others.
    seen_train = torch.cat([observe(unaltered, model, faces), observe(unaltered, model, natural)])
    seen_test = observe(unaltered, model, test)
    targets = torch.cat([at_resolution(to_unit(faces), size), at_resolution(to_unit(natural), size)])
    target_test = at_resolution(to_unit(test), size)
    channels = seen_train.shape[1]

    def attack(kept: np.ndarray, label: str) -> float:
        mask = torch.zeros(1, channels, 1, 1)
        mask[:, kept] = 1.0
        attacker = train_attacker(seen_train * mask, targets, settings, label)
        rebuilt = reconstruct(attacker, seen_test * mask, size)
        return batch_mean(ssim, rebuilt.clamp(0, 1).numpy(), target_test.numpy())

    rng = np.random.default_rng(args.seed)
    rows = []
    for k in (int(v) for v in args.keep.split(",")):
        draws = 1 if k in (0, channels) else args.subsets
        for draw in range(draws):
            kept = np.sort(rng.choice(channels, k, replace=False))
            value = attack(kept, f"k={k}/{draw}")
            rows.append({"keep": k, "channels": kept.tolist(), "strong_ssim": value})
            print(f"k={k:3d} draw {draw}: strong SSIM {value:.3f}", flush=True)

    by_k = {}
    for row in rows:
        by_k.setdefault(row["keep"], []).append(row["strong_ssim"])
    floor = min(by_k.get(0, [float("nan")]))
    full = max(by_k.get(channels, [float("nan")]))
    target = floor + 0.1 * (full - floor)
    summary = {
        "what": "strong-attacker SSIM (64 px, held-out persons) when only k fixed channels of the stride-8 "
        "embedding are sent; k=0 is the no-information floor",
        "settings": vars(args) | {"out": str(args.out)},
        "floor": floor,
        "unaltered": full,
        "target_ssim": target,
        "min_ssim_by_keep": {str(k): min(v) for k, v in by_k.items()},
        "mean_ssim_by_keep": {str(k): float(np.mean(v)) for k, v in by_k.items()},
        "rows": rows,
        "seconds": round(time.perf_counter() - began, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"floor {floor:.3f}, all channels {full:.3f}, target <= {target:.3f}; least revealing subset per k: "
          + ", ".join(f"k={k}: {min(v):.3f}" for k, v in by_k.items()))  # fmt: skip


if __name__ == "__main__":
    main()
