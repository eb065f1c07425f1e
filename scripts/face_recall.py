"""How many of the faces deface's setting finds does privinfer treat as sensitive, and at what cost?

deface's setting is CenterFace at score 0.2 on the full-resolution frame. Its boxes are the
reference (there are no hand-made face boxes for these pictures). For each candidate setting
(threshold, detection size) this prints the share of reference faces it finds (recall), the
boxes beyond one on the pictures of one person (an upper bound on the false boxes there: each
is a false box or a face in the background), and CenterFace's median time per picture.

Pictures: frames spread over the corpus's face videos (`data.sources.FACE_SOURCES`) and its
stills (the LFW crops left out: 25 px thumbnails are not frames), and the scene videos and photos
(`SCENE_SOURCES`: vtest.avi and bikes.mp4 pedestrians, the darknet photos). The assets come from
`privinfer data fetch`.

    .venv/bin/python scripts/face_recall.py --frames-per-video 30     # about 2 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from dataclasses import dataclass, field

import cv2
import numpy as np

from privinfer import assets
from privinfer.boxes import iou
from privinfer.client import detect
from privinfer.client.detect.base import DetectorOptions
from privinfer.data import sources
from privinfer.data.crops import spaced_indices
from privinfer.data.media import read_pictures, video_frame_count, video_frames
from privinfer.types import Box, Detection

DEFACE_THRESHOLD = 0.2
MATCH_IOU = 0.3  # a reference face counts as found when a box overlaps it this much


@dataclass(frozen=True)
class Picture:
    group: str  # "faces" (one-person face pictures), "group" (several people), "scenes"
    name: str
    rgb: np.ndarray


@dataclass
class Tally:
    found: int = 0
    reference: int = 0
    extra_on_one_face: int = 0
    one_face_pictures: int = 0
    boxes: int = 0
    ms: list[float] = field(default_factory=list)


def pictures(frames_per_video: int) -> list[Picture]:
    out: list[Picture] = []
    face_refs = {s.ref: s for s in sources.FACE_SOURCES if s.ref != "skimage:lfw_subset"}
    scene_refs = {s.ref: s for s in sources.SCENE_SOURCES if s.ref not in face_refs}
    for ref, source in [*face_refs.items(), *scene_refs.items()]:
        group = "scenes" if ref in scene_refs else ("group" if getattr(source, "group", False) else "faces")
        if ref.endswith((".mp4", ".avi")):
            path = assets.require(ref)
            indices = spaced_indices(video_frame_count(path), frames_per_video)
            out += [Picture(group, f"{ref}#{i}", rgb) for i, rgb in video_frames(path, indices)]
        else:
            out += [Picture(group, ref, p.rgb) for p in read_pictures(ref)]
    return out


def run_detector(detector, rgb: np.ndarray, size: int | None) -> tuple[list[Detection], float]:
    """Detections in frame pixels (on a copy shrunk to long side ``size``, as --detect-size) and ms."""
    height, width = rgb.shape[:2]
    scale = 1.0 if size is None or max(width, height) <= size else size / max(width, height)
    small = rgb if scale == 1 else cv2.resize(rgb, (round(width * scale), round(height * scale)), cv2.INTER_AREA)
    started = time.perf_counter()
    found = detector(small)
    ms = (time.perf_counter() - started) * 1e3
    if scale != 1:
        found = [Detection(Box(*(v / scale for v in d.box.as_list())), d.label, d.score) for d in found]
    return found, ms


def matched(reference: list[Detection], found: list[Detection]) -> int:
    if not reference or not found:
        return 0
    boxes = np.array([d.box.as_list() for d in found])
    return sum(float(iou(np.array(r.box.as_list()), boxes).max()) >= MATCH_IOU for r in reference)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames-per-video", type=int, default=30)
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.2, 0.25, 0.3, 0.35, 0.4, 0.5])
    parser.add_argument("--sizes", type=int, nargs="*", default=[480, 320], help="reduced detection sizes to try")
    parser.add_argument("--size-threshold", type=float, default=0.2, help="threshold used at the reduced sizes")
    args = parser.parse_args()

    pics = pictures(args.frames_per_video)
    counts = {g: sum(p.group == g for p in pics) for g in ("faces", "group", "scenes")}
    print(f"pictures: {len(pics)} ({', '.join(f'{n} {g}' for g, n in counts.items())})", file=sys.stderr)
    deface = DetectorOptions(threshold=DEFACE_THRESHOLD, mask_scale=1.0)
    full = detect.create("faces", deface, precision="float32")
    settings = [(t, None) for t in args.thresholds] + [(args.size_threshold, s) for s in args.sizes]
    tallies = {(group, setting): Tally() for group in (*counts, "all") for setting in settings}
    small_detectors = {s: full for s in args.sizes}  # same model: only the input differs
    for picture in pics:
        reference, full_ms = run_detector(full, picture.rgb, None)
        for threshold, size in settings:
            if size is None:
                found, ms = [d for d in reference if d.score >= threshold], full_ms
            else:
                found, ms = run_detector(small_detectors[size], picture.rgb, size)
                found = [d for d in found if d.score >= threshold]
            for group in (picture.group, "all"):
                tally = tallies[(group, (threshold, size))]
                tally.reference += len(reference)
                tally.found += matched(reference, found)
                tally.boxes += len(found)
                tally.ms.append(ms)
                if picture.group == "faces":
                    tally.one_face_pictures += 1
                    tally.extra_on_one_face += max(0, len(found) - 1)

    header = ["pictures", "setting", "recall vs deface (CenterFace 0.2, full res)", "boxes",
              "boxes beyond one on one-person pictures", "median ms"]  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|---|---|---|---|---|---|")
    for (group, (threshold, size)), tally in tallies.items():
        setting = f"thresh {threshold:g}, " + ("full resolution" if size is None else f"--detect-size {size}")
        recall = tally.found / tally.reference if tally.reference else math.nan
        extra = f"{tally.extra_on_one_face} on {tally.one_face_pictures}" if tally.one_face_pictures else "-"
        median = statistics.median(tally.ms) if tally.ms else math.nan
        row = [group, setting, f"{recall:.3f} ({tally.found}/{tally.reference})", str(tally.boxes), extra,
               f"{median:.1f}"]  # fmt: skip
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
