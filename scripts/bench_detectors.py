"""Median latency of each sensitive-object detector on 640x480 frames, on this machine's CPU.

The frames are skimage's astronaut and matplotlib's Grace Hopper, resized to 640x480 and used
alternately. Each detector is built once, warmed up, then timed call by call (threshold and box
margin included, as the pipeline calls it).

    .venv/bin/python scripts/bench_detectors.py [--runs 30] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import cv2
import numpy as np
from matplotlib import cbook
from skimage import data

from privinfer.client import detect
from privinfer.images import read_image

FRAME_SIZE = (640, 480)
WARMUP = 3
# (row label, registry name, constructor keywords); every registered detector at its defaults,
# plus the BlazeFace variant with the larger input.
VARIANTS = [(name, name, {}) for name in ("faces", "faces-fast", "plates", "text")] + [
    ("faces-fast model=back", "faces-fast", {"model": "back"}),
]


def frames() -> list[np.ndarray]:
    grace = read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).pixels
    return [cv2.resize(image, FRAME_SIZE, interpolation=cv2.INTER_AREA) for image in (data.astronaut(), grace)]


def median_ms(detector: detect.SensitiveDetector, images: list[np.ndarray], runs: int) -> tuple[float, float, int]:
    """Median and 90th-percentile milliseconds per call over `runs` calls, and detections on the first frame."""
    for index in range(WARMUP):
        detector(images[index % len(images)])
    times = []
    for index in range(runs):
        start = time.perf_counter()
        detector(images[index % len(images)])
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), float(np.percentile(times, 90)), len(detector(images[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed calls per detector (at least 20)")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: all cores)")
    args = parser.parse_args()
    if args.runs < 20:
        parser.error("--runs must be at least 20")
    images = frames()
    print(f"{FRAME_SIZE[0]}x{FRAME_SIZE[1]}, {args.runs} runs, {os.cpu_count()} CPU cores, threads={args.threads}")
    print(f"{'detector':24s} {'median ms':>10s} {'p90 ms':>8s} {'found':>6s}")
    for label, name, kwargs in VARIANTS:
        if name != "plates":  # the cascade runs on OpenCV's own thread pool
            kwargs = {**kwargs, "threads": args.threads}
        median, p90, found = median_ms(detect.create(name, **kwargs), images, args.runs)
        print(f"{label:24s} {median:10.1f} {p90:8.1f} {found:6d}")


if __name__ == "__main__":
    main()
