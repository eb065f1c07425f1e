"""What privacy costs the client: (sensitive detection + obfuscation) over the end-to-end latency
of the same pipeline without privacy, for each client set-up of ``latency.PRIVATE_SETUPS``.

Obfuscation is the increment of the pipeline's obfuscate stage over the unprotected pipeline's
on the same frame (both letterbox their raw tiles; only the private one runs the model's head
and the obfuscator on sensitive tiles), averaged over all frames: frames without a face cost
nothing, so it is the cost per frame of a stream like these frames. The ratio uses the medians
of detection and of the unprotected total.
"""

from __future__ import annotations

import numpy as np

from privinfer.bench.context import BenchContext, median_total_ms
from privinfer.bench.frames import scene_frames
from privinfer.bench.latency import PRIVATE_SETUPS, SIZES, client_setups, size_key
from privinfer.bench.registry import Section, register
from privinfer.evaluate.report import PAPER
from privinfer.types import Treatment

TARGET = 0.10  # the goal for the overhead ratio


def run(ctx: BenchContext) -> dict:
    out: dict = {"target_ratio": TARGET, "paper_obfuscation_ms": PAPER["latency_ms"], "sizes": {}}
    for size in SIZES:
        frames = scene_frames(ctx.frame_count, size)
        ctx.progress(f"overhead: {size_key(size)}")
        together = client_setups(ctx, frames)
        plain = together["unprotected"]
        plain_total = median_total_ms(plain)
        rows = {}
        for detector in PRIVATE_SETUPS:
            private = together[detector]
            increments = [
                p.timings_ms["obfuscate"] - u.timings_ms["obfuscate"] for p, u in zip(private, plain, strict=True)
            ]
            with_faces = [
                inc for inc, r in zip(increments, private, strict=True)
                if any(t.treatment == Treatment.PRIVATIZED for t in r.tiles)
            ]  # fmt: skip
            detect_ms = float(np.median([r.timings_ms["detect"] for r in private]))
            obfuscation_ms = float(np.mean(increments))
            ratio = (detect_ms + obfuscation_ms) / plain_total
            rows[detector] = {
                "detect_ms": detect_ms,
                "obfuscation_ms_per_frame": obfuscation_ms,
                "obfuscation_ms_per_frame_with_faces": float(np.median(with_faces)) if with_faces else None,
                "frames_with_faces": len(with_faces),
                "privacy_overhead_ratio": ratio,
                "meets_target": ratio <= TARGET,
                "end_to_end_overhead_ratio": median_total_ms(private) / plain_total - 1,
            }
        out["sizes"][size_key(size)] = {"unprotected_total_ms": plain_total, "frames": len(plain), "detectors": rows}
    return out


def markdown(result: dict) -> list[str]:
    lines = [
        "Ratio = (median detection + mean obfuscation increment) / median end-to-end ms of the same pipeline "
        f"without privacy; target <= {result['target_ratio']:.0%}. End-to-end: privinfer's total over the "
        "unprotected total, minus 1 (servers and merge included).",
        "",
        "| size | detector | detect ms | obfuscation ms/frame | … on frames with faces | overhead ratio | "
        "end-to-end overhead |",
        "|---|---|---|---|---|---|---|",
    ]
    for size, entry in result["sizes"].items():
        for detector, row in entry["detectors"].items():
            with_faces = row["obfuscation_ms_per_frame_with_faces"]
            lines.append(
                f"| {size} | {detector} | {row['detect_ms']:.1f} | {row['obfuscation_ms_per_frame']:.2f} | "
                f"{'–' if with_faces is None else f'{with_faces:.2f}'} ({row['frames_with_faces']} frames) | "
                f"**{row['privacy_overhead_ratio']:.1%}**{' ✓' if row['meets_target'] else ''} | "
                f"{row['end_to_end_overhead_ratio']:+.1%} |"
            )
    return lines


SECTION = register(Section("overhead", "Privacy overhead", run, markdown))
