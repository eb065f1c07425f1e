"""Pipeline benchmark: per-stage latency, privacy overhead, bytes sent, tiled-vs-untiled mAP.

Prints its figures (and writes them as JSON with --json). Run: `.venv/bin/python scripts/bench_pipeline.py`.
Ratios are measured in one run on the same frames, so they hold even when absolute times are noisy.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics

import cv2
import numpy as np
from skimage import data as skdata

from privinfer import assets
from privinfer.images import read_image
from privinfer.metrics.detection_map import coco_map, mean_average_precision
from privinfer.models import nanodet
from privinfer.pipeline import Pipeline, PipelineConfig


def frames(width: int, height: int) -> list[np.ndarray]:
    photos = [read_image(assets.require(n)).pixels for n in ("dog.jpg", "person.jpg", "horses.jpg")]
    photos.append(skdata.astronaut())
    return [cv2.resize(p, (width, height), interpolation=cv2.INTER_AREA) for p in photos]


def run(config: PipelineConfig, inputs: list[np.ndarray], repeats: int):
    results = []
    with Pipeline(config) as pipeline:
        pipeline(inputs[0])  # warm-up
        for _ in range(repeats):
            for rgb in inputs:
                pipeline.reset()
                results.append(pipeline(rgb))
    return results


def stage_table(results) -> dict[str, dict[str, float]]:
    table = {}
    for stage in results[0].timings_ms:
        values = sorted(r.timings_ms[stage] for r in results)
        table[stage] = {"median": statistics.median(values), "p95": values[int(0.95 * (len(values) - 1))]}
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5, help="passes over the frames (4 frames per pass)")
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    report: dict = {"machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores"}
    model = nanodet.load_nanodet()
    for width, height in ((640, 480), (1280, 720)):
        inputs = frames(width, height)
        common = dict(servers=args.servers, backend="processes")
        private = run(PipelineConfig(obfuscator="channel-mask", sensitive=("faces",), **common), inputs, args.repeats)
        unprotected = run(PipelineConfig(obfuscator="unaltered", sensitive=(), **common), inputs, args.repeats)
        private_stages, plain_stages = stage_table(private), stage_table(unprotected)
        overhead = (private_stages["detect"]["median"] + private_stages["obfuscate"]["median"]) / plain_stages["total"][
            "median"
        ]
        untiled = [nanodet.detect(model, rgb) for rgb in inputs]
        tiled = unprotected[: len(inputs)]
        key = f"{width}x{height}"
        report[key] = {
            "stages_private_ms": private_stages,
            "stages_unprotected_ms": plain_stages,
            "privacy_overhead_ratio": overhead,
            "bytes_sent_private": statistics.mean(r.bytes_sent for r in private),
            "bytes_sent_unprotected": statistics.mean(r.bytes_sent for r in unprotected),
            "bytes_full_frame": width * height * 3,
            "tiled_vs_untiled_map50": mean_average_precision([r.detections for r in tiled], untiled, 0.5),
            "tiled_vs_untiled_map": coco_map([r.detections for r in tiled], untiled),
        }
        print(f"\n== {key}, {args.servers} local process servers, {len(private)} frames each")
        print(f"{'stage':10s} {'private med':>12s} {'p95':>8s} {'unprotected med':>16s} {'p95':>8s}")
        for stage in private_stages:
            p, u = private_stages[stage], plain_stages.get(stage, {"median": 0, "p95": 0})
            print(f"{stage:10s} {p['median']:12.1f} {p['p95']:8.1f} {u['median']:16.1f} {u['p95']:8.1f}")
        r = report[key]
        print(f"privacy overhead (detect + obfuscate) / unprotected total: {overhead:.3f}")
        print(
            f"bytes sent: private {r['bytes_sent_private']:.0f}, unprotected {r['bytes_sent_unprotected']:.0f}, "
            f"full frame {r['bytes_full_frame']}"
        )
        print(
            f"tiled vs untiled: mAP@0.5 {r['tiled_vs_untiled_map50']:.3f}, mAP@[.5:.95] {r['tiled_vs_untiled_map']:.3f}"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
