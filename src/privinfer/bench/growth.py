"""How cost grows with the frame's resolution and with the number of sensitive objects.

Resolution: the same scene frames at 480p, 720p, 1080p and 4K through privinfer as configured by
default (frames processed at a long side of 416 px, so only detection and resizing grow) and, in
a full run, at native resolution (``work_size`` off: the tiles, and the servers' work, grow too).
Sensitive objects: 0, 1, 5, 10 and 20 face crops pasted on a 640x480 scene, found by a detector
that returns exactly the pasted boxes (so the count is exact and detection costs nothing).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from privinfer.bench.context import PRIVATE_OBFUSCATOR, BenchContext, stats
from privinfer.bench.frames import FrameSet, frame_with_faces, scene_frames
from privinfer.bench.registry import Section, register
from privinfer.client.detect.base import DetectorOptions, SensitiveDetector
from privinfer.plotting import save_figure
from privinfer.types import Box, Detection, FrameResult, Treatment

RESOLUTIONS = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}
FACE_COUNTS = (0, 1, 5, 10, 20)
FACES_SIZE = (640, 480)
NATIVE_FRAMES = 5  # native 4K is ~200 tiles a frame: a few frames tell the growth


class KnownBoxes(SensitiveDetector):
    """'Finds' the boxes it is told each frame holds (frames are told apart by their first pixels' bytes)."""

    labels = ("face",)

    def __init__(self, boxes_by_frame: dict[bytes, list[Box]]) -> None:
        super().__init__(DetectorOptions(threshold=0.0, mask_scale=1.0))
        self.boxes_by_frame = boxes_by_frame

    def detect_raw(self, rgb: np.ndarray) -> list[Detection]:
        return [Detection(b, "face", 1.0) for b in self.boxes_by_frame.get(_fingerprint(rgb), [])]


def _fingerprint(rgb: np.ndarray) -> bytes:
    return rgb[:4].tobytes()


def _row(results: list[FrameResult]) -> dict:
    return {
        "total_ms": stats([r.timings_ms["total"] for r in results]),
        "detect_ms": float(np.median([r.timings_ms["detect"] for r in results])),
        "obfuscate_ms": float(np.median([r.timings_ms["obfuscate"] for r in results])),
        "servers_ms": float(np.median([r.timings_ms["servers"] for r in results])),
        "bytes": float(np.median([r.bytes_sent for r in results])),
        "tiles_sent": float(np.median([sum(t.treatment != Treatment.DISCARDED for t in r.tiles) for r in results])),
        "tiles_privatized": float(
            np.median([sum(t.treatment == Treatment.PRIVATIZED for t in r.tiles) for r in results])
        ),
    }


def by_resolution(ctx: BenchContext) -> dict:
    modes = {"work size 416 (default)": {}}
    if not ctx.options.quick:
        modes["native resolution"] = {"work_size": None}
    out = {}
    for mode, overrides in modes.items():
        count = ctx.frame_count if not overrides else min(ctx.frame_count, NATIVE_FRAMES)
        out[mode] = {}
        for name, size in RESOLUTIONS.items():
            ctx.progress(f"growth: {name}, {mode}, {count} frames")
            out[mode][name] = _row(ctx.measure(ctx.config(**overrides), scene_frames(count, size)))
    return out


def by_faces(ctx: BenchContext) -> dict:
    backgrounds = scene_frames(ctx.frame_count, FACES_SIZE).images
    out = {}
    for faces in FACE_COUNTS:
        ctx.progress(f"growth: {faces} faces")
        pasted = [frame_with_faces(background, faces) for background in backgrounds]
        detector = KnownBoxes({_fingerprint(frame): boxes for frame, boxes in pasted})
        frames = FrameSet(f"faces-{faces}", [frame for frame, _ in pasted], f"{len(pasted)} frames, {faces} faces")
        out[str(faces)] = _row(ctx.measure(ctx.config(), frames, detectors=[detector]))
    return out


def run(ctx: BenchContext) -> dict:
    return {
        "pipeline": f"privinfer ({PRIVATE_OBFUSCATOR}), {ctx.servers} local servers ({ctx.options.backend})",
        "resolution": by_resolution(ctx),
        "faces": by_faces(ctx),
    }


def markdown(result: dict) -> list[str]:
    lines = [f"{result['pipeline']}; medians.", ""]
    lines += ["| mode | resolution | total ms | p95 ms | detect ms | servers ms | tiles sent | bytes |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for mode, rows in result["resolution"].items():
        for name, r in rows.items():
            lines.append(
                f"| {mode} | {name} | {r['total_ms']['median']:.1f} | {r['total_ms']['p95']:.1f} | "
                f"{r['detect_ms']:.1f} | {r['servers_ms']:.1f} | {r['tiles_sent']:.0f} | {r['bytes'] / 1e3:.0f} kB |"
            )
    lines += ["", "| faces in a 640x480 frame | total ms | obfuscate ms | tiles privatized | bytes |",
              "|---|---|---|---|---|"]  # fmt: skip
    for faces, r in result["faces"].items():
        lines.append(
            f"| {faces} | {r['total_ms']['median']:.1f} | {r['obfuscate_ms']:.1f} | {r['tiles_privatized']:.0f} | "
            f"{r['bytes'] / 1e3:.0f} kB |"
        )
    return lines


def plot(result: dict, out: Path) -> str:
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for mode, rows in result["resolution"].items():
        pixels = [RESOLUTIONS[name][0] * RESOLUTIONS[name][1] / 1e6 for name in rows]
        left.plot(pixels, [r["total_ms"]["median"] for r in rows.values()], "o-", label=mode)
    ticks = {name: w * h / 1e6 for name, (w, h) in RESOLUTIONS.items()}
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xticks(list(ticks.values()), [f"{name}\n{mp:.1f} MP" for name, mp in ticks.items()])
    left.minorticks_off()
    left.set_xlabel("frame size")
    left.set_ylabel("median ms per frame")
    left.set_title("Latency against resolution")
    left.legend(fontsize=8)
    counts = [int(c) for c in result["faces"]]
    right.plot(counts, [r["total_ms"]["median"] for r in result["faces"].values()], "o-", label="total ms")
    right.plot(counts, [r["obfuscate_ms"] for r in result["faces"].values()], "s-", label="obfuscate ms")
    twin = right.twinx()
    twin.plot(counts, [r["bytes"] / 1e3 for r in result["faces"].values()], "k--", label="kB sent")
    twin.set_ylabel("kB sent per frame")
    right.set_xlabel("faces in the frame")
    right.set_ylabel("median ms per frame")
    right.set_title("Cost against sensitive objects")
    right.legend(fontsize=8, loc="upper left")
    twin.legend(fontsize=8, loc="lower right")
    return save_figure(fig, out / "growth.png")


SECTION = register(Section("growth", "Cost growth", run, markdown, plot))
