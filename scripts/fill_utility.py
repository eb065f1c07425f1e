"""What the client's fill costs in detection: frame mAP, mAP@0.5 and person AP of the private pipeline
against the unprotected whole frame, on the photos of people (`privinfer.evaluate.frame_utility`),
for each fill with each obfuscator named; and each fill's client time per face.

    .venv/bin/python scripts/fill_utility.py --obfuscators fill,token --fills black,telea,ns
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from privinfer.client.fill import available_fills, fill_regions
from privinfer.data.people_photos import people_photos
from privinfer.evaluate.frame_utility import frame_utility


def ms_per_face(fill: str, sides=(16, 32, 64), repeats: int = 50) -> dict[str, float]:
    """Median ms to fill one square face of each side (working-size pixels) in a 416x320 chunk."""
    rng = np.random.default_rng(0)
    chunk = rng.integers(0, 256, (320, 416, 3), dtype=np.uint8)
    out = {}
    for side in sides:
        region = [(100, 80, 100 + side, 80 + side)]
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            fill_regions(chunk, region, fill)
            times.append((time.perf_counter() - started) * 1e3)
        out[f"{side}px"] = float(np.median(times))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--obfuscators", default="fill,token")
    parser.add_argument("--fills", default=",".join(available_fills()))
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--photos", type=int, default=None, help="at most this many photos (default: all)")
    parser.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    fills = args.fills.split(",")
    timing = {fill: ms_per_face(fill) for fill in fills}
    entries = {f"{name} / {fill}": (name, {}, {"fill": fill}) for name in args.obfuscators.split(",") for fill in fills}
    result = frame_utility(entries, people_photos(args.photos), args.servers)
    result["ms_per_face"] = timing
    print(f"{result['with_faces']} of {result['photos']} photos with faces, {args.servers} servers")
    print("| obfuscator / fill | frame mAP | mAP@0.5 | person AP | all photos mAP | bytes vs raw |")
    print("|---|---|---|---|---|---|")
    for label, row in result["obfuscators"].items():
        print(
            f"| {label} | {row['with_faces']['map']:.3f} | {row['with_faces']['map50']:.3f} | "
            f"{row['person_with_faces']['map']:.3f} | {row['all']['map']:.3f} | {row['bytes_vs_raw']:.3f} |"
        )
    for fill, per_side in timing.items():
        print(f"fill {fill}: ms per face " + ", ".join(f"{k} {v:.3f}" for k, v in per_side.items()))
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
