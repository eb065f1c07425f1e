"""What a region of interest saves: bytes sent and server work against the share of the frame it covers.

An explicit RoI box, centred, covering 100, 50, 25 and 10% of the frame's area; what lies outside
it is discarded on the client. The content-aware partition (the default) sends only the box's
extent (its start moved back to the model's 32 px grid), split over the servers; the fixed grid of
128 px tiles, for comparison, sends every tile that touches the box, whole. Server work is in the
scheduler's units (pixels a server's model processes, an embedding chunk counting for the tail's
share of a full pass).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from privinfer.bench.context import PRIVATE_OBFUSCATOR, BenchContext, Setup, median_total_ms
from privinfer.bench.frames import scene_frames
from privinfer.bench.registry import Section, register
from privinfer.client.schedule import task_for
from privinfer.plotting import save_figure
from privinfer.serve import EMBEDDING
from privinfer.types import Box, FrameResult, Treatment

SIZE = (640, 480)
FRACTIONS = (1.0, 0.5, 0.25, 0.1)
PARTITIONS = {"content-aware": {}, "128 px tiles": {"partition": "grid", "tile": 128}}


def centred_box(width: int, height: int, fraction: float) -> Box:
    """A box about the frame's centre covering ``fraction`` of its area, the frame's aspect kept."""
    return Box(0, 0, width, height).scaled_about_centre(math.sqrt(fraction))


def server_work(result: FrameResult, work_scale: float) -> float:
    """The frame's work for the servers, in the scheduler's units (records are in frame pixels; the
    servers saw them at ``work_scale``)."""
    return sum(
        task_for(0, "tail" if t.payload == EMBEDDING else "full", t.box.area * work_scale**2).work
        for t in result.tiles
        if t.treatment != Treatment.DISCARDED
    )


def _name(partition: str, fraction: float) -> str:
    return f"{partition}, RoI {fraction:.0%}"


def run(ctx: BenchContext) -> dict:
    frames = scene_frames(ctx.frame_count, SIZE)
    setups = {}
    for partition, options in PARTITIONS.items():
        for fraction in FRACTIONS:
            box = centred_box(*SIZE, fraction)
            roi = {"roi": "boxes", "roi_options": {"boxes": [box]}} if fraction < 1 else {}
            setups[_name(partition, fraction)] = Setup(ctx.config(**options, **roi))
    ctx.progress(f"roi: {len(setups)} settings together, {len(frames.images)} frames")
    measured = ctx.measure_together(setups, frames)
    tiles = {}
    for partition in PARTITIONS:
        rows = []
        for fraction in FRACTIONS:
            results, config = measured[_name(partition, fraction)], setups[_name(partition, fraction)].config
            work_scale = min(1.0, (config.work_size or max(SIZE)) / max(SIZE))
            rows.append({
                "area_fraction": fraction,
                "box": [round(v, 1) for v in centred_box(*SIZE, fraction).as_list()],
                "bytes": float(np.median([r.bytes_sent for r in results])),
                "tiles_sent": float(np.median([sum(t.treatment != Treatment.DISCARDED for t in r.tiles)
                                               for r in results])),
                "server_work": float(np.median([server_work(r, work_scale) for r in results])),
                "servers_ms": float(np.median([r.timings_ms["servers"] for r in results])),
                "total_ms": median_total_ms(results),
            })  # fmt: skip
        for row in rows:
            for key in ("bytes", "server_work", "total_ms"):
                row[f"{key}_vs_full"] = row[key] / rows[0][key] if rows[0][key] else None
        tiles[partition] = rows
    return {"frames": frames.description, "size": f"{SIZE[0]}x{SIZE[1]}", "tiles": tiles}


def markdown(result: dict) -> list[str]:
    lines = [
        f"privinfer (faces, {PRIVATE_OBFUSCATOR}), {result['frames']} at {result['size']}; medians.",
        "",
        "| partition | RoI area | chunks sent | bytes | vs full | server work | vs full | servers ms | total ms "
        "| vs full |",
        "|---" * 10 + "|",
    ]
    for tiles, rows in result["tiles"].items():
        for r in rows:
            lines.append(
                f"| {tiles} | {r['area_fraction']:.0%} | {r['tiles_sent']:.0f} | {r['bytes'] / 1e3:.0f} kB | "
                f"{r['bytes_vs_full']:.2f} | {r['server_work']:.2f} | {r['server_work_vs_full']:.2f} | "
                f"{r['servers_ms']:.1f} | {r['total_ms']:.1f} | {r['total_ms_vs_full']:.2f} |"
            )
    return lines


def plot(result: dict, out: Path) -> str:
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6, 4))
    for tiles, rows in result["tiles"].items():
        fractions = [r["area_fraction"] for r in rows]
        axis.plot(fractions, [r["bytes_vs_full"] for r in rows], "o-", label=f"bytes, {tiles}")
        axis.plot(fractions, [r["server_work_vs_full"] for r in rows], "s--", label=f"server work, {tiles}")
        axis.plot(fractions, [r["total_ms_vs_full"] for r in rows], "^:", label=f"latency, {tiles}")
    axis.plot([0, 1], [0, 1], "k:", linewidth=0.8, label="proportional to area")
    axis.set_xlabel("RoI share of the frame's area")
    axis.set_ylabel("relative to the whole frame")
    axis.set_title("What a region of interest saves")
    axis.legend(fontsize=7)
    return save_figure(fig, out / "roi.png")


SECTION = register(Section("roi", "Region-of-interest savings", run, markdown, plot))
